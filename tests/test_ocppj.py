"""The OCPP-J framing, without I/O."""

import json

import pytest

from swarm.protocol import ocppj


def test_frames_round_trip():
    assert ocppj.parse(ocppj.call_frame("1", "Heartbeat", {})) == ocppj.Call("1", "Heartbeat", {})
    assert ocppj.parse(ocppj.result_frame("1", {"a": 1})) == ocppj.CallResult("1", {"a": 1})
    error = ocppj.parse(ocppj.error_frame("1", ocppj.GENERIC_ERROR, "why", {"x": 1}))
    assert error == ocppj.CallError("1", "GenericError", "why", {"x": 1})


def test_frames_are_compact_json():
    assert (
        ocppj.call_frame("7", "Authorize", {"idTag": "T1"}) == '[2,"7","Authorize",{"idTag":"T1"}]'
    )


def test_parse_accepts_bytes():
    assert ocppj.parse(b'[3,"9",{}]') == ocppj.CallResult("9", {})


@pytest.mark.parametrize(
    ("text", "code", "unique_id"),
    [
        ("not json", ocppj.FORMATION_VIOLATION, None),
        ("{}", ocppj.FORMATION_VIOLATION, None),
        ("[]", ocppj.FORMATION_VIOLATION, None),
        ('[2,"5","Heartbeat"]', ocppj.FORMATION_VIOLATION, "5"),
        ('[2,"5","Heartbeat",[]]', ocppj.FORMATION_VIOLATION, "5"),
        ('[2,5,"Heartbeat",{}]', ocppj.FORMATION_VIOLATION, None),
        ('[3,"5"]', ocppj.FORMATION_VIOLATION, "5"),
        ('[9,"5",{}]', ocppj.PROTOCOL_ERROR, "5"),
        ('["2","5","Heartbeat",{}]', ocppj.PROTOCOL_ERROR, "5"),
        ('[true,"5","Heartbeat",{}]', ocppj.PROTOCOL_ERROR, "5"),
        (b"\xff\xfe", ocppj.FORMATION_VIOLATION, None),
        ("[" * 100_000 + "]" * 100_000, ocppj.FORMATION_VIOLATION, None),
    ],
)
def test_malformed_frames_name_their_error_code(text, code, unique_id):
    with pytest.raises(ocppj.FrameError) as info:
        ocppj.parse(text)
    assert info.value.code == code
    assert info.value.unique_id == unique_id


def test_callerror_as_csmss_send_it_is_tolerated():
    # A numeric id and a missing details object: still a CALLERROR the caller can match.
    error = ocppj.parse(json.dumps([4, -1, "FormationViolation", "bad"]))
    assert error == ocppj.CallError("-1", "FormationViolation", "bad", {})
