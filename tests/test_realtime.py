"""Pop numbering, replay and fan-out: in process and through a real Redis; the websocket's
guards; two instances sharing one Redis and one PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import redis.asyncio as aioredis

from callcenter.appkeys import CONNECTOR, HUB, LEADERSHIP
from callcenter.realtime.hub import WebsocketHub
from callcenter.realtime.mailbox import LocalMailbox, RedisMailbox
from callcenter.simulator import AmiSimulator, MemberConfig, QueueConfig, SimulatorConfig
from tests import apphelpers as h
from tests.waiting import wait_for


@pytest.fixture(params=["local", "redis"])
async def mailboxes(request):
    """Two mailboxes as two instances would have them (the same one, in process)."""
    if request.param == "local":
        box = LocalMailbox(limit=3)
        yield box, box
        return
    url = request.getfixturevalue("redis_url")
    r1 = aioredis.from_url(url, decode_responses=True)
    r2 = aioredis.from_url(url, decode_responses=True)
    a, b = RedisMailbox(r1, limit=3), RedisMailbox(r2, limit=3)
    ready = [asyncio.Event(), asyncio.Event()]
    tasks = [asyncio.create_task(a.run(ready[0].set)), asyncio.create_task(b.run(ready[1].set))]
    await asyncio.gather(*(e.wait() for e in ready))
    yield a, b
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await r1.aclose()
    await r2.aclose()


async def test_numbering_replay_and_fan_out(mailboxes):
    a, b = mailboxes
    seen_a, seen_b = [], []
    a.on_deliver(lambda agent, m: seen_a.append((agent, m["seq"], json.loads(m["_text"])["type"])))
    if b is not a:
        b.on_deliver(lambda agent, m: seen_b.append((agent, m["seq"], json.loads(m["_text"])["type"])))
    posted = [await a.post(7, {"type": "call.ringing", "n": 1}), await b.post(7, {"type": "call.answered"}),
              await a.post(8, {"type": "call.ringing"})]
    assert [m["seq"] for m in posted] == [1, 2, 1]
    await wait_for(lambda: len(seen_a) == 3, 5)
    assert seen_a == [(7, 1, "call.ringing"), (7, 2, "call.answered"), (8, 1, "call.ringing")]
    if b is not a:
        await wait_for(lambda: len(seen_b) == 3, 5)
    current, missed = await b.since(7, 0)
    assert current == 2 and [m["seq"] for m in missed] == [1, 2] and json.loads(missed[0]["_text"])["n"] == 1
    assert await a.since(7, 2) == (2, [])
    for _ in range(4):
        await a.post(7, {"type": "call.ended"})
    current, missed = await a.since(7, 1)  # only the last 3 of 6 are kept
    assert current == 6 and missed is None
    current, missed = await a.since(7, 3)
    assert [m["seq"] for m in missed] == [4, 5, 6]


async def test_a_slow_client_is_dropped_not_waited_for(sqlite_url, aiohttp_client):
    client = await h.start(aiohttp_client, h.settings_for(sqlite_url, 1, ws_queue_size=5))
    await h.add_agents(client, "8001")
    socks = [await h.connect(client, "8001"), await h.connect(client, "8001")]
    hub: WebsocketHub = client.server.app[HUB]
    try:
        await wait_for(lambda: hub.client_count == 2, 5)
        (uid, clients), = hub._by_agent.items()
        stalled, healthy = list(clients)
        stalled.writer.cancel()  # it stops draining, so its queue fills up
        from callcenter.appkeys import MAILBOX

        box = client.server.app[MAILBOX]
        for i in range(20):
            await box.post(uid, {"type": "call.ringing", "call": {"id": str(i)}})
            # the healthy client's writer keeps up, message by message, however stuck the other is
            await wait_for(lambda: healthy.queue.empty(), 5, message=f"healthy client sent message {i}")
        assert stalled.dropped and not healthy.dropped
        await wait_for(lambda: sorted(len(s.types()) for s in socks)[1] == 20, 5, message="all 20 arrived")
        await wait_for(lambda: any(s.ws.closed and s.ws.close_code == 1013 for s in socks), 5,
                       message="the stalled one was closed with 1013 (try again later)")
    finally:
        for sock in socks:
            await sock.close()


async def test_websocket_guards_and_replay(sqlite_url, aiohttp_client):
    client = await h.start(aiohttp_client, h.settings_for(sqlite_url, 1))
    await h.add_agents(client, "8001")
    anon = aiohttp.ClientSession()
    try:
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await anon.ws_connect(client.make_url("/ws"), headers={"Origin": h.ORIGIN})
        assert e.value.status == 401
    finally:
        await anon.close()
    session = await h.login(client, "8001")
    try:
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await session.ws_connect(client.make_url("/ws"), headers={"Origin": "http://evil.example"})
        assert e.value.status == 403
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await session.ws_connect(client.make_url("/ws?last_seq=-1"), headers={"Origin": h.ORIGIN})
        assert e.value.status == 422
        from callcenter.appkeys import MAILBOX

        box = client.server.app[MAILBOX]
        uid = (await (await session.get(client.make_url("/api/me"))).json())["user"]["id"]
        for i in range(3):
            await box.post(uid, {"type": "call.ringing", "call": {"id": f"c{i}"}})
        sock = await h.connect(client, "8001", last_seq=1, session=session)
        await wait_for(lambda: len(sock.types()) == 2, 5)
        assert [m["seq"] for m in sock.messages if "call" in m] == [2, 3]
        assert sock.messages[0]["type"] == "hello" and sock.messages[0]["seq"] == 3
        await box.post(uid, {"type": "call.ended", "call": {"id": "c2"}})
        await wait_for(lambda: len(sock.types()) == 3, 5)
        await sock.ws.close()
        await sock.reader
        # a client ahead of the server (numbers restarted) is told to reload
        ahead = await h.connect(client, "8001", last_seq=99, session=session)
        await wait_for(lambda: any(m["type"] == "resync" for m in ahead.messages), 5)
        await box.post(uid, {"type": "call.ringing", "call": {"id": "c9"}})
        await wait_for(lambda: ahead.types() == ["call.ringing"], 5)
        await ahead.ws.close()
        await ahead.reader
    finally:
        await session.close()


async def test_two_instances_share_pops_through_redis(pg_url, redis_url, aiohttp_client):
    queue = QueueConfig("aftersales", (MemberConfig("8001", "Local/8001@agents/n"),))
    async with AmiSimulator(SimulatorConfig(port=0, queues=(queue,), time_scale=0.05)) as sim:
        settings = h.settings_for(pg_url, sim.port, redis_url=redis_url, leader_ttl=1.0)
        one = await h.start(aiohttp_client, settings)
        await h.add_agents(one, "8001")
        two = await h.start(aiohttp_client, settings)
        await wait_for(lambda: one.server.app[CONNECTOR].connected, 10)
        assert one.server.app[LEADERSHIP].is_leader and not two.server.app[LEADERSHIP].is_leader
        assert (await (await two.get("/health")).json())["ami"]["state"] == "held by another instance"
        on_one, on_two = await h.connect(one, "8001"), await h.connect(two, "8001")
        try:
            lid = await sim.place_call(caller="13900004444", answer_after=1, talk=1)
            for sock in (on_one, on_two):
                await wait_for(lambda sock=sock: sock.types(lid) == ["call.ringing", "call.answered", "call.ended"],
                               10, message=repr(sock.messages))
            assert [m["seq"] for m in on_one.messages if "call" in m] == [m["seq"] for m in on_two.messages if "call" in m]
            # the leader goes away: the other instance takes AMI over and pops go on
            await one.close()
            await wait_for(lambda: on_one.ws.closed, 5)
            assert on_one.ws.close_code == 1001  # GOING_AWAY: the browser reconnects elsewhere
            await wait_for(lambda: two.server.app[LEADERSHIP].is_leader and two.server.app[CONNECTOR].connected,
                           10, message="failover")
            lid2 = await sim.place_call(caller="13900005555", answer_after=1, talk=1)
            await wait_for(lambda: "call.ended" in on_two.types(lid2), 10)
            seqs = [m["seq"] for m in on_two.messages if "call" in m]
            assert seqs == list(range(1, len(seqs) + 1))
        finally:
            await on_one.close()
            await on_two.close()


async def test_redis_blip_does_not_stop_pops_or_ami(pg_url, redis_url, aiohttp_client):
    """Every Redis connection is killed once: the lease, the subscription and the pops recover."""
    queue = QueueConfig("aftersales", (MemberConfig("8001", "Local/8001@agents/n"),))
    async with AmiSimulator(SimulatorConfig(port=0, queues=(queue,), time_scale=0.05)) as sim:
        app_client = await h.start(aiohttp_client, h.settings_for(pg_url, sim.port, redis_url=redis_url,
                                                                  leader_ttl=1.0))
        await h.add_agents(app_client, "8001")
        app = app_client.server.app
        await wait_for(lambda: app[CONNECTOR].connected, 10)
        sock = await h.connect(app_client, "8001")
        admin = aioredis.from_url(redis_url)
        try:
            lid = await sim.place_call(caller="13900006666", answer_after=1, talk=1)
            await wait_for(lambda: "call.ended" in sock.types(lid), 10)
            await admin.client_kill_filter(_type="normal", skipme=True)
            await admin.client_kill_filter(_type="pubsub", skipme=True)
            await wait_for(lambda: app[LEADERSHIP].is_leader and app[CONNECTOR].connected, 15,
                           message="leadership and AMI back after the blip")
            lid2 = await sim.place_call(caller="13900007777", answer_after=1, talk=1)
            await wait_for(lambda: "call.ended" in sock.types(lid2), 15, message=repr(sock.messages[-3:]))
        finally:
            await admin.aclose()
            await sock.close()
