"""Property test of the AMI codec over generated frames: whatever Asterisk could send — repeated
channel-variable headers in every form, names with colons, UTF-8 (Chinese caller names) split
anywhere across reads — is read, never skipped; and a CR/LF smuggled into a caller id (a second
``Event:`` or ``Linkedid:``) is still refused."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.ami.codec import FrameDecoder, Malformed, channel_variables, variables_by_channel

EVENTS = ["Newchannel", "Newstate", "Hangup", "HangupRequest", "SoftHangupRequest", "DialBegin",
          "DialEnd", "LocalBridge", "OriginateResponse", "AgentConnect", "QueueCallerJoin"]
NAME = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N"), exclude_characters="\r\n"),
               min_size=0, max_size=12)
# Values Asterisk writes unescaped: anything but CR/LF (":" and "=" included).
VALUE = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n", exclude_categories=("Cs",)),
                max_size=40)
VAR = st.from_regex(r"[A-Z_][A-Z0-9_]{0,15}", fullmatch=True)
CHANNEL = st.one_of(
    st.from_regex(r"Local/1[3-9][0-9]{9}@outbound-trunk-0000[0-9a-f]{4};[12]", fullmatch=True),
    st.from_regex(r"PJSIP/[a-z0-9]{1,8}-0000[0-9a-f]{4}", fullmatch=True),
    st.from_regex(r"PJSIP/sip:[a-z0-9]{1,6}@[a-z]{1,6}:50[0-9]{2}-0000[0-9a-f]{4}", fullmatch=True),
)


@st.composite
def frames(draw):  # type: ignore[no-untyped-def]
    """(raw frame bytes, the variables per (prefix, channel) it carries, its other headers)."""
    event = draw(st.sampled_from(EVENTS))
    lines = [("Event", event), ("Privilege", "call,all"), ("CallerIDName", draw(NAME)),
             ("Linkedid", draw(st.from_regex(r"[0-9]{10}\.[0-9]{1,4}", fullmatch=True)))]
    expected: dict[tuple[str, str | None], dict[str, str]] = {}
    for prefix in draw(st.lists(st.sampled_from(["", "Dest", "LocalOne", "LocalTwo"]), max_size=4, unique=True)):
        channel = draw(st.one_of(st.none(), CHANNEL))
        names = draw(st.lists(VAR, min_size=1, max_size=4, unique=True))
        for n in names:
            v = draw(VALUE)
            key = f"{prefix}ChanVariable" + (f"({channel})" if channel else "")
            lines.append((key, f"{n}={v}"))
            expected.setdefault((prefix, channel), {})[n] = v
    raw = "".join(f"{k}: {v}\r\n" for k, v in lines).encode()
    return raw, expected, dict(lines[:4])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames(), min_size=1, max_size=6), st.lists(st.integers(1, 400), max_size=30))
def test_every_frame_asterisk_could_send_is_read(batch, cuts):  # type: ignore[no-untyped-def]
    wire = b"Asterisk Call Manager/11.0.0\r\n" + b"".join(raw + b"\r\n" for raw, _, _ in batch)
    d = FrameDecoder()
    out: list = []
    pos = 0
    for cut in cuts:  # arbitrary TCP reads: UTF-8 split anywhere
        out += d.feed(wire[pos:pos + cut])
        pos += cut
    out += d.feed(wire[pos:])
    assert not [m for m in out if isinstance(m, Malformed)]
    assert len(out) == len(batch)
    for msg, (_, expected, head) in zip(out, batch, strict=True):
        for k, v in head.items():
            assert msg[k] == v
        for (prefix, channel), variables in expected.items():
            assert variables_by_channel(msg, prefix)[channel] == variables
        for prefix in {p for p, _ in expected}:
            merged: dict[str, str] = {}
            for (p, _), variables in expected.items():
                if p == prefix:
                    merged.update(variables)
            assert channel_variables(msg, prefix).keys() == merged.keys()


@settings(max_examples=200, deadline=None)
@given(frames(), st.sampled_from(["Event: Hangup", "Linkedid: 1796661907.99", "ActionID: x",
                                  "Response: Success", "Uniqueid: 1.2"]))
def test_a_header_smuggled_into_a_caller_id_is_still_refused(frame, smuggled):  # type: ignore[no-untyped-def]
    raw, _, head = frame
    name = head["CallerIDName"]
    injected = raw.replace(f"CallerIDName: {name}\r\n".encode(),
                           f"CallerIDName: {name}\r\n{smuggled}\r\n".encode(), 1)
    if smuggled.split(":")[0] not in ("Event", "Linkedid"):
        injected += f"{smuggled}\r\n".encode()  # a header the frame has once already
    (msg,) = FrameDecoder(expect_banner=False).feed(injected + b"\r\n")
    assert isinstance(msg, Malformed) and msg.reason.startswith("duplicate header")
    assert msg.event == head["Event"]
