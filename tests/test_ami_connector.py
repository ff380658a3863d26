"""The connector over real TCP: login, ordering, malformed frames, dead sockets, reconnects,
and the rule that an action is never sent twice."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from callcenter.ami.codec import AmiInjectionError, FrameDecoder, encode_message
from callcenter.ami.connector import AmiConnectionLost, AmiConnector, AmiError, AmiNotConnected
from tests.waiting import wait_for

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


class TinyAmi:
    """A scripted AMI peer for failure shapes the recordings cannot show (a socket that goes
    silent, a drop right after an action was written). Framing is the shared codec's."""

    def __init__(self, *, answer_pings: bool = True, answer_originate: bool = True) -> None:
        self.answer_pings = answer_pings
        self.answer_originate = answer_originate
        self.actions: list[dict] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.logins = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(BANNER)
        decoder = FrameDecoder(expect_banner=False)
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                for action in decoder.feed(data):
                    self.actions.append(action)
                    name, aid = action.get("Action"), action.get("ActionID", "")
                    if name == "Login":
                        self.logins += 1
                        writer.write(encode_message({"Response": "Success", "ActionID": aid,
                                                     "Message": "Authentication accepted"}))
                    elif name == "Ping" and self.answer_pings:
                        writer.write(encode_message({"Response": "Success", "ActionID": aid, "Ping": "Pong"}))
                    elif name in ("CoreShowChannels", "QueueStatus"):
                        writer.write(encode_message({"Response": "Success", "ActionID": aid,
                                                     "EventList": "start", "Message": "will follow"}))
                        writer.write(encode_message({"Event": name.rstrip("s") + "Complete" if name == "QueueStatus"
                                                     else "CoreShowChannelsComplete", "ActionID": aid,
                                                     "EventList": "Complete", "ListItems": "0"}))
                    elif name == "Originate" and self.answer_originate:
                        writer.write(encode_message({"Response": "Success", "ActionID": aid,
                                                     "Message": "Originate successfully queued"}))

    def write(self, data: bytes) -> None:
        for w in self.writers:
            w.write(data)

    def kill(self) -> None:
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()

    async def stop(self) -> None:
        self.kill()
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def tiny():
    servers = []

    async def make(**kw):
        s = TinyAmi(**kw)
        servers.append(s)
        return s, await s.start()

    yield make
    for s in servers:
        await s.stop()


def connector(port: int, **kw) -> AmiConnector:
    opts = dict(ping_interval=0.2, ping_timeout=0.3, reconnect_min=0.05, reconnect_max=0.2)
    opts.update(kw)
    return AmiConnector("127.0.0.1", port, "callcenter", "s3cret-ami", **opts)


@contextlib.asynccontextmanager
async def running(c: AmiConnector):
    task = asyncio.create_task(c.run())
    try:
        yield c
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_events_arrive_in_order_and_malformed_frames_are_skipped(tiny):
    server, port = await tiny()
    c = connector(port)
    got: list[str] = []
    c.add_event_handler(lambda m: got.append(m.get("Seq", "")))
    async with running(c):
        await c.wait_connected(5)
        frames = [b"Event: T\r\nSeq: %d\r\n\r\n" % i for i in range(500)]
        bad = [b"Event: QueueCallerJoin\r\nCallerIDName: a\r\nEvent: Hangup\r\n\r\n",
               b"Event: T\r\nCallerIDName: " + b"x" * 2000 + b"\r\n\r\n",
               b"Event: T\r\nCallerIDName: \xff\xfe\r\n\r\n"]
        server.write(b"".join(frames[:200]) + b"".join(bad) + b"".join(frames[200:]))
        # a multi-byte name split over two TCP writes
        name = "Event: T\r\nSeq: 张三\r\n\r\n".encode()
        server.write(name[:-8])
        await asyncio.sleep(0.05)  # let the first half arrive alone (what is being tested)
        server.write(name[-8:])
        await wait_for(lambda: len(got) == 501, 5, message="all good frames handled")
        assert got == [str(i) for i in range(500)] + ["张三"]
        assert c.malformed == 3 and c.sessions == 1 and c.state == "connected"
        # Counted by event and reason, where /health and /metrics show them.
        assert c.skipped_frames == {("QueueCallerJoin", "duplicate header"): 1,
                                    ("T", "line too long"): 1, ("T", "invalid utf-8"): 1}


