"""swarm.limits: what one process can hold, and the source addresses to spread connections."""

import pytest

from swarm.limits import RESERVED_FILES, Capacity, capacity, local_ports, read_source_addresses


def test_capacity_is_bounded_by_open_files_and_by_ports_per_source_address():
    assert Capacity(20_000, 28_232, 1).charge_points == 20_000 - RESERVED_FILES
    assert Capacity(100_000, 28_232, 1).charge_points == 28_232
    assert Capacity(100_000, 28_232, 3).charge_points == 3 * 28_232
    assert Capacity(100_000, 28_232, 4).charge_points == 100_000 - RESERVED_FILES
    assert "x 3 source addresses" in str(Capacity(100_000, 28_232, 3))


def test_capacity_of_this_process_raises_its_open_file_limit_as_far_as_allowed():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
        found = capacity(2)
        assert found.open_files == resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
        assert found.local_ports == local_ports() > 1000
        assert found.source_addresses == 2
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_source_addresses_are_a_list_or_networks_of_this_machine():
    assert read_source_addresses("") == ()
    assert read_source_addresses("127.0.0.1, 127.0.0.2") == ("127.0.0.1", "127.0.0.2")
    assert read_source_addresses("127.0.0.0/29") == tuple(f"127.0.0.{n}" for n in range(1, 7))
    assert read_source_addresses("127.0.0.5,127.0.0.4/31") == ("127.0.0.5", "127.0.0.4")


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("127.0.0.300", "'127.0.0.300' is not an IP address"),
        ("csms.example", "'csms.example' is not an IP address"),
        ("192.0.2.7", "cannot use 192.0.2.7"),  # TEST-NET-1: no machine has it
        ("127.0.0.0/16", "more than 256 addresses"),
    ],
)
def test_bad_source_addresses_are_refused_naming_the_option(spec, error):
    with pytest.raises(ValueError, match="--source-addresses") as raised:
        read_source_addresses(spec)
    assert error in str(raised.value)
