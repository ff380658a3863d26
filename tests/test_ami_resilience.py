"""The server against the built-in simulator over real TCP: AMI down at start, anonymous
callers, a restart mid-call (the AMI socket cut mid-call is in tests/faults/test_ami_cut.py)."""

from __future__ import annotations

import contextlib

from callcenter.appkeys import CONNECTOR, POPS, RECORDER
from callcenter.simulator import AmiSimulator, MemberConfig, QueueConfig, SimulatorConfig
from tests import apphelpers as h
from tests.waiting import wait_for


def sim_config(port: int = 0, **kw) -> SimulatorConfig:
    queue = QueueConfig("aftersales", (MemberConfig("8001", "Local/8001@agents/n"),
                                       MemberConfig("8002", "Local/8002@agents/n")))
    return SimulatorConfig(port=port, queues=(queue,), **kw)


def free_port() -> int:
    import socket

    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_ami_down_at_start_then_up(db_url, aiohttp_client):
    port = free_port()
    client = await h.start(aiohttp_client, h.settings_for(db_url, port))
    await h.add_agents(client, "8001")
    body = await (await client.get("/health")).json()
    assert body["status"] == "degraded" and body["ami"]["state"] != "connected"
    assert body["database"] == "ok"
    # the rest of the product serves meanwhile
    sock = await h.connect(client, "8001")
    try:
        assert (await client.get("/login")).status == 200
        async with AmiSimulator(sim_config(port, time_scale=0.05)) as sim:
            connector = client.server.app[CONNECTOR]
            await wait_for(lambda: connector.connected, 10, message="connected once AMI is up")
            lid = await sim.place_call(caller="13900001111", answer_after=1, talk=1)
            await wait_for(lambda: "call.ended" in sock.types(lid), 10, message=repr(sock.messages))
            assert (await (await client.get("/health")).json())["status"] == "ok"
    finally:
        await sock.close()


async def test_anonymous_caller_pops_as_anonymous(sqlite_url, aiohttp_client):
    async with AmiSimulator(sim_config(time_scale=0.05)) as sim:
        client = await h.start(aiohttp_client, h.settings_for(sqlite_url, sim.port))
        await h.add_agents(client, "8001", "8002")
        await wait_for(lambda: client.server.app[CONNECTOR].connected, 10)
        socks = [await h.connect(client, "8001"), await h.connect(client, "8002")]
        try:
            lid = await sim.place_call(caller=None, answer_after=1, talk=1)
            ring = await wait_for(lambda: next((m for s in socks for m in s.messages
                                                if m["type"] == "call.ringing" and m["call"]["id"] == lid), None), 10)
            assert ring["call"]["anonymous"] is True and ring["call"]["caller"] is None
            assert ring["customer"] is None and ring["history"]["anonymous"] is True
        finally:
            for s in socks:
                await s.close()


async def test_restart_mid_call_keeps_the_calls_history(db_url, aiohttp_client):
    """The server restarts while a call talks: the rebuilt call keeps its record's past (when it
    started, who was rung) and ends as answered by the same agent."""
    from sqlalchemy import select

    from callcenter.db.models import Call

    async with AmiSimulator(sim_config(time_scale=0.05)) as sim:
        settings = h.settings_for(db_url, sim.port)
        first = await h.start(aiohttp_client, settings)
        await h.add_agents(first, "8001", "8002")
        await wait_for(lambda: first.server.app[CONNECTOR].connected, 10)
        socks = [await h.connect(first, "8001"), await h.connect(first, "8002")]
        lid = await sim.place_call(caller="13900008888", answer_after=2, talk=80,
                                   no_answer_members=("8002",))
        await wait_for(lambda: any("call.answered" in s.types(lid) for s in socks), 10)
        for s in socks:
            await s.close()
        app = first.server.app
        await wait_for(lambda: not app[RECORDER].pending and not app[POPS].busy, 5)
        async with h.sessionmaker_of(first)() as s:
            before = (await s.scalars(select(Call).where(Call.linkedid == lid))).one()
        await first.close()

        second = await h.start(aiohttp_client, settings)
        await wait_for(lambda: second.server.app[CONNECTOR].connected, 10)
        sm = h.sessionmaker_of(second)

        async def ended():
            async with sm() as s:
                row = (await s.scalars(select(Call).where(Call.linkedid == lid))).one()
            return row if row.state == "ended" else None

        after = await wait_for(ended, 15, message="the rebuilt call ended")
        assert after.outcome == "answered" and after.agent_member == before.agent_member
        assert after.started_at == before.started_at
        assert [r["member"] for r in after.rang][:len(before.rang)] == [r["member"] for r in before.rang]
        assert after.rang_members.startswith(before.rang_members.rstrip(","))


async def test_a_skipped_frame_is_counted_where_an_operator_sees_it(sqlite_url, aiohttp_client):
    """A frame the codec cannot read (here a caller id with a smuggled ``Linkedid:``) is
    skipped, and counted by event and reason in /health and /metrics."""
    from callcenter.simulator.replay import TranscriptReplayServer
    from tests.transcripts import TRANSCRIPTS

    server = TranscriptReplayServer(TRANSCRIPTS / "login_ok.jsonl", speed=None)
    port = await server.start()
    try:
        client = await h.start(aiohttp_client, h.settings_for(sqlite_url, port))
        connector = client.server.app[CONNECTOR]
        await wait_for(lambda: connector.connected, 10)
        server.inject(b"Event: QueueCallerJoin\r\nCallerIDName: x\r\nLinkedid: 1.1\r\nLinkedid: 2.2\r\n\r\n")
        await wait_for(lambda: connector.malformed == 1, 5, message="the frame skipped")
        body = await (await client.get("/health")).json()
        assert body["ami"]["skipped_frames"] == 1
        metrics = await (await client.get("/metrics")).text()
        assert 'callcenter_ami_frames_skipped_total{event="QueueCallerJoin",reason="duplicate header"} 1.0' in metrics
        assert "callcenter_ami_connected 1.0" in metrics
    finally:
        await server.stop()
