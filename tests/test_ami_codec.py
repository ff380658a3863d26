"""The pure framing rules, on the recordings and on hostile input."""

from __future__ import annotations

import json

import pytest

from callcenter.ami.codec import (
    MAX_FRAME_BYTES, AmiInjectionError, FrameDecoder, Malformed, encode_action, parse_frame,
)
from tests.transcripts import NAMES, TRANSCRIPTS


def wire(name: str) -> bytes:
    """The bytes Asterisk sent in a recording, as they were on the wire."""
    out = bytearray()
    for i, line in enumerate((TRANSCRIPTS / f"{name}.jsonl").read_text().splitlines()):
        o = json.loads(line)
        if o["dir"] != "in":
            continue
        out += o["frame"].encode() + (b"" if i == 0 else b"\r\n")
    return bytes(out)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("chunk", [1, 7, 1500, 1 << 20])
def test_recordings_decode_identically_whatever_the_chunking(name, chunk):
    data = wire(name)
    whole = FrameDecoder().feed(data)
    d = FrameDecoder()
    parts = []
    for i in range(0, len(data), chunk):
        parts.extend(d.feed(data[i:i + chunk]))
    assert parts == whole
    assert d.banner == "Asterisk Call Manager/11.0.0"
    assert not any(isinstance(p, Malformed) for p in whole)


def test_utf8_split_across_reads_is_kept():
    frame = "Event: NewCallerid\r\nCallerIDName: 张三丰\r\nLinkedid: 1.1\r\n\r\n".encode()
    d = FrameDecoder(expect_banner=False)
    cut = frame.index("三".encode()) + 1  # inside the multi-byte character
    assert d.feed(frame[:cut]) == []
    assert d.feed(frame[cut:]) == [{"Event": "NewCallerid", "CallerIDName": "张三丰", "Linkedid": "1.1"}]


@pytest.mark.parametrize("raw,reason", [
    (b"Event: QueueCallerJoin\r\nCallerIDName: x\r\nEvent: Hangup\r\nLinkedid: 1", "duplicate header Event"),
    (b"Event: Newchannel\r\nCallerIDName: " + b"x" * 2000, "line too long"),
    (b"Event: Newchannel\r\nCallerIDName: \xe5\xbc", "invalid utf-8"),
    (b"Event: Newchannel\r\njust some text", "not a header line"),
])
def test_malformed_frames_are_reported_not_raised(raw, reason):
    out = FrameDecoder(expect_banner=False).feed(raw + b"\r\n\r\nEvent: Ping\r\n\r\n")
    assert out == [Malformed(reason, len(raw)), {"Event": "Ping"}]


def test_oversized_frame_is_skipped_up_to_its_end():
    d = FrameDecoder(expect_banner=False)
    out = d.feed(b"Event: Big\r\n" + b"X: " + b"y" * 900 + b"\r\n")
    for _ in range(MAX_FRAME_BYTES // 900 + 2):
        out += d.feed(b"X: " + b"y" * 900 + b"\r\n")
    out += d.feed(b"\r\nEvent: After\r\n\r\n")
    assert [o for o in out if isinstance(o, Malformed)] == [Malformed("frame too long", out[0].size)]
    assert out[-1] == {"Event": "After"}


def test_multi_valued_headers_are_joined():
    assert parse_frame(b"Event: X\r\nChanVariable: A=1\r\nChanVariable: B=2") == {
        "Event": "X", "ChanVariable": "A=1\nB=2"}


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
    data = wire("resync_mid_call")
    full = [m for m in FrameDecoder().feed(data)]
    d = FrameDecoder(wanted=frozenset({"QueueCallerJoin", "Hangup"}))
    lean = d.feed(data)
    keep = [m for m in full if "Response" in m or "ActionID" in m
            or m.get("Event") in ("QueueCallerJoin", "Hangup")]
    assert lean == keep
    assert d.skipped == len(full) - len(keep) > 100
