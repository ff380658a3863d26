"""Agent states end to end: the real app logged in to the AMI simulator over TCP; the agent's
pause / resume / queue login go out as actions, the simulator answers as Asterisk 22 does, and
the events come back into the state the desk and the wallboard show."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from callcenter.appkeys import AGENT_STATE, AGENTS, AUTH, CONNECTOR, LEADERSHIP
from callcenter.simulator import (
    AmiSimulator,
    MemberConfig,
    QueueConfig,
    SimulatorConfig,
)
from callcenter.simulator.listing import queue_status
from tests import apphelpers as h
from tests.waiting import wait_for

IFACE1, IFACE2 = "Local/8001@agents/n", "Local/8002@agents/n"


def sim_config(**extra: object) -> SimulatorConfig:
    members = (MemberConfig("8001", IFACE1), MemberConfig("8002", IFACE2))
    return SimulatorConfig(port=0, time_scale=0.02, failed_login_delay=0.05, queues=(
        QueueConfig("aftersales", members, max_wait=1000), QueueConfig("escalation", (MemberConfig("8002", IFACE2),)),
    ), **extra)


async def session_for(client, username: str, password: str = h.PASSWORD) -> aiohttp.ClientSession:  # type: ignore[no-untyped-def]
    s = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    r = await s.post(client.make_url("/api/session"), json={"username": username, "password": password})
    assert r.status == 200, await r.text()
    return s


class Board:
    """A supervisor's /ws/wallboard: every message, with the wall time it arrived."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.live: list[tuple[float, dict]] = []
        self.work: list[dict] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data.get("type") == "wallboard.live":
                    self.live.append((time.monotonic_ns(), data))
                elif data.get("type") == "wallboard.work":
                    self.work.append(data)

    def last(self) -> dict | None:
        return self.live[-1][1] if self.live else None

    def queue(self, name: str) -> dict | None:
        snap = self.last()
        return next((q for q in snap["queues"] if q["name"] == name), None) if snap else None

    def agent(self, member: str) -> dict | None:
        snap = self.last()
        return next((a for a in snap["agents"] if a["member"] == member), None) if snap else None


async def open_board(client, session) -> Board:  # type: ignore[no-untyped-def]
    ws = await session.ws_connect(client.make_url("/ws/wallboard"), headers={"Origin": h.ORIGIN})
    return Board(ws)


@pytest.fixture
async def world(sqlite_url, aiohttp_client):  # type: ignore[no-untyped-def]
    sent: list[tuple[str, dict, int]] = []
    sim = AmiSimulator(sim_config(), on_sent=lambda name, fields, t: sent.append((name, fields, t)))
    port = await sim.start()
    client = await h.start(aiohttp_client, h.settings_for(sqlite_url, port, wallboard_max_wait_s=2))
    app = client.server.app
    await app[AUTH].add_user("agent8001", role="agent", password=h.PASSWORD, extension="8001",
                             display_name="王小明")
    await app[AUTH].add_user("boss", role="supervisor", password=h.PASSWORD, display_name="赵主管")
    await app[AGENTS].refresh()
    await wait_for(lambda: app[CONNECTOR].state == "connected", 10)
    agent = await session_for(client, "agent8001")
    boss = await session_for(client, "boss")
    yield client, sim, agent, boss, sent
    await agent.close()
    await boss.close()
    await sim.stop()


