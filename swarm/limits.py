"""How many charge points one process can hold: open files, and local ports per source address.

Each charge point holds one socket, so one open file. Each connection to one CSMS address also
takes a local port of its source address, from the kernel's ephemeral range (28,232 on Linux by
default): more connections than that to one CSMS address need more source addresses (several
127.0.0.x on loopback, or several of a machine's addresses; see ``--source-addresses``).
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from dataclasses import dataclass

RESERVED_FILES = 100
"""Open files a Locust process needs besides its charge points' sockets: logs, CSV files, the
web UI, the master connection, the embedded CSMS's pipes."""

MAX_SOURCE_ADDRESSES = 256


@dataclass(frozen=True, slots=True)
class Capacity:
    """What one process can hold."""

    open_files: int
    """The soft limit on open files (``ulimit -n``), after raising it as far as allowed."""
    local_ports: int
    """Ephemeral ports of one source address."""
    source_addresses: int

    @property
    def charge_points(self) -> int:
        """Charge points this process can connect to one CSMS address at once."""
        by_files = max(0, self.open_files - RESERVED_FILES)
        return min(by_files, self.local_ports * self.source_addresses)

    def __str__(self) -> str:
        return (
            f"room for {self.charge_points:,} charge points in this process: open files"
            f" {self.open_files:,} (ulimit -n), local ports {self.local_ports:,} x"
            f" {self.source_addresses} source address{'es' if self.source_addresses > 1 else ''}"
        )


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; return the soft limit."""
    if sys.platform == "win32":
        return 16_384  # no such limit to raise; sockets are bounded otherwise
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # keep the soft limit; capacity() says what it allows
    return soft


def local_ports() -> int:
    """Size of the kernel's ephemeral port range (Linux); IANA's 16,384 elsewhere."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as file:
            low, high = map(int, file.read().split())
    except (OSError, ValueError):
        return 16_384
    return high - low + 1


def capacity(source_addresses: int = 1) -> Capacity:
    """This process's capacity, raising its open-file limit first."""
    return Capacity(raise_open_file_limit(), local_ports(), max(1, source_addresses))


def read_source_addresses(spec: str) -> tuple[str, ...]:
    """Source addresses from ``--source-addresses``: ``A,B,...``, where each is an address or a
    network whose hosts are all taken (``127.0.0.0/28`` is 127.0.0.1 to 127.0.0.14).

    Each must be an address of this machine: it is bound once to check. Raises ValueError with
    a line that names the option.
    """
    addresses: list[str] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"--source-addresses: {item!r} is not an IP address") from None
        hosts = [network.network_address] if network.num_addresses == 1 else network.hosts()
        for host in hosts:
            addresses.append(str(host))
            if len(addresses) > MAX_SOURCE_ADDRESSES:
                raise ValueError(f"--source-addresses: more than {MAX_SOURCE_ADDRESSES} addresses")
    for address in dict.fromkeys(addresses):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.bind((address, 0))
        except OSError as exc:
            raise ValueError(f"--source-addresses: cannot use {address}: {exc.strerror}") from None
    return tuple(dict.fromkeys(addresses))
