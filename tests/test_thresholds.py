"""Pass/fail thresholds: options (command line and config files), evaluation, JUnit XML."""

from __future__ import annotations

import argparse
import os
import xml.etree.ElementTree as ET

import pytest

from swarm.report.thresholds import (
    Outcome,
    Threshold,
    add_arguments,
    evaluate,
    thresholds_from_options,
    write_junit,
)
from tests.unpatched import unpatched

with unpatched():  # the other tests run plain asyncio in this process
    from locust.argument_parser import (
        DEFAULT_CONFIG_FILES,
        get_empty_argument_parser,
        setup_parser_arguments,
    )
    from locust.stats import RequestStats


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return thresholds_from_options(parser.parse_args(argv))


def stats_of(*requests):
    """RequestStats fed as Locust feeds it: (type, name, ms[, failed]) per request."""
    stats = RequestStats()
    for request_type, name, ms, *failed in requests:
        stats.log_request(request_type, name, ms, 0)
        if failed and failed[0]:
            stats.log_error(request_type, name, "err")
    return stats


def times(request_type, name, *pairs):
    """Requests of one name: (count, ms) pairs."""
    return [(request_type, name, ms) for count, ms in pairs for _ in range(count)]


def check(spec, stats, peak_booted=0):
    """The one outcome of a threshold given as command-line arguments."""
    [outcome] = evaluate(parse(*spec.split(" ", 1)), stats, peak_booted)
    return outcome


# Options.


def test_no_options_no_thresholds():
    assert parse() == []
    assert thresholds_from_options(argparse.Namespace()) == []
    assert thresholds_from_options(argparse.Namespace(check_p95="", check_booted="")) == []


def test_options_make_thresholds_in_order():
    thresholds = parse(
        "--check-booted=1000",
        "--check-fail-ratio=0.001",
        "--check-p99=Aggregated=900",
        "--check-p95",
        " BootNotification = 500 ,CSMS TriggerMessage=200.5",
        "--check-p95=WebSocket connect=1000",
    )
    assert thresholds == [
        Threshold("p95", 500, "BootNotification"),
        Threshold("p95", 200.5, "TriggerMessage", "CSMS"),
        Threshold("p95", 1000, "connect", "WebSocket"),
        Threshold("p99", 900, "Aggregated"),
        Threshold("fail_ratio", 0.001),
        Threshold("booted", 1000),
    ]


def test_a_name_with_spaces_is_a_type_prefix_only_for_a_request_type():
    assert parse("--check-p95=connection lost=1,WebSocket connection lost=2") == [
        Threshold("p95", 1, "connection lost"),
        Threshold("p95", 2, "connection lost", "WebSocket"),
    ]


def test_values_may_be_strings_or_lists_of_strings():
    options = argparse.Namespace(check_p99="Heartbeat=100", check_fail_ratio=0, check_booted=5)
    assert thresholds_from_options(options) == [
        Threshold("p99", 100, "Heartbeat"),
        Threshold("fail_ratio", 0),
        Threshold("booted", 5),
    ]


MS = "expected MS to be milliseconds, 0 or more"
N = "expected a whole number, 1 or more"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--check-p95", "BootNotification", "expected NAME=MS, got 'BootNotification'"),
        ("--check-p95", "=500", "expected NAME=MS, got '=500'"),
        ("--check-p95", " =500", "expected NAME=MS, got '=500'"),
        ("--check-p99", "A=1,,B=2", "expected NAME=MS, got ''"),
        ("--check-p99", "A=1,", "expected NAME=MS, got ''"),
        ("--check-p95", "CSMS=500", "expected a request name after the type, got 'CSMS=500'"),
        ("--check-p95", "OCPP =500", "expected a request name after the type, got 'OCPP =500'"),
        ("--check-p95", "Heartbeat=-5", f"{MS}, got 'Heartbeat=-5'"),
        ("--check-p95", "Heartbeat=fast", f"{MS}, got 'Heartbeat=fast'"),
        ("--check-p95", "Heartbeat=", f"{MS}, got 'Heartbeat='"),
        ("--check-p99", "Heartbeat=nan", f"{MS}, got 'Heartbeat=nan'"),
        ("--check-p99", "Heartbeat=inf", f"{MS}, got 'Heartbeat=inf'"),
        ("--check-fail-ratio", "1.5", "expected a ratio from 0 to 1, got '1.5'"),
        ("--check-fail-ratio", "-0.1", "expected a ratio from 0 to 1, got '-0.1'"),
        ("--check-fail-ratio", "1%", "expected a ratio from 0 to 1, got '1%'"),
        ("--check-fail-ratio", "nan", "expected a ratio from 0 to 1, got 'nan'"),
        ("--check-booted", "0", f"{N}, got '0'"),
        ("--check-booted", "-3", f"{N}, got '-3'"),
        ("--check-booted", "1.5", f"{N}, got '1.5'"),
        ("--check-booted", "many", f"{N}, got 'many'"),
    ],
)
def test_bad_values_are_refused_with_one_line_naming_the_option(option, value, message, capsys):
    # From the command line, when Locust parses its options...
    with pytest.raises(SystemExit):
        parse(f"{option}={value}")
    assert f"argument {option}: {message}" in capsys.readouterr().err
    # ...and from options set otherwise.
    with pytest.raises(ValueError) as raised:
        thresholds_from_options(argparse.Namespace(**{option[2:].replace("-", "_"): value}))
    assert str(raised.value) == f"{option}: {message}"


