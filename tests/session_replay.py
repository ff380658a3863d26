"""An AMI server that plays Asterisk's side of an interactive recording to the real service.

``shared/asterisk/transcripts/project_dialplans_session.jsonl`` is the project itself against a
real Asterisk 22: besides what Asterisk did on its own, it holds the service's own actions
(``out`` frames: agents logging in and out, pausing, the dialler's ``Originate``\\s) and what
Asterisk answered. Played back, each recorded action is a gate: the script waits until the
service sends the same action (same ``Action`` and, for the Queue actions, the same queue and
interface; for an ``Originate``, the same channel), then answers with the recorded response —
the service's ``ActionID`` put in — and goes on. The ids the service generates (an attempt id is
the Originate's ActionID, ChannelId, the channel's Uniqueid and every Linkedid of the call) are
mapped onto the recorded ones by substitution in every later frame.

Housekeeping actions (``Ping``, ``CoreShowChannels``, ``QueueStatus``) are answered whenever
they come, from the latest recorded answer of the current TCP session (or the next one, before
the first): the service may send them at other moments than it did when recorded. Actions the
recording never saw (the restore's ``QueueAdd`` after the restart, a retry ``Originate``) are
answered as Asterisk answers them (``received``/``unexpected`` keep them for the test).

A ``meta: disconnect`` line closes the socket; the next session starts when the service
reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from callcenter.ami.codec import FrameDecoder, Malformed, Message, encode_message, parse_frame

HOUSEKEEPING = {"ping", "coreshowchannels", "queuestatus", "logoff"}
GATED_KEYS = {"queueadd": ("Queue", "Interface"), "queueremove": ("Queue", "Interface"),
              "queuepause": ("Interface", "Paused"), "originate": ("Channel",)}


@dataclass
class Step:
    kind: str  # "in" (an Asterisk frame), "gate" (wait for the service's action), "disconnect"
    frame: str = ""
    msg: Message | None = None
    line: int = 0


@dataclass
class SessionReplay:
    path: Path
    steps: list[list[Step]] = field(default_factory=list)  # per TCP session
    # Housekeeping answers per session: action (lower case) → [(step index, [frames])].
    answers: list[dict[str, list[tuple[int, list[str]]]]] = field(default_factory=list)
    received: list[Message] = field(default_factory=list)  # every action the service sent
    unexpected: list[Message] = field(default_factory=list)  # actions the recording never saw
    ids: dict[str, str] = field(default_factory=dict)  # recorded id → the service's id
    session: int = -1
    cursor: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    sessions_done: list[asyncio.Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._load()
        self._server: asyncio.AbstractServer | None = None
        self._gate_hit = asyncio.Event()
        self._waiting_gate: Step | None = None
        self._satisfied: set[int] = set()  # lines of gates an early action already passed
        self.port = 0

    # -- the recording ---------------------------------------------------------------------

    def _load(self) -> None:
        lines = self.path.read_text("utf-8").splitlines()
        by_action: dict[str, str] = {}  # recorded ActionID → action (lower case)
        current: list[Step] | None = None
        for n, raw in enumerate(lines, 1):
            d = json.loads(raw)
            kind, frame = d["dir"], d["frame"]
            if kind == "meta":
                if frame.startswith("connect"):
                    current = []
                    self.steps.append(current)
                    self.answers.append({})
                    self.sessions_done.append(asyncio.Event())
                elif current is not None:
                    current.append(Step("disconnect", line=n))
                continue
            if kind == "note" or current is None:
                continue
            if frame.startswith("Asterisk Call Manager/"):
                continue  # the banner: written on connect
            msg = parse_frame(frame.encode())
            assert not isinstance(msg, Malformed), (n, msg)
            if kind == "out":
                action = msg.get("Action", "").lower()
                by_action[msg.get("ActionID", "")] = action
                if action == "login":
                    continue
                if action in HOUSEKEEPING:
                    self.answers[-1].setdefault(action, []).append((len(current), []))
                    continue
                current.append(Step("gate", frame, msg, n))
                continue
            aid = msg.get("ActionID")
            action = by_action.get(aid or "")
            if action == "login":
                continue  # answered with the client's own id on login
            if action in HOUSEKEEPING:
                self.answers[-1][action][-1][1].append(frame)
                continue
            current.append(Step("in", frame, msg, n))

    def _map(self, frame: str) -> str:
        for recorded, actual in self.ids.items():
            frame = re.sub(re.escape(recorded) + r"(?![0-9A-Za-z])", actual, frame)
        return frame

    # -- serving ---------------------------------------------------------------------------

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.session += 1
        session = self.session
        if session >= len(self.steps):
            # After the recording: an idle Asterisk that answers what it is asked.
            session = -1
        self.cursor = 0
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        decoder = FrameDecoder(expect_banner=False)
        play: asyncio.Task | None = None
        try:
            while not reader.at_eof():
                data = await reader.read(65536)
                if not data:
                    break
                for msg in decoder.feed(data):
                    if isinstance(msg, Malformed):
                        continue
                    self.received.append(msg)
                    if msg.get("Action", "").lower() == "login":
                        writer.write(encode_message({"Response": "Success", "ActionID": msg.get("ActionID", ""),
                                                     "Message": "Authentication accepted"}))
                        writer.write(encode_message({"Event": "FullyBooted", "Privilege": "system,all",
                                                     "Uptime": "0" if session != 0 else "596",
                                                     "LastReload": "0" if session != 0 else "596",
                                                     "Status": "Fully Booted"}))
                        if session >= 0 and play is None:
                            play = asyncio.create_task(self._play(session, writer))
                        continue
                    self._answer(session, msg, writer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if play is not None:
                play.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await play
            with contextlib.suppress(Exception):
                writer.close()

    def _answer(self, session: int, msg: Message, writer: asyncio.StreamWriter) -> None:
        action = msg.get("Action", "").lower()
        aid = msg.get("ActionID", "")
        gate = self._waiting_gate
        if gate is not None and gate.msg is not None and self._matches(gate.msg, msg):
            self.ids[gate.msg.get("ActionID", "")] = aid
            self._waiting_gate = None
            self._gate_hit.set()
            return
        if session >= 0:
            # Two originates sent together may come in the other order than recorded.
            for step in self.steps[session][self.cursor:self.cursor + 40]:
                if (step.kind == "gate" and step.line not in self._satisfied and step.msg is not None
                        and step is not gate and self._matches(step.msg, msg)):
                    self.ids[step.msg.get("ActionID", "")] = aid
                    self._satisfied.add(step.line)
                    return
        if action in HOUSEKEEPING and session >= 0:
            frames = self._housekeeping(session, action)
            if frames is not None:
                for f in frames:
                    m = parse_frame(f.encode())
                    assert isinstance(m, dict)
                    if "ActionID" in m:
                        f = f.replace(f"ActionID: {m['ActionID']}\r\n", f"ActionID: {aid}\r\n")
                    writer.write(f.encode() + b"\r\n")
                return
        self.unexpected.append(msg)
        writer.write(self._idle_answer(msg))

    def _housekeeping(self, session: int, action: str) -> list[str] | None:
        options = self.answers[session].get(action, [])
        if not options:
            return None
        before = [frames for at, frames in options if at <= self.cursor and frames]
        return before[-1] if before else next((f for _, f in options if f), None)

    @staticmethod
    def _matches(recorded: Message, sent: Message) -> bool:
        action = recorded.get("Action", "").lower()
        if sent.get("Action", "").lower() != action:
            return False
        keys = GATED_KEYS.get(action, ())
        return all(recorded.get(k, "").lower() == sent.get(k, "").lower() for k in keys)

    @staticmethod
    def _idle_answer(msg: Message) -> bytes:
        action = msg.get("Action", "").lower()
        aid = msg.get("ActionID", "")
        if action == "ping":
            return encode_message({"Response": "Success", "ActionID": aid, "Ping": "Pong",
                                   "Timestamp": "1796662000.000000"})
        if action in ("coreshowchannels", "queuestatus"):
            done = "CoreShowChannelsComplete" if action == "coreshowchannels" else "QueueStatusComplete"
            return (encode_message({"Response": "Success", "ActionID": aid, "EventList": "start",
                                    "Message": "will follow"})
                    + encode_message({"Event": done, "ActionID": aid, "EventList": "Complete",
                                      "ListItems": "0"}))
        if action == "queueadd":
            # As Asterisk 22 answers it (project_dialplans_session lines 42–43).
            iface = msg.get("Interface", "")
            paused = msg.get("Paused", "false") == "true"
            return (encode_message({"Response": "Success", "ActionID": aid, "Message": "Added interface to queue"})
                    + encode_message({
                        "Event": "QueueMemberAdded", "Privilege": "agent,all", "Queue": msg.get("Queue", ""),
                        "MemberName": msg.get("MemberName", iface), "Interface": iface,
                        "StateInterface": msg.get("StateInterface", iface), "Membership": "dynamic",
                        "Penalty": msg.get("Penalty", "0"), "CallsTaken": "0", "LastCall": "0",
                        "LastPause": "0", "LoginTime": "1796662000", "InCall": "0", "Status": "1",
                        "Paused": "1" if paused else "0",
                        "PausedReason": msg.get("Reason", "") if paused else "", "Ringinuse": "0",
                        "Wrapuptime": "0"}))
        if action == "originate":
            return encode_message({"Response": "Success", "ActionID": aid,
                                   "Message": "Originate successfully queued"})
        return encode_message({"Response": "Success", "ActionID": aid})

    async def _play(self, session: int, writer: asyncio.StreamWriter) -> None:
        steps = self.steps[session]
        for i, step in enumerate(steps):
            self.cursor = i
            if step.kind == "gate":
                if step.line in self._satisfied:
                    continue
                self._gate_hit.clear()
                self._waiting_gate = step
                await self._gate_hit.wait()
                continue
            if step.kind == "disconnect":
                await writer.drain()
                writer.close()
                self.sessions_done[session].set()
                if session == len(self.steps) - 1:
                    self.done.set()
                return
            writer.write(self._map(step.frame).encode() + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0)
        self.cursor = len(steps)
        self.sessions_done[session].set()
        if session == len(self.steps) - 1:
            self.done.set()

    def gate_waiting(self) -> Step | None:
        return self._waiting_gate