async def test_a_silent_socket_is_dropped_within_the_ping_deadline(tiny):
    server, port = await tiny(answer_pings=False)
    c = connector(port)
    async with running(c):
        await c.wait_connected(5)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await wait_for(lambda: server.logins >= 2, 5, message="reconnected after a dead ping")
        # interval 0.2 s + deadline 0.3 s + backoff ≤ 0.3 s
        assert loop.time() - t0 < 2.0
        assert c.sessions >= 2


async def test_originate_is_never_resent_after_a_drop(tiny):
    server, port = await tiny(answer_originate=False)
    c = connector(port)
    async with running(c):
        await c.wait_connected(5)
        pending = asyncio.create_task(c.send_action("Originate", {"Channel": "Local/13800000001@outbound-trunk",
                                                                  "Async": True}))
        await wait_for(lambda: any(a.get("Action") == "Originate" for a in server.actions), 5)
        server.kill()
        with pytest.raises(AmiConnectionLost):
            await pending
        await wait_for(lambda: server.logins >= 2 and c.connected, 5, message="reconnected")
        await asyncio.sleep(0.3)  # a resend would have been written right after the login
        assert sum(a.get("Action") == "Originate" for a in server.actions) == 1


async def test_injection_and_not_connected_send_nothing(tiny):
    server, port = await tiny()
    c = connector(port)
    with pytest.raises(AmiNotConnected):
        await c.send_action("Ping")
    async with running(c):
        await c.wait_connected(5)
        before = len(server.actions)
        with pytest.raises(AmiInjectionError):
            await c.send_action("Originate", {"Channel": "Local/1@x\r\nAction: Hangup"})
        assert len(server.actions) == before


async def test_unreachable_ami_keeps_retrying_with_backoff():
    # A port that was just free: nothing listens there.
    srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    srv.close()
    await srv.wait_closed()
    c = connector(port)
    async with running(c):
        await wait_for(lambda: c.last_error is not None, 5)
        assert c.state != "connected"
    with pytest.raises(AmiNotConnected):
        await c.send_action("Ping")


async def test_error_response_raises(tiny):
    server, port = await tiny()
    c = connector(port)
    async with running(c):
        await c.wait_connected(5)
        # TinyAmi answers nothing to unknown actions; a real Error answer is covered by replays.
        with pytest.raises(TimeoutError):
            await c.send_action("NoSuchAction", timeout=0.2)
    assert AmiError("x", "y").message == "y"


async def test_originate_response_in_the_same_read_as_its_answer_reaches_handlers(tiny):
    server, port = await tiny(answer_originate=False)
    c = connector(port)
    got: list[dict] = []
    c.add_event_handler(got.append, frozenset({"OriginateResponse"}))
    async with running(c):
        await c.wait_connected(5)
        pending = asyncio.create_task(c.send_action("Originate", {"Channel": "Local/13800000001@outbound-trunk",
                                                                  "Async": True}))
        await wait_for(lambda: any(a.get("Action") == "Originate" for a in server.actions), 5)
        aid = next(a["ActionID"] for a in server.actions if a.get("Action") == "Originate")
        # as in originate_failures.jsonl, both in one write: the answer, then the outcome event
        server.write(b"Response: Success\r\nActionID: " + aid.encode() + b"\r\nMessage: Originate successfully queued\r\n\r\n"
                     b"Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: " + aid.encode()
                     + b"\r\nResponse: Failure\r\nChannel: Local/13800000001@outbound-trunk\r\nReason: 5\r\n"
                     b"Uniqueid: <unknown>\r\n\r\n")
        assert (await pending)["Message"] == "Originate successfully queued"
        await wait_for(lambda: got, 5, message="OriginateResponse dispatched")
        assert got[0]["Reason"] == "5" and got[0]["ActionID"] == aid


async def test_stopping_logs_off(tiny):
    server, port = await tiny()
    c = connector(port)
    async with running(c):
        await c.wait_connected(5)
    await wait_for(lambda: any(a.get("Action") == "Logoff" for a in server.actions), 5)