def test_a_request_given_twice_is_refused():
    with pytest.raises(ValueError, match=r"^--check-p95: .* repeats CSMS Reset$"):
        parse("--check-p95=CSMS Reset=1", "--check-p95=Heartbeat=2,CSMS Reset=3")
    assert len(parse("--check-p95=Reset=1,CSMS Reset=2", "--check-p99=Reset=3")) == 3


# Descriptions.


def test_thresholds_describe_themselves():
    assert str(Threshold("p95", 500, "BootNotification")) == (
        "p95 of BootNotification at most 500 ms"
    )
    assert str(Threshold("p99", 2.5, "TriggerMessage", "CSMS")) == (
        "p99 of CSMS TriggerMessage at most 2.5 ms"
    )
    assert str(Threshold("fail_ratio", 0.001)) == "failure ratio at most 0.1 %"
    assert str(Threshold("booted", 1000)) == "at least 1000 charge points booted"


def test_outcomes_are_one_line():
    p95 = Threshold("p95", 500, "BootNotification")
    assert str(Outcome(p95, 23, True)) == "PASS p95 of BootNotification: 23 ms (at most 500 ms)"
    assert str(Outcome(p95, 612, False)) == "FAIL p95 of BootNotification: 612 ms (at most 500 ms)"
    assert str(Outcome(Threshold("p95", 500, "BootNotificaton"), None, False)) == (
        "FAIL p95 of BootNotificaton: no such requests (at most 500 ms)"
    )
    ratio = Threshold("fail_ratio", 0.001)
    assert str(Outcome(ratio, 0.0025, False)) == "FAIL failure ratio: 0.25 % (at most 0.1 %)"
    assert str(Outcome(ratio, None, False)) == "FAIL failure ratio: no requests (at most 0.1 %)"
    booted = Threshold("booted", 1000)
    assert str(Outcome(booted, 1000, True)) == "PASS charge points booted: 1000 (at least 1000)"


# Evaluation.


def test_p95_and_p99_pass_and_fail_on_locusts_own_percentiles():
    # 96 quick answers and 4 slow ones: the 95th percentile is quick, the 99th slow.
    stats = stats_of(*times("OCPP", "BootNotification", (96, 10), (4, 612)))
    assert check("--check-p95 BootNotification=10", stats) == Outcome(
        Threshold("p95", 10, "BootNotification"), 10, True
    )
    assert not check("--check-p95 BootNotification=9", stats).passed
    outcome = check("--check-p99 BootNotification=500", stats)
    assert (outcome.value, outcome.passed) == (610, False)  # Locust keeps 612 ms as 610 ms
    assert check("--check-p99 BootNotification=610", stats).passed


def test_a_type_prefix_picks_requests_of_that_type():
    stats = stats_of(
        *times("OCPP", "DataTransfer", (10, 10)), *times("CSMS", "DataTransfer", (10, 900))
    )
    assert check("--check-p95 CSMS DataTransfer=100", stats).value == 900
    assert check("--check-p95 OCPP DataTransfer=100", stats).value == 10
    outcome = check("--check-p95 WebSocket DataTransfer=100", stats)
    assert (outcome.value, outcome.passed) == (None, False)


def test_a_bare_name_means_ocpp_requests_first_else_the_only_ones():
    stats = stats_of(
        *times("CSMS", "DataTransfer", (10, 900)),
        *times("OCPP", "DataTransfer", (10, 10)),
        *times("CSMS", "TriggerMessage", (10, 20)),
    )
    assert check("--check-p95 DataTransfer=100", stats).value == 10
    assert check("--check-p95 TriggerMessage=100", stats).value == 20


