"""TranscriptReplayServer over real TCP: recorded bytes, recorded order, recorded rhythm."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from callcenter.ami.codec import FrameDecoder, encode_action
from callcenter.simulator.replay import TranscriptReplayServer

TRANSCRIPTS = Path(__file__).resolve().parents[2] / "shared" / "asterisk" / "transcripts"


def recorded(name: str) -> list[dict]:
    return [json.loads(line) for line in (TRANSCRIPTS / f"{name}.jsonl").read_text().splitlines()]


class RawClient:
    """Keeps every byte received, and the messages decoded from them."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.msgs: list[dict[str, str]] = []
        self.closed = asyncio.Event()
        self._changed = asyncio.Event()
        self._decoder = FrameDecoder()

    async def connect(self, port: int) -> RawClient:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        while chunk := await self.reader.read(65536):
            self.data += chunk
            self.msgs.extend(m for m in self._decoder.feed(chunk) if isinstance(m, dict))
            self._changed.set()
        self.closed.set()
        self._changed.set()

    def send(self, action: str, action_id: str, **headers: object) -> None:
        self.writer.write(encode_action(action, action_id, headers))

    async def wait_for(self, pred, timeout: float = 5) -> dict[str, str]:  # type: ignore[no-untyped-def]
        async with asyncio.timeout(timeout):
            while True:
                for m in self.msgs:
                    if pred(m):
                        return m
                if self.closed.is_set():
                    raise AssertionError("closed while waiting")
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        self.writer.close()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@pytest.fixture
async def replay():
    servers: list[TranscriptReplayServer] = []
    clients: list[RawClient] = []

    async def start(name: str, speed: float | None = None) -> tuple[TranscriptReplayServer,
                                                                    RawClient]:
        server = TranscriptReplayServer(TRANSCRIPTS / f"{name}.jsonl", speed=speed)
        servers.append(server)
        client = await RawClient().connect(await server.start())
        clients.append(client)
        return server, client

    yield start
    for c in clients:
        await c.close()
    for s in servers:
        await s.stop()


