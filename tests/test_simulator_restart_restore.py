"""The same outcomes as the replay of project_dialplans_session, through the simulator over TCP
with its restart control: the answered callback (its OriginateResponse with
``ChanVariable(<channel>)`` headers) is recorded answered and never dialled again; after an
Asterisk restart the agents are restored as the service knew them (paused with their reason),
except one removed on the Asterisk side meanwhile; the desks follow every step."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from callcenter.ami.codec import FrameDecoder, encode_action
from callcenter.appkeys import AGENT_STATE, CONNECTOR, OUTBOUND
from callcenter.clock import utcnow
from callcenter.db.models import OutboundAttempt, OutboundJob, QueueLogin
from callcenter.simulator.server import AmiSimulator
from tests import apphelpers as h
from tests import outbound_support as o
from tests.waiting import wait_for

IFACE = o.DYNAMIC_IFACE


def members(sim: AmiSimulator) -> dict[str, tuple[bool, str]]:
    q = sim.engine.queues["aftersales"]
    return {m.name: (m.paused, m.paused_reason) for m in q.members}


def told(sock: h.AgentSocket) -> list[bool]:
    return [bool(m["agent"] and m["agent"]["queues"]) for m in sock.messages if m["type"] == "agent.state"]


async def cli(port: int, action: str, headers: dict[str, object]) -> None:
    """Someone on the Asterisk side (another manager session, as the CLI would) acts."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    decoder = FrameDecoder()
    writer.write(encode_action("Login", "cli-1", {"Username": "callcenter", "Secret": "s3cret-ami"}))
    writer.write(encode_action(action, "cli-2", headers))
    await writer.drain()
    answered = False
    while not answered:
        for m in decoder.feed(await reader.read(65536)):
            if isinstance(m, dict) and m.get("ActionID") == "cli-2":
                assert m.get("Response") == "Success", m
                answered = True
    writer.close()


async def test_answered_callback_and_restart_through_the_simulator(sqlite_url, aiohttp_client, monkeypatch):
    counter = o.OriginateCounter(monkeypatch)
    config = o.dynamic_sim_config()
    assert config.channelvars  # as dialplans/manager.conf
    async with AmiSimulator(config) as sim:
        started = loop_time()
        client = await h.start(aiohttp_client, o.app_settings(sqlite_url, sim.port, agent_interface=IFACE))
        app = client.server.app
        await app[CONNECTOR].wait_connected(5)
        socks = await o.desks_in_queue(client, "8001", "8002", "8003")
        try:
            r = await socks["8002"].session.post(client.make_url("/api/agent-state/pause"), json={"reason": "午餐"})
            assert r.status == 200, await r.text()
            assert members(sim) == {"8001": (False, ""), "8002": (True, "午餐"), "8003": (False, "")}

            # A callback answered by the customer and taken by an agent.
            cid, _ = await o.add_customer(client, "13800138000")
            job = await o.add_job(client, "13800138000", customer_id=cid)
            sm = h.sessionmaker_of(client)

            async def answered() -> OutboundAttempt | None:
                async with sm() as s:
                    a = (await s.scalars(select(OutboundAttempt).where(OutboundAttempt.job_id == job))).first()
                return a if a is not None and a.state == "done" and a.agent_member else None

            attempt = await wait_for(answered, 20, message="callback answered and taken")
            assert attempt.outcome == "answered" and attempt.answered_at is not None
            assert attempt.agent_member in ("8001", "8003")
            assert app[CONNECTOR].malformed == 0  # ChanVariable(<channel>) read, not skipped

            # Someone removes 8003 on the Asterisk side: the desk and the record follow.
            await cli(sim.port, "QueueRemove", {"Queue": "aftersales", "Interface": IFACE.format(extension="8003")})
            await wait_for(lambda: told(socks["8003"])[-1:] == [False], 5, message="8003's desk follows")

            async def recorded() -> set[str]:
                async with sm() as s:
                    return {r.member_name for r in await s.scalars(select(QueueLogin))}

            await wait_for(lambda: _eq(recorded(), {"8001", "8002"}), 5, message="record follows the removal")

            # Asterisk restarts: dynamic members are gone, the service puts them back. (A
            # restart within 2 s of the previous start is indistinguishable from a reconnect by
            # FullyBooted's whole-second Uptime; no real Asterisk restarts that fast.)
            await asyncio.sleep(max(0.0, 2.5 - (loop_time() - started)))
            await sim.restart(down_for=0.3)
            await wait_for(lambda: app[CONNECTOR].sessions >= 2, 10, message="reconnected")
            await wait_for(lambda: members(sim) == {"8001": (False, ""), "8002": (True, "午餐")}, 10,
                           message=f"members restored: {members(sim)}")
            report = await wait_for(lambda: app[AGENT_STATE].last_restore, 5)
            assert report["restored_members"] == 2 and report["failed"] == []
            for ext in ("8001", "8002"):
                await wait_for(lambda e=ext: told(socks[e])[-2:] == [False, True], 5,
                               message=f"desk {ext}: {told(socks[ext])}")

            # The answered callback is never dialled again, however late it gets.
            dialler = app[OUTBOUND]
            dialler.clock = lambda: utcnow() + dt.timedelta(hours=6)
            for _ in range(4):
                dialler.wake()
                await asyncio.sleep(0.2)
            async with sm() as s:
                j = await s.get(OutboundJob, job)
                assert j is not None and j.status == "answered"
            assert len(counter.received) == 1
        finally:
            for sock in socks.values():
                await sock.close()


def loop_time() -> float:
    return asyncio.get_running_loop().time()


async def _eq(coro, expected) -> bool:  # type: ignore[no-untyped-def]
    return (await coro) == expected