def test_ocpp_2_0_1_types_are_prefixes_too():
    assert parse("--check-p95=OCPP201 Heartbeat=100,CSMS201 Reset=200,Heartbeat=50") == [
        Threshold("p95", 100, "Heartbeat", "OCPP201"),
        Threshold("p95", 200, "Reset", "CSMS201"),
        Threshold("p95", 50, "Heartbeat"),
    ]
    assert str(Threshold("p95", 100, "Heartbeat", "OCPP201")) == (
        "p95 of OCPP201 Heartbeat at most 100 ms"
    )


def test_a_mixed_fleets_versions_are_checked_apart():
    stats = stats_of(
        *times("OCPP", "Heartbeat", (10, 10)),
        *times("OCPP201", "Heartbeat", (10, 900)),
        *times("CSMS", "Reset", (10, 20)),
        *times("CSMS201", "Reset", (10, 300)),
    )
    assert check("--check-p95 OCPP201 Heartbeat=100", stats).value == 900
    assert check("--check-p95 OCPP Heartbeat=100", stats).value == 10
    assert check("--check-p95 CSMS201 Reset=100", stats).value == 300
    assert check("--check-p95 CSMS Reset=100", stats).value == 20
    # A bare name still means OCPP 1.6's, as before 2.0.1 came.
    assert check("--check-p95 Heartbeat=100", stats).value == 10
    outcome = check("--check-p95 Reset=100", stats)
    assert outcome.note == "requests of types CSMS, CSMS201; name one"


def test_a_bare_name_in_a_2_0_1_fleet_means_its_round_trips():
    stats = stats_of(
        *times("CSMS201", "Heartbeat", (10, 900)),  # not that a CSMS sends one
        *times("OCPP201", "Heartbeat", (10, 10)),
        *times("CSMS201", "Reset", (10, 20)),
    )
    assert check("--check-p95 Heartbeat=100", stats).value == 10
    assert check("--check-p95 Reset=100", stats).value == 20
    outcome = check("--check-p95 OCPP Heartbeat=100", stats)
    assert (outcome.value, outcome.passed) == (None, False)


def test_a_bare_name_of_several_other_types_fails_and_says_so():
    stats = stats_of(*times("CSMS", "Reset", (1, 10)), *times("WebSocket", "Reset", (1, 10)))
    outcome = check("--check-p95 Reset=100", stats)
    assert (outcome.value, outcome.passed) == (None, False)
    assert str(outcome) == (
        "FAIL p95 of Reset: requests of types CSMS, WebSocket; name one (at most 100 ms)"
    )


def test_aggregated_means_all_requests():
    stats = stats_of(*times("OCPP", "Heartbeat", (50, 10)), *times("CSMS", "Reset", (50, 300)))
    assert check("--check-p95 Aggregated=100", stats).value == 300
    assert check("--check-p95 Heartbeat=100", stats).value == 10


def test_requests_that_never_happened_fail():
    stats = stats_of(*times("OCPP", "BootNotification", (10, 10)))
    outcome = check("--check-p95 BootNotificaton=500", stats)
    assert (outcome.value, outcome.passed) == (None, False)
    assert ("BootNotificaton", "OCPP") not in stats.entries  # looking did not make one
    stats.reset_all()  # entries stay, with no requests
    assert not check("--check-p95 BootNotification=500", stats).passed
    assert not check("--check-p95 OCPP BootNotification=500", stats).passed
    assert not check("--check-p99 Aggregated=500", RequestStats()).passed


def test_fail_ratio_passes_and_fails():
    stats = stats_of(*[("OCPP", "Heartbeat", 10, i < 2) for i in range(1000)])
    assert check("--check-fail-ratio 0.002", stats) == Outcome(
        Threshold("fail_ratio", 0.002), 0.002, True
    )
    outcome = check("--check-fail-ratio 0.001", stats)
    assert (outcome.value, outcome.passed) == (0.002, False)
    assert str(outcome) == "FAIL failure ratio: 0.2 % (at most 0.1 %)"


def test_fail_ratio_without_requests_fails():
    outcome = check("--check-fail-ratio 1", RequestStats())
    assert (outcome.value, outcome.passed) == (None, False)


def test_booted_passes_and_fails_on_the_peak():
    stats = RequestStats()
    assert check("--check-booted 1000", stats, peak_booted=1000).passed
    outcome = check("--check-booted 1000", stats, peak_booted=999)
    assert (outcome.value, outcome.passed) == (999, False)


# JUnit XML.


