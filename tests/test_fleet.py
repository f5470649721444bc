"""swarm.report.fleet: the fleet's counts in one process, and their sum over a master's workers."""

from swarm import engine
from swarm.protocol.samples import CSMS, CSMS201, OCPP, OCPP201, WEBSOCKET, Sample, callerror_code
from swarm.report import fleet
from swarm.report.fleet import CONNECTED, STATES, FleetCounters, FleetStatus, fleet_name


def test_counters_count_callerrors_by_action_and_code_and_csms_calls_by_action():
    counters = FleetCounters()
    for sample in [
        Sample(OCPP, "Heartbeat", 1.0),
        Sample(OCPP, "Heartbeat", 1.0, "CALLERROR InternalError"),
        Sample(OCPP, "Heartbeat", 1.0, "CALLERROR InternalError"),
        Sample(OCPP, "Authorize", 1.0, "CALLERROR SecurityError"),
        Sample(OCPP, "Authorize", 1.0, "CallTimeout"),  # a failure, not a CALLERROR
        Sample(CSMS, "Reset", 0.1),
        Sample(CSMS, "Reset", 0.1, "CALLERROR NotSupported"),  # ours, to the CSMS
        Sample(WEBSOCKET, "connection lost", 0.0, "1006"),
    ]:
        counters.count(sample)
    census = {**dict.fromkeys(STATES, 0), "accepted": 3, "offline": 1, "charging": 2}
    status = counters.status(census)
    assert status.callerrors == {
        "Heartbeat": {"InternalError": 2},
        "Authorize": {"SecurityError": 1},
    }
    assert status.csms_calls == {"Reset": 2}
    assert status.states["accepted"] == 3
    assert status.charging == 2
    assert status.connected == 3  # offline holds no connection
    counters.reset()
    assert counters.status(census).callerrors == {}


def test_a_status_survives_the_trip_to_the_master_and_sums_over_workers():
    one = FleetStatus(
        states={**dict.fromkeys(STATES, 0), "accepted": 10, "pending": 2},
        charging=4,
        callerrors={"Heartbeat": {"InternalError": 1}},
        csms_calls={"Reset": 3},
    )
    two = FleetStatus(
        states={**dict.fromkeys(STATES, 0), "accepted": 5, "connecting": 7},
        charging=1,
        callerrors={"Heartbeat": {"InternalError": 2, "GenericError": 1}},
        csms_calls={"TriggerMessage": 1},
    )
    total = FleetStatus.total([FleetStatus.from_dict(one.as_dict()), two])
    assert total.states["accepted"] == 15
    assert total.states["pending"] == 2
    assert total.states["connecting"] == 7
    assert total.charging == 5
    assert total.callerrors == {"Heartbeat": {"InternalError": 3, "GenericError": 1}}
    assert total.csms_calls == {"Reset": 3, "TriggerMessage": 1}
    assert total.connected == 17
    assert one.callerrors == {"Heartbeat": {"InternalError": 1}}  # the parts are untouched
    assert FleetStatus.total([]).states == dict.fromkeys(STATES, 0)


def test_states_and_callerror_codes():
    assert "stopped" not in STATES
    assert set(CONNECTED) == {"booting", "pending", "rejected", "accepted", "boot failed"}
    assert callerror_code("CALLERROR ProtocolError") == "ProtocolError"
    assert callerror_code("CallTimeout") is None


def test_counters_count_each_versions_own_and_name_2_0_1s_after_its_type():
    counters = FleetCounters()
    for sample in [
        Sample(OCPP, "Heartbeat", 1.0, "CALLERROR InternalError"),
        Sample(OCPP201, "Heartbeat", 1.0, "CALLERROR InternalError"),
        Sample(OCPP201, "Heartbeat", 1.0, "CALLERROR RpcFrameworkError"),
        Sample(OCPP201, "Authorize", 1.0, "CallTimeout"),
        Sample(CSMS, "Reset", 0.1),
        Sample(CSMS201, "Reset", 0.1),
        Sample(CSMS201, "GetVariables", 0.1, "CALLERROR NotSupported"),  # ours, to the CSMS
    ]:
        counters.count(sample)
    census = {"accepted": 5, "version 1.6": 2, "version 2.0.1": 3}
    status = counters.status(census)
    assert status.callerrors == {
        "Heartbeat": {"InternalError": 1},
        "OCPP201 Heartbeat": {"InternalError": 1, "RpcFrameworkError": 1},
    }
    assert status.csms_calls == {"Reset": 1, "CSMS201 Reset": 1, "CSMS201 GetVariables": 1}
    assert status.versions == {"1.6": 2, "2.0.1": 3}
    assert status.as_dict()["versions"] == {"1.6": 2, "2.0.1": 3}


def test_every_known_version_is_counted_even_with_none():
    assert FleetStatus().versions == {"1.6": 0, "2.0.1": 0}
    assert FleetCounters().status({"accepted": 1, "version 1.6": 1}).versions == {
        "1.6": 1,
        "2.0.1": 0,
    }
    # A worker of an older swarm reports no versions: it counts none.
    assert FleetStatus.from_dict({"states": {}}).versions == {"1.6": 0, "2.0.1": 0}


def test_versions_survive_the_trip_to_the_master_and_sum_over_workers():
    one = FleetStatus(versions={"1.6": 7, "2.0.1": 3})
    two = FleetStatus(versions={"1.6": 1, "2.0.1": 0})
    total = FleetStatus.total([FleetStatus.from_dict(one.as_dict()), two])
    assert total.versions == {"1.6": 8, "2.0.1": 3}


def test_names_and_the_census_prefix_agree_with_the_engine_and_thresholds():
    assert fleet.VERSION_PREFIX == engine.VERSION_PREFIX
    assert fleet_name(OCPP, "Heartbeat") == "Heartbeat"
    assert fleet_name(CSMS, "Reset") == "Reset"
    assert fleet_name(OCPP201, "Heartbeat") == "OCPP201 Heartbeat"
    assert fleet_name(CSMS201, "Reset") == "CSMS201 Reset"
    assert fleet.PREFIXED_TYPES == (OCPP201, CSMS201)
