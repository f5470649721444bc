"""The swarm's Locust options and the config they make, without running Locust."""

import argparse

import pytest

from swarm.locust.options import add_arguments, config_from_options


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
        (["--id-tags", "X" * 21], "id_tags"),
        (["--vendor", ""], "vendor"),
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
    with pytest.raises(ValueError, match="charging_power"):
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