def test_junit_report_parses_and_names_the_failed_threshold(tmp_path):
    stats = stats_of(*times("OCPP", "BootNotification", (10, 612)))
    thresholds = [
        Threshold("p95", 500, "BootNotification"),
        Threshold("fail_ratio", 0.01),
        Threshold("booted", 10),
    ]
    outcomes = evaluate(thresholds, stats, peak_booted=10)
    path = tmp_path / "reports" / "thresholds.xml"
    write_junit(outcomes, path, suite="ocpp-swarm <run & 1>", seconds=61.25)

    assert path.read_bytes().startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    [suite] = root
    assert suite.tag == "testsuite"
    assert suite.attrib == {
        "name": "ocpp-swarm <run & 1>",
        "tests": "3",
        "failures": "1",
        "errors": "0",
        "time": "61.250",
    }
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == [str(t) for t in thresholds]
    assert {case.get("classname") for case in cases} == {"ocpp-swarm.report.thresholds"}
    assert {case.get("time") for case in cases} == {"0"}
    failures = suite.findall("testcase/failure")
    assert [failure.get("message") for failure in failures] == [
        "FAIL p95 of BootNotification: 610 ms (at most 500 ms)"
    ]
    assert cases[0].find("failure").text == failures[0].get("message")  # shown by GitLab


def test_junit_report_of_no_thresholds(tmp_path):
    path = tmp_path / "thresholds.xml"
    write_junit([], path, suite="s", seconds=0)
    suite = ET.parse(path).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), len(suite)) == ("0", "0", 0)


# Locust's parser and its config files.


@pytest.fixture
def locust_parser(tmp_path, monkeypatch):
    """Locust's parser as ``locust`` builds it, finding config files in tmp_path.

    The swarm's Locust user adds its options through ``events.init_command_line_parser``;
    firing that here would add them to every later parser of this process, so they're added
    directly.
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # for ~/.locust.conf
    for name in list(os.environ):
        if name.startswith("LOCUST_"):
            monkeypatch.delenv(name)

    def build():
        parser = get_empty_argument_parser(default_config_files=DEFAULT_CONFIG_FILES)
        setup_parser_arguments(parser)
        add_arguments(parser)
        return parser

    return build


def test_pyproject_toml_sets_the_options(locust_parser, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        "[tool.locust]\n"
        'check-p95 = "BootNotification=500"\n'
        'check-p99 = ["Aggregated=900", "CSMS TriggerMessage=200,Heartbeat=100"]\n'
        "check-fail-ratio = 0.001\n"  # a TOML float
        "check-booted = 1000\n"  # a TOML integer
    )
    options = locust_parser().parse_args([])
    assert thresholds_from_options(options) == [
        Threshold("p95", 500, "BootNotification"),
        Threshold("p99", 900, "Aggregated"),
        Threshold("p99", 200, "TriggerMessage", "CSMS"),
        Threshold("p99", 100, "Heartbeat"),
        Threshold("fail_ratio", 0.001),
        Threshold("booted", 1000),
    ]
    # The command line replaces a config file's value, lists included.
    options = locust_parser().parse_args(["--check-p99", "Heartbeat=50"])
    assert [t for t in thresholds_from_options(options) if t.metric == "p99"] == [
        Threshold("p99", 50, "Heartbeat")
    ]


def test_locust_conf_sets_the_options(locust_parser, tmp_path):
    (tmp_path / "locust.conf").write_text(
        "check-p95 = BootNotification=500,CSMS TriggerMessage=200\n"
        "check-p99 = [Heartbeat=100, WebSocket connect=900]\n"
        "check-booted = 10\n"
    )
    assert thresholds_from_options(locust_parser().parse_args([])) == [
        Threshold("p95", 500, "BootNotification"),
        Threshold("p95", 200, "TriggerMessage", "CSMS"),
        Threshold("p99", 100, "Heartbeat"),
        Threshold("p99", 900, "connect", "WebSocket"),
        Threshold("booted", 10),
    ]


def test_a_config_file_named_with_config_sets_the_options(locust_parser, tmp_path):
    (tmp_path / "ci.conf").write_text("check-fail-ratio = 0.01\n")
    options = locust_parser().parse_args(["--config", "ci.conf"])
    assert thresholds_from_options(options) == [Threshold("fail_ratio", 0.01)]


def test_a_bad_value_in_a_config_file_is_refused_naming_the_option(locust_parser, tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text("[tool.locust]\ncheck-booted = 1000.0\n")
    with pytest.raises(SystemExit):
        locust_parser().parse_args([])
    assert "argument --check-booted: expected a whole number, 1 or more, got '1000.0'" in (
        capsys.readouterr().err
    )


def test_options_are_grouped_and_stay_out_of_the_web_ui(locust_parser):
    parser = locust_parser()
    assert "ocpp-swarm thresholds:" in parser.format_help()
    assert "check_p95" in vars(parser.parse_args([]))
    web_ui = parser.args_included_in_web_ui
    assert "host" in web_ui
    assert not {"check_p95", "check_p99", "check_fail_ratio", "check_booted"} & set(web_ui)