async def test_pause_and_resume_round_trip_through_the_simulator(world) -> None:  # type: ignore[no-untyped-def]
    client, sim, agent, boss, sent = world
    board = await open_board(client, boss)
    await wait_for(lambda: board.agent("8001") is not None, 5, message="no snapshot with 8001")
    r = await agent.get(client.make_url("/api/agent-state"))
    state = await r.json()
    assert state["reasons"] == ["小休", "午餐", "培训", "话后处理"]
    assert set(state["queues"]) == {"aftersales", "escalation"}
    assert state["agent"]["state"] == "available" and state["agent"]["name"] == "王小明"

    member = sim.engine.queues["aftersales"].member(IFACE1)
    r = await agent.post(client.make_url("/api/agent-state/pause"), json={"reason": "午餐"})
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["agent"]["state"] == "paused" and body["agent"]["reason"] == "午餐"
    assert member.paused and member.paused_reason == "午餐"
    # The QueueMemberPause event reached the wallboard within 500 ms of leaving the simulator.
    t_sent = next(t for name, f, t in sent if name == "QueueMemberPause" and f["Paused"] == "1")
    await wait_for(lambda: (board.agent("8001") or {}).get("state") == "paused", 2)
    t_seen = next(t for t, snap in board.live
                  if any(a["member"] == "8001" and a["state"] == "paused" for a in snap["agents"]))
    assert (t_seen - t_sent) / 1e6 < 500
    tile = board.queue("aftersales")
    assert tile["agents"]["paused"] == 1 and tile["paused"][0]["reason"] == "午餐"
    assert tile["paused"][0]["name"] == "王小明"

    r = await agent.post(client.make_url("/api/agent-state/resume"))
    assert r.status == 200 and (await r.json())["agent"]["state"] == "available"
    assert not member.paused
    await wait_for(lambda: (board.agent("8001") or {}).get("state") == "available", 2)
    await board.ws.close()


@pytest.mark.parametrize("reason", ["lunch", "午餐\r\nAction: Logoff", "", "x" * 40])
async def test_bad_reason_is_refused_before_anything_is_sent(world, reason: str) -> None:  # type: ignore[no-untyped-def]
    client, sim, agent, _boss, sent = world
    await wait_for(lambda: client.server.app[AGENT_STATE].interfaces_of(1) or True, 1)
    before = len(sent)
    r = await agent.post(client.make_url("/api/agent-state/pause"), json={"reason": reason})
    assert r.status == 422
    assert not sim.engine.queues["aftersales"].member(IFACE1).paused
    assert len(sent) == before


async def test_queue_login_and_logout_add_and_remove_a_dynamic_member(world) -> None:  # type: ignore[no-untyped-def]
    client, sim, agent, _boss, _sent = world
    url = client.make_url("/api/agent-state/queues")
    r = await agent.post(url, json={"action": "login", "queues": ["escalation"]})
    assert r.status == 200, await r.text()
    row = (await r.json())["agent"]
    assert {q["queue"]: q["dynamic"] for q in row["queues"]} == {"aftersales": False, "escalation": True}
    m = sim.engine.queues["escalation"].member(IFACE1)
    assert m is not None and m.membership == "dynamic" and m.name == "8001"
    # A static member cannot log out (Asterisk: "Member not dynamic"); nothing is sent for it.
    r = await agent.post(url, json={"action": "logout", "queues": ["aftersales"]})
    assert r.status == 409
    r = await agent.post(url, json={"action": "logout", "queues": ["escalation"]})
    assert r.status == 200
    assert sim.engine.queues["escalation"].member(IFACE1) is None
    for bad in (["no-such-queue"], ["after sales"], ["a\r\nAction: Logoff"]):
        r = await agent.post(url, json={"action": "login", "queues": bad})
        assert r.status == 422, bad


async def test_wallboard_service_level_agrees_with_the_simulated_asterisk(world) -> None:  # type: ignore[no-untyped-def]
    """One call answered at once, one after 25 s of everybody paused, one caller who gives up
    after 5 s: SL 50.0 (1 of 2 completed in 20 s), SL2 66.7 — the same as QueueParams."""
    client, sim, _agent, boss, _sent = world
    app = client.server.app
    board = await open_board(client, boss)
    await sim.wait_call(await sim.place_call(answer_after=1, talk=1))
    for iface in (IFACE1, IFACE2):
        await app[CONNECTOR].send_action("QueuePause", {"Interface": iface, "Paused": "true", "Reason": "培训"})
    slow = await sim.place_call(answer_after=1, talk=1)
    gone = await sim.place_call(abandon_after=5)
    await sim.wait_call(gone)
    await asyncio.sleep(25 * 0.02)  # simulated time: the slow caller waits > 20 s
    for iface in (IFACE1, IFACE2):
        await app[CONNECTOR].send_action("QueuePause", {"Interface": iface, "Paused": "false"})
    await sim.wait_call(slow)
    _, items = queue_status(sim.engine, {"Queue": "aftersales"})
    params = dict(items[0])
    await wait_for(lambda: (board.queue("aftersales") or {}).get("day", {}).get("completed") == 2, 5)
    tile = board.queue("aftersales")
    assert tile["day"]["offered"] == 3 and tile["day"]["answered"] == 2 and tile["day"]["abandoned"] == 1
    assert (params["Completed"], params["Abandoned"]) == ("2", "1")
    assert f"{tile['figures']['service_level']:.1f}" == params["ServicelevelPerf"] == "50.0"
    assert f"{tile['figures']['service_level2']:.1f}" == params["ServicelevelPerf2"] == "66.7"
    assert tile["figures"]["abandon_rate"] == 33.3
    assert tile["breaches"] == ["service_level"]
    await board.ws.close()


