"""The pure framing rules, on the recordings and on hostile input."""

from __future__ import annotations

import pytest

from callcenter.ami.codec import (
    MAX_FRAME_BYTES, AmiInjectionError, FrameDecoder, Malformed, channel_variables, encode_action,
    encode_message, parse_frame, variables_by_channel,
)
from tests.transcripts import NAMES, sessions


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("chunk", [1, 7, 1500, 1 << 20])
def test_recordings_decode_identically_whatever_the_chunking(name, chunk):
    for data in sessions(name):
        whole = FrameDecoder().feed(data)
        d = FrameDecoder()
        parts = []
        for i in range(0, len(data), chunk):
            parts.extend(d.feed(data[i:i + chunk]))
        assert parts == whole
        assert d.banner == "Asterisk Call Manager/11.0.0"
        # Not one frame Asterisk sent is skipped (the ChanVariable(<channel>) form included).
        assert not any(isinstance(p, Malformed) for p in whole)
        assert len(whole) == data.count(b"\r\n\r\n")


def test_utf8_split_across_reads_is_kept():
    frame = "Event: NewCallerid\r\nCallerIDName: 张三丰\r\nLinkedid: 1.1\r\n\r\n".encode()
    d = FrameDecoder(expect_banner=False)
    cut = frame.index("三".encode()) + 1  # inside the multi-byte character
    assert d.feed(frame[:cut]) == []
    assert d.feed(frame[cut:]) == [{"Event": "NewCallerid", "CallerIDName": "张三丰", "Linkedid": "1.1"}]


@pytest.mark.parametrize("raw,reason,event", [
    (b"Event: QueueCallerJoin\r\nCallerIDName: x\r\nEvent: Hangup\r\nLinkedid: 1", "duplicate header Event",
     "QueueCallerJoin"),
    (b"Event: Newchannel\r\nCallerIDName: x\r\nLinkedid: 1\r\nLinkedid: 2", "duplicate header Linkedid",
     "Newchannel"),
    (b"Event: Newchannel\r\nCallerIDName: " + b"x" * 2000, "line too long", "Newchannel"),
    (b"Event: Newchannel\r\nCallerIDName: \xe5\xbc", "invalid utf-8", "Newchannel"),
    (b"Event: Newchannel\r\njust some text", "not a header line", "Newchannel"),
    (b"Response: Success\r\njust some text", "not a header line", None),
])
def test_malformed_frames_are_reported_not_raised(raw, reason, event):
    out = FrameDecoder(expect_banner=False).feed(raw + b"\r\n\r\nEvent: Ping\r\n\r\n")
    assert out == [Malformed(reason, len(raw), event), {"Event": "Ping"}]


def test_oversized_frame_is_skipped_up_to_its_end():
    d = FrameDecoder(expect_banner=False)
    out = d.feed(b"Event: Big\r\n" + b"X: " + b"y" * 900 + b"\r\n")
    for _ in range(MAX_FRAME_BYTES // 900 + 2):
        out += d.feed(b"X: " + b"y" * 900 + b"\r\n")
    out += d.feed(b"\r\nEvent: After\r\n\r\n")
    assert [o for o in out if isinstance(o, Malformed)] == [Malformed("frame too long", out[0].size, "Big")]
    assert out[-1] == {"Event": "After"}


def test_multi_valued_headers_are_joined():
    assert parse_frame(b"Event: X\r\nChanVariable: A=1\r\nChanVariable: B=2") == {
        "Event": "X", "ChanVariable": "A=1\nB=2"}


def test_every_channel_variable_form_is_kept_per_channel_and_variable():
    # OriginateResponse (older manager_event path) names the channel in the key; a SIP URI in
    # a channel name may hold a colon.
    raw = (b"Event: OriginateResponse\r\nActionID: ob-8-1-x\r\nResponse: Success\r\nReason: 4\r\n"
           b"ChanVariable(Local/139@outbound-trunk-00000025;1): CALLBACK_JOB=ob-8-1-x\r\n"
           b"ChanVariable(Local/139@outbound-trunk-00000025;1): WORK_ORDER=\r\n"
           b"ChanVariable(PJSIP/sip:a@b-0001): X=1")
    msg = parse_frame(raw)
    assert isinstance(msg, dict) and msg["Reason"] == "4"
    assert variables_by_channel(msg) == {
        "Local/139@outbound-trunk-00000025;1": {"CALLBACK_JOB": "ob-8-1-x", "WORK_ORDER": ""},
        "PJSIP/sip:a@b-0001": {"X": "1"}}
    bridge = parse_frame(b"Event: LocalBridge\r\nLocalOneChanVariable: A=1\r\nLocalOneChanVariable: B=\r\n"
                         b"LocalTwoChanVariable: A=2\r\nLocalTwoChanVariable: B=3\r\n"
                         b"DestChanVariable: A=4\r\nChanVariable: A=5")
    assert isinstance(bridge, dict)
    assert channel_variables(bridge, "LocalOne") == {"A": "1", "B": ""}
    assert channel_variables(bridge, "LocalTwo") == {"A": "2", "B": "3"}
    assert channel_variables(bridge, "Dest") == {"A": "4"}
    assert channel_variables(bridge) == {"A": "5"}


def test_the_simulator_may_write_the_channel_form_but_an_action_never():
    data = encode_message([("Event", "OriginateResponse"), ("ChanVariable(Local/1@t-1;1)", "A=1"),
                           ("ChanVariable(Local/1@t-1;1)", "B=2")])
    assert parse_frame(data[:-4]) == {"Event": "OriginateResponse", "ChanVariable(Local/1@t-1;1)": "A=1\nB=2"}
    with pytest.raises(AmiInjectionError):
        encode_action("Originate", "x", {"ChanVariable(Local/1@t-1;1)": "A=1"})
    with pytest.raises(AmiInjectionError):
        encode_message([("Event", "X"), ("ChanVariable(a\r\nEvent: Hangup)", "A=1")])


def test_encode_action_matches_the_recorded_shape():
    data = encode_action("Originate", "cb-1", {"Channel": "Local/13800138000@outbound-trunk",
                                               "Async": True, "Timeout": 30000,
                                               "Variable": ["CALLBACK_JOB=cb-1001"]})
    assert data == (b"Action: Originate\r\nActionID: cb-1\r\nChannel: Local/13800138000@outbound-trunk\r\n"
                    b"Async: true\r\nTimeout: 30000\r\nVariable: CALLBACK_JOB=cb-1001\r\n\r\n")


@pytest.mark.parametrize("headers", [
    {"Channel": "Local/1@x\r\nAction: Hangup"},
    {"CallerID": "bad\nname"},
    {"Variable": ["A=1", "B=2\r\n\r\nAction: Command"]},
    {"Bad Header": "x"},
    {"Data": "x\x00"},
])
def test_injection_is_refused_before_anything_is_written(headers):
    with pytest.raises(AmiInjectionError):
        encode_action("Originate", "x-1", headers)


def test_unwanted_events_are_passed_over_but_answers_never():
    (data,) = sessions("resync_mid_call")
    full = [m for m in FrameDecoder().feed(data)]
    d = FrameDecoder(wanted=frozenset({"QueueCallerJoin", "Hangup"}))
    lean = d.feed(data)
    keep = [m for m in full if "Response" in m or "ActionID" in m
            or m.get("Event") in ("QueueCallerJoin", "Hangup")]
    assert lean == keep
    assert d.skipped == len(full) - len(keep) > 100
