"""AMI framing as pure functions: bytes in, messages out; actions out, validated.

No I/O here. The connector (client side) and the simulator (server side) both frame with this
module, so what one writes the other reads by the same rules.

Why not panoramisk's parser: it decodes every TCP chunk on its own with ``errors='ignore'`` (a
multi-byte UTF-8 character split across two reads is silently dropped), turns a duplicated header
into a list (a CR/LF smuggled into a caller id then crashes ``message['event'].lower()`` inside
``data_received`` and asyncio closes the transport), and has no bound on a frame's size.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

EOL = b"\r\n"
TERMINATOR = b"\r\n\r\n"
BANNER_PREFIX = "Asterisk Call Manager/"

# Bytes. Asterisk's own lines stay far below this; a longer one is corruption or an attack.
MAX_LINE_BYTES = 1024
# Bytes. The largest list-event frames (QueueMember, Status) are ~1 KiB.
MAX_FRAME_BYTES = 64 * 1024

# Headers that may legitimately repeat in one message; any other duplicate is malformed
# (a CR/LF injected into a caller id produces exactly that: a second ``Event:`` or ``Linkedid:``).
MULTI_VALUED = frozenset({"ChanVariable", "DestChanVariable", "LocalOneChanVariable",
                          "LocalTwoChanVariable", "Variable", "Output"})

# Channel-variable headers, one per ``channelvars`` entry of manager.conf, "NAME=value". Events
# built from a channel snapshot write them plain, prefixed for the other channels the event
# describes: ``ChanVariable`` / ``DestChanVariable`` (DialBegin, AgentCalled …) /
# ``LocalOneChanVariable`` / ``LocalTwoChanVariable`` (LocalBridge). Events raised through
# Asterisk's older manager_event path name the channel in the key instead:
# ``ChanVariable(<channel name>): NAME=value`` — OriginateResponse among them
# (shared/asterisk/transcripts/project_dialplans_session.jsonl line 318). Every form repeats.
VARIABLE_HEADER = re.compile(r"(Dest|LocalOne|LocalTwo)?ChanVariable(?:\(([^\r\n]+)\))?\Z")

Message = dict[str, str]
"""One AMI message: header name → value (values of repeated headers — MULTI_VALUED and the
``ChanVariable(<channel>)`` forms — joined by '\\n', in arrival order)."""


@dataclass(frozen=True, slots=True)
class Malformed:
    """A frame that could not be read; the connector counts and logs ``reason`` and ``event``
    (never the payload: it may hold a caller's number) and goes on with the next frame."""

    reason: str
    size: int
    # The frame's event name when its first ``Event:`` line could be read, else None.
    event: str | None = None


_EVENT_NAME = re.compile(rb"(?:\A|\n)Event: ?([A-Za-z][A-Za-z0-9_-]{0,63})\r?(?:\n|\Z)")


def event_name_of(raw: bytes | bytearray) -> str | None:
    """The first ``Event:`` name in a raw frame, if it is a plausible one (for counting what a
    skipped frame was; never its content)."""
    m = _EVENT_NAME.search(raw)
    return m.group(1).decode("ascii") if m else None


def _repeats(key: str) -> bool:
    return key in MULTI_VALUED or (key.endswith(")") and VARIABLE_HEADER.match(key) is not None)


class AmiInjectionError(ValueError):
    """An action header would break AMI framing (CR, LF or NUL in a value, odd header name)."""

    def __init__(self, header: str, problem: str) -> None:
        super().__init__(f"AMI header {header!r}: {problem}")
        self.header = header
        self.problem = problem


def parse_frame(raw: bytes) -> Message | Malformed:
    """Parse one frame (without its blank-line terminator) into a message.

    Returns :class:`Malformed` for invalid UTF-8, an over-long line, a line that is not
    ``Key: Value``, or a duplicated header outside :data:`MULTI_VALUED`.
    """
    size = len(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Malformed("invalid utf-8", size, event_name_of(raw))
    msg: Message = {}
    for line in text.split("\r\n"):
        if not line:
            continue
        if len(line) > MAX_LINE_BYTES // 4 and len(line.encode("utf-8")) > MAX_LINE_BYTES:
            return Malformed("line too long", size, event_name_of(raw))
        key, sep, value = line.partition(":")
        if "(" in key or (not sep and "(" in line):
            # ``ChanVariable(<channel>): …``: the channel name may itself hold a colon
            # (e.g. a SIP URI), so the key ends at the "):" that closes it.
            close = line.find("):")
            if close > 0:
                key, sep, value = line[:close + 1], ":", line[close + 2:]
        if not sep or not key or " " in key:
            return Malformed("not a header line", size, event_name_of(raw))
        if value.startswith(" "):
            value = value[1:]
        if key in msg:
            if not _repeats(key):
                return Malformed(f"duplicate header {key}", size, msg.get("Event"))
            msg[key] = msg[key] + "\n" + value
        else:
            msg[key] = value
    if not msg:
        return Malformed("empty frame", size)
    return msg


def channel_variables(msg: Message, prefix: str = "") -> dict[str, str]:
    """``NAME → value`` of every channel-variable header of one channel of an event, in both
    forms: ``{prefix}ChanVariable`` and ``{prefix}ChanVariable(<channel>)``. ``prefix`` is
    ``""`` (the event's channel), ``"Dest"``, ``"LocalOne"`` or ``"LocalTwo"``. A variable that
    is set but empty maps to ``""``."""
    out: dict[str, str] = {}
    for channel_vars in variables_by_channel(msg, prefix).values():
        out.update(channel_vars)
    return out


def variables_by_channel(msg: Message, prefix: str = "") -> dict[str | None, dict[str, str]]:
    """Channel variables kept per channel: the ``ChanVariable(<channel>)`` form under its
    channel name, the plain form under None."""
    out: dict[str | None, dict[str, str]] = {}
    for key, value in msg.items():
        if "ChanVariable" not in key:
            continue
        m = VARIABLE_HEADER.match(key)
        if m is None or (m.group(1) or "") != prefix:
            continue
        target = out.setdefault(m.group(2), {})
        for item in split_list(value):
            name, _, v = item.partition("=")
            if name:
                target[name] = v
    return out


class FrameDecoder:
    """Incremental decoder: feed it what the socket gave, get back complete messages.

    Bytes are buffered until a whole frame is there, so UTF-8 split across reads is decoded
    correctly. The first line of a client-side stream is the banner (no blank line after it).
    A frame larger than :data:`MAX_FRAME_BYTES` is discarded up to its terminator and reported
    once as :class:`Malformed`.
    """

    __slots__ = ("_buf", "_expect_banner", "banner", "_discarding", "wanted", "skipped")

    def __init__(self, *, expect_banner: bool = True, wanted: frozenset[str] | None = None) -> None:
        self._buf = bytearray()
        self._expect_banner = expect_banner
        # Event names worth parsing (None = all). Most of a busy stream (VarSet, Newexten,
        # DeviceStateChange, Newstate …) is read past after one look at its first line;
        # frames with an ActionID (list answers) and responses are always parsed.
        self.wanted: frozenset[bytes] | None = None if wanted is None else frozenset(
            w.encode() for w in wanted)
        # Frames read past because of ``wanted``.
        self.skipped = 0
        # The banner line, e.g. "Asterisk Call Manager/11.0.0"; None until it has arrived.
        self.banner: str | None = None
        # True while skipping the rest of an over-long frame.
        self._discarding = False

    def feed(self, data: bytes) -> list[Message | Malformed]:
        buf = self._buf
        buf += data
        out: list[Message | Malformed] = []
        if self._expect_banner and self.banner is None:
            nl = buf.find(EOL)
            if nl < 0:
                if len(buf) > MAX_LINE_BYTES:
                    out.append(Malformed("banner too long", len(buf)))
                    buf.clear()
                    self.banner = ""  # not Asterisk: the connector refuses an empty banner
                return out
            self.banner = bytes(buf[:nl]).decode("utf-8", "replace")
            del buf[: nl + 2]
        start = 0
        find = buf.find
        wanted = self.wanted
        while True:
            end = find(TERMINATOR, start)
            if end < 0:
                break
            if self._discarding:
                self._discarding = False
            else:
                # Tolerate stray CRLFs between frames (seen after a bare "\r\n" keep-alive).
                s = start
                while buf.startswith(EOL, s) and s < end:
                    s += 2
                if wanted is not None and buf.startswith(b"Event: ", s):
                    nl = find(EOL, s, end)
                    name = bytes(buf[s + 7:nl if nl >= 0 else end])
                    if name not in wanted and find(b"ActionID:", s, end) < 0:
                        self.skipped += 1
                        start = end + 4
                        continue
                if end - s > MAX_FRAME_BYTES:
                    # Same verdict whether the frame came in one read or many.
                    out.append(Malformed("frame too long", end - s, event_name_of(buf[s:s + 200])))
                elif s < end:
                    out.append(parse_frame(bytes(buf[s:end])))
            start = end + 4
        if start:
            del buf[:start]
        if len(buf) > MAX_FRAME_BYTES:
            if not self._discarding:
                out.append(Malformed("frame too long", len(buf), event_name_of(buf[:200])))
            self._discarding = True
            # Keep the tail: the terminator may straddle this read and the next.
            del buf[:-3]
        return out


_HEADER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}\Z")
_FORBIDDEN = re.compile(r"[\r\n\x00]")


def _check(key: str, value: str, *, event: bool = False) -> None:
    # Actions only ever use plain names; messages Asterisk writes (the simulator's) may also
    # carry the ``ChanVariable(<channel>)`` form.
    if not _HEADER_NAME.match(key) and not (
            event and _FORBIDDEN.search(key) is None and VARIABLE_HEADER.match(key)):
        raise AmiInjectionError(key, "invalid header name")
    if _FORBIDDEN.search(value):
        raise AmiInjectionError(key, "CR, LF or NUL in value")
    if len(value.encode("utf-8")) > MAX_LINE_BYTES - len(key) - 2:
        raise AmiInjectionError(key, "value too long")


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_action(
    action: str,
    action_id: str,
    headers: Mapping[str, object] | None = None,
) -> bytes:
    """Serialise an action, refusing anything that could inject a header or a frame.

    ``headers`` values may be str, int, bool, or a sequence of those (one line each, e.g.
    ``Variable``). Raises :class:`AmiInjectionError` naming the offending header.
    """
    lines = [("Action", action), ("ActionID", action_id)]
    for key, value in (headers or {}).items():
        if isinstance(value, (list, tuple)):
            lines.extend((key, _text(v)) for v in value)
        else:
            lines.append((key, _text(value)))
    return encode_message(lines)


def encode_message(fields: Iterable[tuple[str, str]] | Mapping[str, str]) -> bytes:
    """Serialise a message (action, response or event), terminator included, checking every
    header like an action's (so the simulator cannot emit what a real Asterisk never would).
    Raises :class:`AmiInjectionError`."""
    items = fields.items() if isinstance(fields, Mapping) else fields
    parts = []
    event = False
    for key, value in items:
        if key == "Action":
            event = False
        elif key in ("Event", "Response") and not parts:
            event = True
        _check(key, value, event=event)
        parts.append(f"{key}: {value}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("utf-8")


def split_list(value: str) -> Sequence[str]:
    """Values of a MULTI_VALUED header, in the order they arrived."""
    return value.split("\n") if value else ()