async def test_supervisors_get_an_alert_when_a_queue_turns_red(world) -> None:  # type: ignore[no-untyped-def]
    client, sim, _agent, boss, _sent = world
    app = client.server.app
    ws = await boss.ws_connect(client.make_url("/ws"), headers={"Origin": h.ORIGIN})
    got: list[dict] = []

    async def read() -> None:
        async for m in ws:
            if m.type == aiohttp.WSMsgType.TEXT:
                got.append(json.loads(m.data))

    task = asyncio.create_task(read())
    for iface in (IFACE1, IFACE2):
        await app[CONNECTOR].send_action("QueuePause", {"Interface": iface, "Paused": "true", "Reason": "培训"})
    call = await sim.place_call(abandon_after=250)  # 5 s of wall time at time_scale 0.02
    await wait_for(lambda: any(m.get("type") == "wallboard.alert" for m in got), 6)
    alert = next(m for m in got if m.get("type") == "wallboard.alert")
    assert alert["queue"] == "aftersales" and alert["metric"] == "longest_wait" and alert["threshold"] == 2
    await sim.wait_call(call)
    await wait_for(lambda: any(m.get("type") == "wallboard.cleared" for m in got), 6)
    await ws.close()
    await task


async def test_state_is_rebuilt_after_a_reconnect(world) -> None:  # type: ignore[no-untyped-def]
    client, sim, agent, _boss, _sent = world
    app = client.server.app
    r = await agent.post(client.make_url("/api/agent-state/pause"), json={"reason": "培训"})
    assert r.status == 200
    await sim.drop_clients()
    app[AGENT_STATE].book.members.clear()  # what we knew is gone; Asterisk still has it
    await wait_for(lambda: app[CONNECTOR].state == "connected" and app[AGENT_STATE].book.members, 10)
    r = await agent.get(client.make_url("/api/agent-state"))
    await wait_for(lambda: app[AGENT_STATE].agent_row(IFACE1)["state"] == "paused", 5)
    row = app[AGENT_STATE].agent_row(IFACE1)
    assert row["reason"] == "培训"


