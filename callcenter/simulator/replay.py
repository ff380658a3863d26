"""Replay one recorded AMI session (``shared/asterisk/transcripts/*.jsonl``) to a client.

For the connector's tests: what the client reads is byte-for-byte what Asterisk sent, in the
recorded order and (at ``speed=1``) the recorded rhythm. Only three things differ: the login
response carries the client's own ActionID, the recording's own final ``Logoff`` response is
not replayed, and the client's own actions (Ping, the list actions a connector sends after
every login, Logoff) are answered as Asterisk would answer them on an idle system.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from callcenter.ami.codec import FrameDecoder, Malformed, Message, encode_message

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


def load_transcript(path: str | Path) -> list[Recorded]:
    """Read a ``.jsonl`` recording. Raises ValueError on a line that is not a recorded frame."""
    out = []
    for n, line in enumerate(Path(path).read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            out.append(Recorded(float(d["t_ms"]), d["dir"] == "in", str(d["frame"])))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{n}: not a recorded frame") from e
    return out


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
    possible, order kept.
    """

    def __init__(self, path: str | Path, *, speed: float | None = 1.0,
                 host: str = "127.0.0.1") -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be > 0 or None, got {speed!r}")
        self.path = Path(path)
        self.speed = speed
        self.host = host
        self.frames = load_transcript(self.path)
        # Set once the last recorded frame has been written to a client.
        self.done = asyncio.Event()
        # Every action the clients sent, in arrival order.
        self.received: list[Message] = []
        self.port: int | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._split()

    def _split(self) -> None:
        """Find the banner, the login response and what follows it in the recording."""
        fr = self.frames
        self._banner = next(f.frame for f in fr if f.inbound)
        login_i = next(i for i, f in enumerate(fr)
                       if not f.inbound and _headers(f.frame).get("Action", "").lower() == "login")
        self._login_out = fr[login_i]
        resp_i = next(i for i in range(login_i + 1, len(fr))
                      if fr[i].inbound and fr[i].frame.startswith("Response:"))
        self._login_resp = fr[resp_i]
        self._login_ok = _headers(fr[resp_i].frame).get("Response") == "Success"
        logoff_ids = {
            _headers(f.frame).get("ActionID") for f in fr
            if not f.inbound and _headers(f.frame).get("Action", "").lower() == "logoff"
        }
        # The recording's own Logoff answer is only sent if the client itself logs off.
        self._rest = [
            f for f in fr[resp_i + 1:]
            if f.inbound and not (f.frame.startswith("Response: Goodbye")
                                  and _headers(f.frame).get("ActionID") in logoff_ids)
        ]

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
        try:
            writer.write(self._banner.encode("utf-8"))
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
                        replay = asyncio.create_task(self._replay(writer, msg))
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

    async def _replay(self, writer: asyncio.StreamWriter, login: Message) -> None:
        loop = asyncio.get_running_loop()
        speed = self.speed
        if not self._login_ok:
            # Asterisk's deliberate delay before refusing, as recorded (~1 s).
            delay = (self._login_resp.t_ms - self._login_out.t_ms) / 1000
            await asyncio.sleep(delay / speed if speed else 0)
        writer.write((_with_action_id(self._login_resp.frame, login.get("ActionID"))
                      + "\r\n").encode("utf-8"))
        if not self._login_ok:
            await writer.drain()
            writer.close()
            self.done.set()
            return
        base_t = self._login_resp.t_ms
        start = loop.time()
        for f in self._rest:
            if speed is not None:
                due = start + (f.t_ms - base_t) / 1000 / speed
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            writer.write((f.frame + "\r\n").encode("utf-8"))
            if speed is None:
                await writer.drain()
        await writer.drain()
        log.debug("replayed %d frames of %s", len(self._rest), self.path.name)
        self.done.set()
