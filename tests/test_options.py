"""The swarm's Locust options and the config they make, without running Locust."""

import argparse
import os
import re

import pytest

from swarm.locust.options import add_arguments, config_from_options
from tests.unpatched import unpatched


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_make_the_default_config():
    config = config_from_options(parse())
    assert (config.heartbeat_interval, config.authorize_interval, config.call_timeout) == (
        0,
        60,
        30,
    )
    assert len(config.id_tags) == 10


def test_values_from_the_web_ui_arrive_as_strings():
    options = parse()
    options.heartbeat_interval, options.id_tags = "2.5", "A, B"
    config = config_from_options(options)
    assert config.heartbeat_interval == 2.5
    assert config.id_tags == ("A", "B")


def test_id_tags_from_a_file(tmp_path):
    path = tmp_path / "tags.txt"
    path.write_text("# pool\nTAG-1\n\nTAG-2\n")
    assert config_from_options(parse("--id-tags", f"@{path}")).id_tags == ("TAG-1", "TAG-2")


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_seconds_must_be_finite_and_not_negative(value, capsys):
    with pytest.raises(SystemExit):
        parse("--heartbeat-interval", value)
    assert "--heartbeat-interval" in capsys.readouterr().err
    options = parse()
    options.call_timeout = value  # as the web UI would send it
    with pytest.raises(ValueError, match="--call-timeout"):
        config_from_options(options)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--serial-prefix", "CP#"], "--serial-prefix"),
        (["--serial-prefix", "CP /"], "--serial-prefix"),
        (["--serial-prefix", "X" * 13], "--serial-prefix"),
        (["--id-tags", "@/nonexistent"], "--id-tags: cannot read"),
        (["--id-tags", "X" * 21], "--id-tags: an idTag is 1 to 20 characters"),
        (["--vendor", ""], "--vendor must be 1 to 20 characters"),
    ],
)
def test_bad_values_are_refused_with_a_message_naming_them(argv, message):
    with pytest.raises(ValueError, match=message):
        config_from_options(parse(*argv))


def test_session_options_make_the_session_config():
    config = config_from_options(
        parse("--session-interval", "600", "--session-duration", "3600", "--meter-interval", "15")
    )
    assert (config.session_interval, config.session_duration, config.meter_interval) == (
        600,
        3600,
        15,
    )
    assert config.charging_power == 11000
    with pytest.raises(ValueError, match="--charging-power"):
        config_from_options(parse("--charging-power", "0"))


def test_reconnect_options_make_the_backoff_config():
    config = config_from_options(parse())
    assert (config.reconnect_min, config.reconnect_max) == (1, 60)
    config = config_from_options(parse("--reconnect-min", "0.5", "--reconnect-max", "8"))
    assert (config.reconnect_min, config.reconnect_max) == (0.5, 8)
    # A fixed wait: the ceiling is the floor.
    config = config_from_options(parse("--reconnect-min", "3", "--reconnect-max", "3"))
    assert (config.reconnect_min, config.reconnect_max) == (3, 3)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--reconnect-min", "0"], "--reconnect-min: .* above 0"),
        (["--reconnect-min", "100"], r"--reconnect-max: 60 s is less than .* \(100 s\)"),
        (["--reconnect-max", "0.5"], r"--reconnect-max: 0.5 s is less than --reconnect-min"),
    ],
)
def test_bad_reconnect_values_are_refused_naming_the_option(argv, message):
    with pytest.raises(ValueError, match=message):
        config_from_options(parse(*argv))


@pytest.mark.parametrize("option", ["--reconnect-min", "--reconnect-max"])
@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_reconnect_options_must_be_seconds(option, value, capsys):
    with pytest.raises(SystemExit):
        parse(option, value)
    assert f"argument {option}:" in capsys.readouterr().err
    options = parse()
    setattr(options, option[2:].replace("-", "_"), value)  # as the web UI would send it
    with pytest.raises(ValueError, match=option):
        config_from_options(options)


def test_reconnect_help_says_how_the_backoff_works():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    text = " ".join(parser.format_help().split())
    assert "exponential backoff with full jitter" in text
    for cause in ("a lost connection", "a refused connect", "a failed handshake"):
        assert cause in text