async def test_login_answered_with_the_clients_action_id(replay) -> None:
    server, c = await replay("login_ok")
    c.send("Login", "mine-42", Username="callcenter", Secret="anything")
    resp = await c.wait_for(lambda m: "Response" in m)
    assert resp == {"Response": "Success", "ActionID": "mine-42",
                    "Message": "Authentication accepted"}
    assert c.data.startswith(b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\n")
    assert server.received[0]["Action"] == "Login"
    assert server.received[0]["ActionID"] == "mine-42"


async def test_every_recorded_frame_in_order_byte_for_byte(replay) -> None:
    server, c = await replay("inbound_answered", speed=None)
    c.send("Login", "l-1", Username="callcenter", Secret="x")
    await asyncio.wait_for(server.done.wait(), 10)
    rows = recorded("inbound_answered")
    login_resp = next(i for i, r in enumerate(rows) if r["frame"].startswith("Response:"))
    expected = b"".join(
        r["frame"].encode() + b"\r\n" for r in rows[login_resp + 1:]
        if r["dir"] == "in" and not r["frame"].startswith("Response: Goodbye")
    )
    await c.wait_for(lambda m: m.get("Event") == "BridgeEnter" and m["BridgeNumChannels"] == "2")
    head = rows[0]["frame"].encode() + b"Response: Success\r\nActionID: l-1\r\n" \
        b"Message: Authentication accepted\r\n\r\n"
    assert bytes(c.data) == head + expected
    # The recording's own Logoff answer is not replayed to a client that did not log off.
    assert not any(m.get("Response") == "Goodbye" for m in c.msgs)


async def test_recorded_timing_kept_at_speed_one(replay) -> None:
    server, c = await replay("login_ok", speed=1.0)
    c.send("Login", "l-1", Username="callcenter", Secret="x")
    await c.wait_for(lambda m: m.get("ActionID") == "l-1")
    t0 = time.monotonic()
    pong = await c.wait_for(lambda m: m.get("Ping") == "Pong")
    elapsed = time.monotonic() - t0
    rows = recorded("login_ok")
    gap = (rows[5]["t_ms"] - rows[2]["t_ms"]) / 1000  # login response → recorded Pong
    assert gap == pytest.approx(elapsed, abs=0.15)
    assert pong["ActionID"] == "ping-1"  # a response to the lab's Ping, replayed as it was
    await asyncio.wait_for(server.done.wait(), 5)


async def test_speed_divides_the_gaps(replay) -> None:
    server, c = await replay("bad_actions", speed=4.0)
    c.send("Login", "l-1", Username="callcenter", Secret="x")
    await c.wait_for(lambda m: m.get("ActionID") == "l-1")
    t0 = time.monotonic()
    await asyncio.wait_for(server.done.wait(), 5)
    assert 0.3 / 4 - 0.03 <= time.monotonic() - t0 <= 0.3 / 4 + 0.15
    errors = [m["Message"] for m in c.msgs if m.get("Response") == "Error"]
    assert errors[0].startswith("Invalid/unknown command: NoSuchAction")


async def test_login_failed_keeps_the_recorded_delay_then_closes(replay) -> None:
    server, c = await replay("login_failed", speed=1.0)
    t0 = time.monotonic()
    c.send("Login", "try-1", Username="callcenter", Secret="wrong")
    resp = await c.wait_for(lambda m: "Response" in m)
    assert time.monotonic() - t0 >= 0.95
    assert resp == {"Response": "Error", "ActionID": "try-1", "Message": "Authentication failed"}
    await asyncio.wait_for(c.closed.wait(), 5)


async def test_clients_own_actions_are_answered(replay) -> None:
    server, c = await replay("inbound_answered", speed=1.0)
    c.send("Login", "l-1", Username="callcenter", Secret="x")
    await c.wait_for(lambda m: m.get("ActionID") == "l-1")
    lists = {"CoreShowChannels": "CoreShowChannelsComplete", "QueueStatus": "QueueStatusComplete",
             "Status": "StatusComplete", "QueueSummary": "QueueSummaryComplete"}
    for action in lists:
        c.send(action, f"own-{action}")
    c.send("Ping", "own-ping")
    c.send("Originate", "own-orig", Channel="Local/1@x")
    for action, complete in lists.items():
        aid = f"own-{action}"
        start = await c.wait_for(lambda m, aid=aid: m.get("ActionID") == aid and "Response" in m)
        assert list(start) == ["Response", "ActionID", "EventList", "Message"]
        assert start["EventList"] == "start"
        done = await c.wait_for(lambda m, aid=aid: m.get("ActionID") == aid and "Event" in m)
        assert done["Event"] == complete and done["EventList"] == "Complete"
        assert done["ListItems"] == "0"
    assert (await c.wait_for(lambda m: m.get("ActionID") == "own-ping"))["Ping"] == "Pong"
    err = await c.wait_for(lambda m: m.get("ActionID") == "own-orig")
    assert err["Response"] == "Error"
    # Replay goes on meanwhile: the recorded call's events still arrive.
    await c.wait_for(lambda m: m.get("Event") == "QueueCallerJoin")
    c.send("Logoff", "bye")
    bye = await c.wait_for(lambda m: m.get("ActionID") == "bye")
    assert (bye["Response"], bye["Message"]) == ("Goodbye", "Thanks for all the fish.")
    await asyncio.wait_for(c.closed.wait(), 5)
    assert [m["Action"] for m in server.received][:2] == ["Login", "CoreShowChannels"]


async def test_inject_writes_raw_bytes(replay) -> None:
    server, c = await replay("login_ok", speed=None)
    c.send("Login", "l-1", Username="callcenter", Secret="x")
    await asyncio.wait_for(server.done.wait(), 5)
    n = len(c.data)
    raw = b"Event: Broken\r\nno colon here\r\n\r\n"
    server.inject(raw)
    async with asyncio.timeout(5):
        while len(c.data) < n + len(raw):
            c._changed.clear()
            await c._changed.wait()
    assert bytes(c.data[n:]) == raw
