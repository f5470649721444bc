// The fleet's live dashboard, drawn above the table of Locust's "Charge points" tab.
//
// Every two seconds it asks the swarm for the seconds closed since the last it has
// (ocpp-swarm/timeline?after=T) and keeps the last 15 minutes: the charge points per state,
// failures and CSMS calls per second, and the p50, p95 and p99 latency of each action, at the
// samples' own resolution. Plain SVG, no library: the page works offline.
(() => {
  "use strict";

  const KEEP = 900; // seconds, as the swarm keeps them
  const POLL_MS = 2000;
  const ID = "ocpp-swarm-dashboard";
  const SVG = "http://www.w3.org/2000/svg";
  const WIDTH = 560;
  const HEIGHT = 190;
  const PAD = { left: 52, right: 12, top: 26, bottom: 28 };
  const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"];
  const STATES = [
    ["accepted", ["accepted"]],
    ["connecting", ["connecting", "booting"]],
    ["pending or rejected", ["pending", "rejected", "boot failed"]],
    ["offline", ["offline"]],
  ];
  const CSMS_TYPES = ["CSMS", "CSMS201"];
  const LATENCY_TYPES = ["OCPP", "OCPP201", "CSMS", "CSMS201"];
  const MAX_ACTIONS = 12; // latency charts: the busiest actions

  const seconds = [];
  let after = 0;

  function onTab() {
    return new URLSearchParams(window.location.search).get("tab") === "charge-points";
  }

  async function poll() {
    try {
      const response = await fetch(`ocpp-swarm/timeline?after=${after}`, { cache: "no-store" });
      if (response.ok) {
        const body = await response.json();
        for (const second of body.seconds) {
          if (second.t <= after) continue; // had already
          seconds.push(second);
          after = second.t;
        }
        seconds.splice(0, Math.max(0, seconds.length - KEEP));
      }
    } catch (error) {
      // The run is over or the swarm is busy: try again at the next poll.
    }
    render();
    setTimeout(poll, POLL_MS); // the next once this one is done: never two at once
  }

  function container() {
    let box = document.getElementById(ID);
    const table = document.querySelector("table");
    if (!onTab() || !table) {
      if (box) box.style.display = "none";
      return null;
    }
    const anchor = table.closest(".MuiTableContainer-root") || table;
    if (!box) {
      box = document.createElement("div");
      box.id = ID;
      box.style.cssText = "display:flex;flex-wrap:wrap;gap:12px;margin:12px 0";
    }
    if (box.nextSibling !== anchor) anchor.parentNode.insertBefore(box, anchor);
    box.style.display = "flex";
    return box;
  }

  function render() {
    const box = container();
    if (!box) return;
    const charts = [statesChart(), perSecondChart("Failures per second", failures)];
    charts.push(perSecondChart("CSMS calls per second", csmsCalls));
    for (const key of busiest()) charts.push(latencyChart(key));
    box.replaceChildren(...charts);
  }

  function statesChart() {
    const lines = STATES.map(([name, states], i) => ({
      name,
      color: COLORS[i],
      points: seconds
        .filter((s) => s.states)
        .map((s) => [s.t, states.reduce((sum, state) => sum + (s.states[state] || 0), 0)]),
    }));
    lines.push({
      name: "charging",
      color: "#000",
      points: seconds.filter((s) => s.states).map((s) => [s.t, s.charging]),
    });
    return chart("Charge points", "", lines);
  }

  function failures(second) {
    const byType = {};
    for (const [key, action] of Object.entries(second.actions)) {
      const type = key.split(" ")[0];
      byType[type] = (byType[type] || 0) + action[1];
    }
    return byType;
  }

  function csmsCalls(second) {
    const byType = {};
    for (const [key, action] of Object.entries(second.actions)) {
      const type = key.split(" ")[0];
      if (CSMS_TYPES.includes(type)) byType[type] = (byType[type] || 0) + action[0];
    }
    return byType;
  }

  function perSecondChart(title, count) {
    const names = new Set();
    const counts = seconds.map((s) => {
      const found = count(s);
      Object.keys(found).forEach((name) => names.add(name));
      return [s.t, found];
    });
    const lines = [...names].sort().map((name, i) => ({
      name,
      color: COLORS[i % COLORS.length],
      points: counts.map(([t, found]) => [t, found[name] || 0]),
    }));
    return chart(title, "/s", lines);
  }

  function busiest() {
    const totals = {};
    for (const second of seconds) {
      for (const [key, action] of Object.entries(second.actions)) {
        if (LATENCY_TYPES.includes(key.split(" ")[0])) totals[key] = (totals[key] || 0) + action[0];
      }
    }
    const keys = Object.keys(totals).sort((a, b) => totals[b] - totals[a] || (a < b ? -1 : 1));
    return keys.slice(0, MAX_ACTIONS).sort();
  }

  function latencyChart(key) {
    const lines = ["p50", "p95", "p99"].map((name, i) => ({
      name,
      color: COLORS[i],
      points: seconds.filter((s) => s.actions[key]).map((s) => [s.t, s.actions[key][2 + i]]),
    }));
    const failed = seconds.reduce((sum, s) => sum + (s.actions[key] ? s.actions[key][1] : 0), 0);
    const title = failed ? `${key}: ${failed} failed` : key;
    return chart(title, "ms", lines, { name: `latency ${key}` });
  }

  function chart(title, unit, lines, { name = title } = {}) {
    const svg = element("svg", { width: WIDTH, height: HEIGHT, "data-chart": name });
    svg.style.background = "#fff";
    const all = lines.flatMap((line) => line.points);
    const last = {};
    for (const line of lines) {
      if (line.points.length) last[line.name] = line.points[line.points.length - 1][1];
    }
    svg.setAttribute("data-last", JSON.stringify(last));
    text(svg, PAD.left, 16, title, { "font-weight": "bold" });
    if (!all.length) {
      text(svg, WIDTH / 2, HEIGHT / 2, "no data yet", { "text-anchor": "middle", fill: "#888" });
      return svg;
    }
    const t0 = Math.min(...all.map((p) => p[0]));
    const t1 = Math.max(t0 + 1, ...all.map((p) => p[0]));
    const top = niceCeiling(Math.max(...all.map((p) => p[1])));
    const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (WIDTH - PAD.left - PAD.right);
    const y = (v) => HEIGHT - PAD.bottom - (v / top) * (HEIGHT - PAD.top - PAD.bottom);
    for (let i = 0; i <= 4; i += 1) {
      const value = (top * i) / 4;
      svg.append(element("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(value), y2: y(value), stroke: "#eee" }));
      text(svg, PAD.left - 4, y(value) + 4, `${format(value)}${i === 4 ? ` ${unit}` : ""}`, { "text-anchor": "end", "font-size": 10 });
    }
    text(svg, PAD.left, HEIGHT - 8, clock(t0), { "font-size": 10 });
    text(svg, WIDTH - PAD.right, HEIGHT - 8, clock(t1), { "font-size": 10, "text-anchor": "end" });
    // The legend on the title's line, from the right.
    let legend = WIDTH - PAD.right;
    [...lines].reverse().forEach((line) => {
      text(svg, legend, 16, line.name, { fill: line.color, "font-size": 10, "text-anchor": "end" });
      legend -= 10 + 6 * line.name.length;
    });
    lines.forEach((line) => {
      if (!line.points.length) return;
      // A second without a point (no request of the action) breaks the line.
      const points = line.points;
      const starts = points.map((p, i) => i === 0 || p[0] - points[i - 1][0] > 1);
      const d = points.map(([t, v], i) => `${starts[i] ? "M" : "L"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
      svg.append(element("path", { d, fill: "none", stroke: line.color, "stroke-width": 1.5, class: "line", "data-name": line.name }));
      points.forEach(([t, v], i) => {
        // A segment of one point draws nothing: a dot instead.
        if (starts[i] && (i + 1 === points.length || starts[i + 1])) {
          svg.append(element("circle", { cx: x(t), cy: y(v), r: 2.5, fill: line.color }));
        }
      });
    });
    return svg;
  }

  function niceCeiling(value) {
    if (!(value > 0)) return 1;
    const step = 10 ** Math.floor(Math.log10(value));
    for (const factor of [1, 2, 2.5, 5, 10]) if (factor * step >= value) return factor * step;
    return 10 * step;
  }

  function format(value) {
    if (value === 0) return "0";
    if (value < 1) return value.toPrecision(2);
    return value >= 1000 ? `${(value / 1000).toFixed(1)}k` : `${Math.round(value * 10) / 10}`;
  }

  function clock(t) {
    return new Date(t * 1000).toLocaleTimeString();
  }

  function element(name, attributes) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    return node;
  }

  function text(svg, x, y, content, attributes = {}) {
    const node = element("text", { x, y, "font-size": 12, "font-family": "sans-serif", ...attributes });
    node.textContent = content;
    svg.append(node);
  }

  // The tab is React's: follow its changes, and draw as soon as it shows.
  new MutationObserver(() => {
    const box = document.getElementById(ID);
    if (onTab() && (!box || !box.isConnected || box.style.display === "none")) render();
    else if (!onTab() && box) box.style.display = "none";
  }).observe(document.body, { childList: true, subtree: true });
  poll();
})();
