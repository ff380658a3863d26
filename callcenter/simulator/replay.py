"""Replay one recorded AMI session (``shared/asterisk/transcripts/*.jsonl``) to a client.

For the connector's tests: what the client reads is byte-for-byte what Asterisk sent, in the
recorded order and (at ``speed=1``) the recorded rhythm. Only three things differ: the login
response carries the client's own ActionID, the recording's own final ``Logoff`` response is
not replayed, and the client's own actions (Ping, the list actions a connector sends after
every login, Logoff) are answered as Asterisk would answer them on an idle system.

A recording may hold several TCP sessions (``project_dialplans_session``: Asterisk restarted
mid-way), bounded by ``{"dir": "meta"}`` connect/disconnect lines; ``{"dir": "note"}`` lines
are the recorder's comments. Both are skipped. Each client gets the first session; with
``all_sessions=True`` the server closes the client's socket where the recording's session
ended and the next client gets the next session (the last one is repeated after that).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from callcenter.ami.codec import BANNER_PREFIX, FrameDecoder, Malformed, Message, encode_message

log = logging.getLogger("callcenter.simulator")

_LIST_ANSWERS = {
    # action → (start message, Complete event)
    "coreshowchannels": ("Channels will follow", "CoreShowChannelsComplete"),
    "queuestatus": ("Queue status will follow", "QueueStatusComplete"),
    "status": ("Channel status will follow", "StatusComplete"),
    "queuesummary": ("Queue summary will follow", "QueueSummaryComplete"),
}


@dataclass(frozen=True, slots=True)
class Recorded:
    t_ms: float
    inbound: bool  # True: sent by Asterisk
    frame: str  # CRLF-terminated lines, without the blank terminator line
    session: int = 0  # which TCP session of the recording (0, then 1 after a reconnect …)


def load_transcript(path: str | Path) -> list[Recorded]:
    """Read a ``.jsonl`` recording: its frames, each with the TCP session it belongs to (a
    banner starts a session); ``meta`` and ``note`` lines are skipped. Raises ValueError on a
    line that is not a recorded frame."""
    out = []
    session = -1
    for n, line in enumerate(Path(path).read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            if d["dir"] in ("meta", "note"):
                continue
            frame = str(d["frame"])
            if d["dir"] == "in" and frame.startswith(BANNER_PREFIX):
                session += 1
            out.append(Recorded(float(d["t_ms"]), d["dir"] == "in", frame, max(session, 0)))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{n}: not a recorded frame") from e
    return out


@dataclass(frozen=True, slots=True)
class _Session:
    banner: str
    login_out: Recorded
    login_resp: Recorded
    login_ok: bool
    rest: list[Recorded]


def _headers(frame: str) -> dict[str, str]:
    out = {}
    for line in frame.split("\r\n"):
        k, sep, v = line.partition(": ")
        if sep:
            out.setdefault(k, v)
    return out


def _with_action_id(frame: str, action_id: str | None) -> str:
    lines = [ln for ln in frame.split("\r\n") if ln]
    lines = [ln for ln in lines if not ln.startswith("ActionID:")]
    if action_id is not None:
        lines.insert(1, f"ActionID: {action_id}")
    return "".join(ln + "\r\n" for ln in lines)


class TranscriptReplayServer:
    """A TCP server replaying one recording to each client that connects.

    ``speed`` divides the recorded gaps (2.0 = twice as fast); ``None`` writes as fast as
    possible, order kept. ``all_sessions``: a recording of several TCP sessions is replayed
    session by session to successive clients, each socket closed where its session ended (a
    restarted Asterisk); otherwise every client gets the first session and stays connected.
    """

    def __init__(self, path: str | Path, *, speed: float | None = 1.0,
                 host: str = "127.0.0.1", all_sessions: bool = False) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be > 0 or None, got {speed!r}")
        self.path = Path(path)
        self.speed = speed
        self.host = host
        self.all_sessions = all_sessions
        self.frames = load_transcript(self.path)
        # Set once the last recorded frame (of the last session replayed) has been written.
        self.done = asyncio.Event()
        # Clients that have been given a session (all_sessions: the next one gets the next).
        self.connections = 0
        # Every action the clients sent, in arrival order.
        self.received: list[Message] = []
        self.port: int | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._split()

    def _split(self) -> None:
        """Find each session's banner, login response and what follows it."""
        self._sessions = [
            self._split_one([f for f in self.frames if f.session == n])
            for n in range(max((f.session for f in self.frames), default=0) + 1)
        ]
        first = self._sessions[0]
        # The first session, as single-session code reads it.
        self._banner, self._login_out, self._login_resp = (first.banner, first.login_out,
                                                           first.login_resp)
        self._login_ok, self._rest = first.login_ok, first.rest

    @staticmethod
    def _split_one(fr: list[Recorded]) -> _Session:
        banner = next(f.frame for f in fr if f.inbound)
        login_i = next(i for i, f in enumerate(fr)
                       if not f.inbound and _headers(f.frame).get("Action", "").lower() == "login")
        resp_i = next(i for i in range(login_i + 1, len(fr))
                      if fr[i].inbound and fr[i].frame.startswith("Response:"))
        logoff_ids = {
            _headers(f.frame).get("ActionID") for f in fr
            if not f.inbound and _headers(f.frame).get("Action", "").lower() == "logoff"
        }
        # The recording's own Logoff answer is only sent if the client itself logs off.
        rest = [
            f for f in fr[resp_i + 1:]
            if f.inbound and not (f.frame.startswith("Response: Goodbye")
                                  and _headers(f.frame).get("ActionID") in logoff_ids)
        ]
        return _Session(banner, fr[login_i], fr[resp_i],
                        _headers(fr[resp_i].frame).get("Response") == "Success", rest)

    async def start(self) -> int:
        """Listen on a free port of ``host``; returns it."""
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Close the listener and every client; cancel the replays and wait for them."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def inject(self, raw: bytes) -> None:
        """Write ``raw`` as is to every connected client (malformed-frame tests)."""
        for w in list(self._writers):
            w.write(raw)

    async def __aenter__(self) -> TranscriptReplayServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- one client -------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self._writers.add(writer)
        replay: asyncio.Task[None] | None = None
        decoder = FrameDecoder(expect_banner=False)
        n = min(self.connections, len(self._sessions) - 1) if self.all_sessions else 0
        self.connections += 1
        session = self._sessions[n]
        try:
            writer.write(session.banner.encode("utf-8"))
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                for msg in decoder.feed(data):
                    if isinstance(msg, Malformed):
                        continue
                    self.received.append(msg)
                    action = msg.get("Action", "").lower()
                    if action == "login" and replay is None:
                        replay = asyncio.create_task(self._replay(writer, msg, n))
                    elif not self._answer(writer, msg, action):
                        return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if replay is not None:
                replay.cancel()
                await asyncio.gather(replay, return_exceptions=True)
            self._writers.discard(writer)
            writer.close()  # flushes what is buffered (a Goodbye) before closing
            self._tasks.discard(task)  # type: ignore[arg-type]

    def _answer(self, writer: asyncio.StreamWriter, msg: Message, action: str) -> bool:
        """Answer one of the client's own actions; False once the client has logged off."""
        aid = [("ActionID", msg["ActionID"])] if "ActionID" in msg else []
        if action == "ping":
            writer.write(encode_message([("Response", "Success"), *aid, ("Ping", "Pong"),
                                         ("Timestamp", f"{time.time():.6f}")]))
        elif action in _LIST_ANSWERS:
            message, complete = _LIST_ANSWERS[action]
            writer.write(encode_message([("Response", "Success"), *aid, ("EventList", "start"),
                                         ("Message", message)]))
            extra = [("Items", "0")] if action == "status" else []
            writer.write(encode_message([("Event", complete), *aid, ("EventList", "Complete"),
                                         ("ListItems", "0"), *extra]))
        elif action == "logoff":
            writer.write(encode_message([("Response", "Goodbye"), *aid,
                                         ("Message", "Thanks for all the fish.")]))
            return False
        else:
            writer.write(encode_message([("Response", "Error"), *aid,
                                         ("Message", "Not available in a replayed session")]))
        return True

    async def _replay(self, writer: asyncio.StreamWriter, login: Message, n: int = 0) -> None:
        loop = asyncio.get_running_loop()
        speed = self.speed
        session = self._sessions[n]
        if not session.login_ok:
            # Asterisk's deliberate delay before refusing, as recorded (~1 s).
            delay = (session.login_resp.t_ms - session.login_out.t_ms) / 1000
            await asyncio.sleep(delay / speed if speed else 0)
        writer.write((_with_action_id(session.login_resp.frame, login.get("ActionID"))
                      + "\r\n").encode("utf-8"))
        if not session.login_ok:
            await writer.drain()
            writer.close()
            self.done.set()
            return
        base_t = session.login_resp.t_ms
        start = loop.time()
        for f in session.rest:
            if speed is not None:
                due = start + (f.t_ms - base_t) / 1000 / speed
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            writer.write((f.frame + "\r\n").encode("utf-8"))
            if speed is None:
                await writer.drain()
        await writer.drain()
        log.debug("replayed %d frames of %s (session %d)", len(session.rest), self.path.name, n)
        last = n == len(self._sessions) - 1
        if self.all_sessions and not last:
            writer.close()  # the recorded Asterisk went away here (a restart)
        else:
            self.done.set()