async def test_automatic_wrap_up_pauses_then_resumes(sqlite_url, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    sim = AmiSimulator(sim_config())
    port = await sim.start()
    client = await h.start(aiohttp_client, h.settings_for(sqlite_url, port, wrapup_s=1))
    app = client.server.app
    await wait_for(lambda: app[CONNECTOR].state == "connected", 10)
    member = sim.engine.queues["aftersales"].member(IFACE1)
    seen: list[tuple[bool, str]] = []
    sim.engine.on_sent = lambda name, f, t: seen.append((f["Paused"] == "1", f["PausedReason"])) if (
        name == "QueueMemberPause" and f["Interface"] == IFACE1) else None
    await sim.wait_call(await sim.place_call(answer_after=1, talk=1))
    await wait_for(lambda: (True, "话后处理") in seen, 5, message="no wrap-up pause")
    await wait_for(lambda: seen[-1] == (False, "") and not member.paused, 5, message="wrap-up never ended")
    await sim.stop()


async def test_two_instances_agree_through_redis(pg_url, redis_url, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    """The agent's browser talks to the instance that does not hold AMI; the pause is carried
    out by the leader, and a supervisor on either instance sees it."""
    sim = AmiSimulator(sim_config())
    port = await sim.start()
    a = await h.start(aiohttp_client, h.settings_for(pg_url, port, redis_url=redis_url))
    b = await h.start(aiohttp_client, h.settings_for(pg_url, port, redis_url=redis_url))
    await wait_for(lambda: a.server.app[LEADERSHIP].is_leader or b.server.app[LEADERSHIP].is_leader, 10)
    leader, other = (a, b) if a.server.app[LEADERSHIP].is_leader else (b, a)
    await wait_for(lambda: leader.server.app[CONNECTOR].state == "connected", 10)
    await leader.server.app[AUTH].add_user("agent8001", role="agent", password=h.PASSWORD, extension="8001")
    await leader.server.app[AUTH].add_user("boss", role="supervisor", password=h.PASSWORD)
    for c in (a, b):
        await c.server.app[AGENTS].refresh()
    agent = await session_for(other, "agent8001")
    boss = await session_for(other, "boss")
    board = await open_board(other, boss)
    try:
        await wait_for(lambda: board.agent("8001") is not None, 5)
        r = await agent.post(other.make_url("/api/agent-state/pause"), json={"reason": "小休"})
        assert r.status == 200, await r.text()
        assert sim.engine.queues["aftersales"].member(IFACE1).paused_reason == "小休"
        await wait_for(lambda: (board.agent("8001") or {}).get("reason") == "小休", 3)
        r = await agent.get(other.make_url("/api/agent-state"))
        assert (await r.json())["agent"]["state"] == "paused"
    finally:
        await board.ws.close()
        await agent.close()
        await boss.close()
        await sim.stop()


async def test_a_board_opened_mid_day_shows_the_day_so_far(world) -> None:  # type: ignore[no-untyped-def]
    """Calls recorded earlier today (before this instance led, or before a restart) are in the
    figures: the day is seeded from the call records at every AMI login."""
    import datetime as dt

    from callcenter.appkeys import SESSIONMAKER
    from callcenter.db.models import Call

    client, sim, _agent, boss, _sent = world
    app = client.server.app
    now = dt.datetime.now(dt.UTC)
    async with app[SESSIONMAKER].begin() as s:
        s.add(Call(linkedid="earlier-1", queue="aftersales", started_at=now - dt.timedelta(seconds=90),
                   answered_at=now - dt.timedelta(seconds=60), ended_at=now - dt.timedelta(seconds=30),
                   state="ended", outcome="answered", hold_s=30, talk_s=30, agent_member="8001"))
        s.add(Call(linkedid="earlier-2", queue="aftersales", started_at=now - dt.timedelta(seconds=80),
                   ended_at=now - dt.timedelta(seconds=75), state="ended", outcome="abandoned", hold_s=5))
    await sim.drop_clients()  # a reconnect: the login hook reads the records again
    await wait_for(lambda: app[CONNECTOR].state == "connected"
                   and app[AGENT_STATE].book.by_queue.get("aftersales") is not None, 10)
    r = await boss.get(client.make_url("/api/wallboard"))
    data = await r.json()
    tile = next(q for q in data["live"]["queues"] if q["name"] == "aftersales")
    assert (tile["day"]["offered"], tile["day"]["answered"], tile["day"]["abandoned"]) == (2, 1, 1)
    assert tile["figures"]["service_level"] == 0.0 and tile["figures"]["aht"] == 30.0
    assert next(a for a in data["live"]["agents"] if a["member"] == "8001")["calls_today"] == 1
    assert {"overdue", "at_risk", "backlog", "completed_today", "complaints"} <= set(data["work"])
    assert "ServicelevelPerf" in data["formulas"]["service_level"]


async def test_the_wallboard_never_carries_a_callers_number(world) -> None:  # type: ignore[no-untyped-def]
    """The privacy scan of every route skips websockets: the wallboard's are checked here, with
    a caller waiting and answered (callers are counted, never named or numbered)."""
    from tests.privacy_scan import find_mobiles

    client, sim, _agent, boss, _sent = world
    texts: list[str] = []
    ws = await boss.ws_connect(client.make_url("/ws/wallboard"), headers={"Origin": h.ORIGIN})

    async def read() -> None:
        async for m in ws:
            if m.type == aiohttp.WSMsgType.TEXT:
                texts.append(m.data)

    task = asyncio.create_task(read())
    call = await sim.place_call(caller="13912345678", caller_name="张三", answer_after=60, talk=60)
    await sim.wait_call(call)
    await wait_for(lambda: any('"wallboard.live"' in t for t in texts), 6)
    r = await boss.get(client.make_url("/api/wallboard"))
    texts.append(await r.text())
    await ws.close()
    await task
    for text in texts:
        assert not find_mobiles(text) and "张三" not in text, text[:300]