@pytest.mark.parametrize(
    ("argv", "versions"),
    [
        ([], (("1.6", 1),)),
        (["--ocpp-version", "2.0.1"], (("2.0.1", 1),)),
        (["--ocpp-version", "1.6,2.0.1"], (("1.6", 1), ("2.0.1", 1))),
        (["--ocpp-version", "1.6=7,2.0.1=3"], (("1.6", 7), ("2.0.1", 3))),
    ],
)
def test_ocpp_version_makes_the_fleets_versions(argv, versions):
    assert config_from_options(parse(*argv)).versions == versions


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "names no OCPP version"),
        ("2.0", "unknown OCPP version '2.0'"),
        ("1.6=0", "the weight of 1.6 must be a whole number above 0, got '0'"),
        ("1.6=x,2.0.1", "the weight of 1.6 must be a whole number above 0, got 'x'"),
        ("1.6,2.0.1,1.6", "1.6 is named twice"),
    ],
)
def test_bad_ocpp_versions_are_refused_naming_the_option(value, message, capsys):
    with pytest.raises(SystemExit):
        parse("--ocpp-version", value)
    err = capsys.readouterr().err
    assert "argument --ocpp-version:" in err
    assert re.search(message, err), err
    options = parse()
    options.ocpp_version = value  # as the web UI would send it
    with pytest.raises(ValueError, match=f"--ocpp-version: {message}"):
        config_from_options(options)


def test_a_scenarios_default_ocpp_version_goes_through_the_option(monkeypatch):
    with unpatched():
        from locust import events

        from swarm.locust.scenario import defaults
    hook = events.init_command_line_parser
    before = list(hook._handlers)
    defaults(ocpp_version="1.6=7,2.0.1=3")
    (listener,) = [handler for handler in hook._handlers if handler not in before]
    # Other tests' parsers must not take this default: fire it on this one, then remove it.
    hook.remove_listener(listener)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    listener(parser)
    assert parser.get_default("ocpp_version") == "1.6=7,2.0.1=3"  # text, as the web UI shows
    assert config_from_options(parser.parse_args([])).versions == (("1.6", 7), ("2.0.1", 3))
    assert config_from_options(parser.parse_args(["--ocpp-version", "2.0.1"])).versions == (
        ("2.0.1", 1),
    )


@pytest.fixture
def locust_parser(tmp_path, monkeypatch):
    """Locust's parser as ``locust`` builds it, with the swarm's options, finding config files
    in tmp_path (as tests/test_thresholds.py's)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # for ~/.locust.conf
    for name in list(os.environ):
        if name.startswith("LOCUST_"):
            monkeypatch.delenv(name)
    with unpatched():
        from locust.argument_parser import (
            DEFAULT_CONFIG_FILES,
            get_empty_argument_parser,
            setup_parser_arguments,
        )

    def build():
        parser = get_empty_argument_parser(default_config_files=DEFAULT_CONFIG_FILES)
        setup_parser_arguments(parser)
        add_arguments(parser)
        return parser

    return build


@pytest.mark.parametrize(
    ("filename", "text"),
    [
        ("locust.conf", "ocpp-version = 1.6=7,2.0.1=3\n"),
        ("pyproject.toml", '[tool.locust]\nocpp-version = "1.6=7,2.0.1=3"\n'),
    ],
)
def test_config_files_set_the_ocpp_version(locust_parser, tmp_path, filename, text):
    (tmp_path / filename).write_text(text)
    options = locust_parser().parse_args([])
    assert config_from_options(options).versions == (("1.6", 7), ("2.0.1", 3))
    options = locust_parser().parse_args(["--ocpp-version", "2.0.1"])
    assert config_from_options(options).versions == (("2.0.1", 1),)


def test_a_bad_ocpp_version_in_a_config_file_is_refused(locust_parser, tmp_path, capsys):
    (tmp_path / "locust.conf").write_text("ocpp-version = 1.6,3\n")
    with pytest.raises(SystemExit):
        locust_parser().parse_args([])
    assert "argument --ocpp-version: unknown OCPP version '3'" in capsys.readouterr().err


def test_ocpp_version_is_in_the_web_ui(locust_parser):
    parser = locust_parser()
    assert "ocpp_version" in parser.args_included_in_web_ui
    assert "--ocpp-version VERSIONS" in parser.format_help()
