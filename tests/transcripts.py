"""Read the recorded AMI sessions in ../shared/asterisk/transcripts (read-only)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from callcenter.ami.codec import Message, parse_frame

TRANSCRIPTS = Path(__file__).resolve().parents[2] / "shared" / "asterisk" / "transcripts"
NAMES = sorted(p.stem for p in TRANSCRIPTS.glob("*.jsonl"))


@dataclass(frozen=True)
class Frame:
    t_ms: float
    dir: str  # "in" from Asterisk, "out" from the client
    raw: str
    msg: Message | None  # None for the banner


def load(name: str) -> list[Frame]:
    frames = []
    for i, line in enumerate((TRANSCRIPTS / f"{name}.jsonl").read_text().splitlines()):
        o = json.loads(line)
        if i == 0:
            frames.append(Frame(o["t_ms"], o["dir"], o["frame"], None))
            continue
        msg = parse_frame(o["frame"].encode())
        assert isinstance(msg, dict), (name, i, msg)
        frames.append(Frame(o["t_ms"], o["dir"], o["frame"], msg))
    return frames


def events(name: str) -> list[Message]:
    return [f.msg for f in load(name) if f.dir == "in" and f.msg is not None and "Event" in f.msg]
