"""Read the recorded AMI sessions in ../shared/asterisk/transcripts (read-only).

A recording may hold several TCP sessions (``project_dialplans_session``: Asterisk restarted
mid-way): ``{"dir": "meta", "frame": "connect"|"disconnect"}`` lines bound them, and each
session starts with its banner. ``{"dir": "note"}`` lines say what the recorder did next; they
are kept as :class:`Frame` with ``dir == "note"`` and no message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from callcenter.ami.codec import BANNER_PREFIX, Message, parse_frame

TRANSCRIPTS = Path(__file__).resolve().parents[2] / "shared" / "asterisk" / "transcripts"
NAMES = sorted(p.stem for p in TRANSCRIPTS.glob("*.jsonl"))


@dataclass(frozen=True)
class Frame:
    t_ms: float | None
    dir: str  # "in" from Asterisk, "out" from the client, "meta" (connect/disconnect), "note"
    raw: str
    msg: Message | None  # None for the banner, meta and note lines
    line: int = 0  # 1-based line in the recording (what docs/ami.md cites)
    session: int = 0  # 0 for the first TCP session, 1 after the first reconnect …


def load(name: str) -> list[Frame]:
    frames = []
    session = -1
    for i, line in enumerate((TRANSCRIPTS / f"{name}.jsonl").read_text().splitlines()):
        o = json.loads(line)
        d, raw = o["dir"], o["frame"]
        if d in ("meta", "note") or raw.startswith(BANNER_PREFIX):
            if d == "in":
                session += 1  # every session starts with the banner
            frames.append(Frame(o["t_ms"], d, raw, None, i + 1, max(session, 0)))
            continue
        msg = parse_frame(raw.encode())
        assert isinstance(msg, dict), (name, i + 1, msg)
        frames.append(Frame(o["t_ms"], d, raw, msg, i + 1, max(session, 0)))
    return frames


def sessions(name: str) -> list[bytes]:
    """What Asterisk wrote on each TCP session of a recording, as it was on the wire (the banner
    line, then every message with its blank-line terminator)."""
    out: list[bytearray] = []
    for f in load(name):
        if f.dir != "in":
            continue
        if f.msg is None:  # a banner: a new session
            out.append(bytearray(f.raw.encode()))
        else:
            out[-1] += f.raw.encode() + b"\r\n"
    return [bytes(b) for b in out]


def events(name: str) -> list[Message]:
    return [f.msg for f in load(name) if f.dir == "in" and f.msg is not None and "Event" in f.msg]
