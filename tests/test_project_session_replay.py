"""The project against a real Asterisk 22, replayed: ``project_dialplans_session.jsonl``.

Asterisk's side of the recording is played over TCP to the real service (tests/session_replay.py
maps the ids the service generates onto the recorded ones and waits for each action the service
sent when it was recorded). What went wrong for real must not happen here:

- the answered callback's ``OriginateResponse`` carries ``ChanVariable(<channel>)`` headers
  (line 318): it is read, the attempt ends answered with its channel, its answer time and the
  agent who took it, and it is never dialled again, however far the clock moves;
- Asterisk restarts (line 381) and comes back with every queue empty: the service restores both
  agents with ``QueueAdd`` and their desks say so.

Plus what already worked for real: 4 pops on the right agents with the right customers (an
anonymous caller's with none), callback jobs for the two callers who abandoned.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from callcenter.appkeys import AGENT_STATE, CONNECTOR, OUTBOUND
from callcenter.clock import utcnow
from callcenter.customers.services import sealed_phone
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.db.models import Customer, OutboundAttempt, OutboundJob, QueueLogin
from tests import apphelpers as h
from tests.session_replay import SessionReplay
from tests.transcripts import TRANSCRIPTS, load
from tests.waiting import wait_for

NAME = "project_dialplans_session"
RECORDED_ATTEMPT = "ob-8-1-b2efd778"
CALLERS = {"13800000020": "客户甲", "13800000021": "客户乙", "13800000022": "客户丙",
           "13800000023": "客户丁", "13800000009": "客户十"}


async def seed(db_url: str) -> dict[str, int]:
    from callcenter.auth.services import AuthService

    engine = make_engine(db_url)
    await migrate(engine, vault=h.fixed_vault())
    sm = make_sessionmaker(engine)
    auth = AuthService(sm, ttl_s=3600)
    for ext in ("8001", "8003"):
        await auth.add_user(f"agent{ext}", role="agent", password=h.PASSWORD, extension=ext)
    ids = {}
    async with sm.begin() as s:
        for number, name in CALLERS.items():
            c = Customer(name=name, level="", remarks="", created_at=utcnow() - dt.timedelta(days=30))
            c.phones.append(sealed_phone(h.fixed_vault(), number, "mobile"))
            s.add(c)
            await s.flush()
            ids[number] = c.id
    await engine.dispose()
    return ids


def recorded_pops() -> dict[str, str]:
    """Linkedid → the agent (MemberName) who got the call, from the recording's AgentCalled."""
    out = {}
    for f in load(NAME):
        if f.dir == "in" and f.msg and f.msg.get("Event") == "AgentCalled":
            out[f.msg["Linkedid"]] = f.msg["MemberName"]
    return out


async def test_the_project_session_replayed_into_the_service(db_url, aiohttp_client):
    customers = await seed(db_url)
    replay = SessionReplay(TRANSCRIPTS / f"{NAME}.jsonl")
    port = await replay.start()
    sockets: dict[str, h.AgentSocket] = {}
    try:
        client = await h.start(aiohttp_client, h.settings_for(
            db_url, port, agent_interface="Local/{extension}@lab-agents", outbound_interval=0.2,
            outbound_hours="00:00-23:59", outbound_rate=20.0))
        app = client.server.app
        await app[CONNECTOR].wait_connected(5)
        for ext in ("8001", "8003"):
            sockets[ext] = await h.connect(client, ext, last_seq=0)
        # The adoption of the members Asterisk had (the record was empty) is written first.
        await wait_for(lambda: _logins(client, 2), 10, message="both agents recorded as logged in")

        # Agent 8003 logs out and back in; 8001 pauses 午餐 and resumes (lines 37–53).
        agent = {ext: s.session for ext, s in sockets.items()}

        async def post(ext: str, path: str, body: dict) -> dict:
            await wait_for(lambda: replay.gate_waiting() is not None, 10, message=f"replay waits before {path}")
            r = await agent[ext].post(client.make_url(path), json=body)
            assert r.status == 200, await r.text()
            return await r.json()

        await post("8003", "/api/agent-state/queues", {"action": "logout", "queues": ["aftersales"]})
        await post("8003", "/api/agent-state/queues", {"action": "login", "queues": ["aftersales"]})
        paused = await post("8001", "/api/agent-state/pause", {"reason": "午餐"})
        assert paused["agent"]["queues"][0]["reason"] == "午餐"
        await post("8001", "/api/agent-state/resume", {})

        # Four callers through the IVR, two abandon; the dialler calls those two back by itself
        # (lines 170, 180); an anonymous caller. Then agent 8001 books a callback for 客户十.
        gate = await wait_for(lambda: (g := replay.gate_waiting()) is not None and g.line == 308 and g,
                              60, message="the replay reaches the booked callback (line 308)")
        assert gate
        r = await agent["8001"].post(client.make_url("/api/outbound/callbacks"), json={
            "customer_id": customers["13800000009"], "reason": "客户要求回电"})
        assert r.status == 201, await r.text()
        booked = (await r.json())["id"]
        await wait_for(lambda: replay.sessions_done[0].is_set(), 30, message="first session played")

        # -- 1. the answered callback ---------------------------------------------------------
        sm = h.sessionmaker_of(client)

        async def settled() -> OutboundAttempt | None:
            async with sm() as s:
                a = (await s.scalars(select(OutboundAttempt).where(OutboundAttempt.job_id == booked))).first()
            # Done, and the agent who took it written (AgentConnect, line 348).
            return a if a is not None and a.state == "done" and a.agent_member else None

        attempt = await wait_for(settled, 10, message="the callback attempt settled")
        assert attempt.id == replay.ids[RECORDED_ATTEMPT]
        assert (attempt.outcome, attempt.reason_code) == ("answered", 4)
        assert attempt.channel.startswith("Local/138****0009@outbound-trunk")
        assert attempt.answered_at is not None and attempt.agent_member == "8001"
        assert app[CONNECTOR].malformed == 0  # line 318 was read, not skipped
        async with sm() as s:
            job = await s.get(OutboundJob, booked)
            assert job is not None and job.status == "answered"

        # -- 2. the restart: both agents restored ---------------------------------------------
        await wait_for(lambda: replay.done.is_set() and app[CONNECTOR].sessions == 2, 15,
                       message="reconnected after the restart")

        def restored() -> list[dict]:
            return [m for m in replay.unexpected if m.get("Action") == "QueueAdd"]

        await wait_for(lambda: len(restored()) == 2, 10, message="QueueAdd for both agents")
        assert sorted((m["Queue"], m["Interface"], m["MemberName"], m["Paused"]) for m in restored()) == [
            ("aftersales", "Local/8001@lab-agents", "8001", "false"),
            ("aftersales", "Local/8003@lab-agents", "8003", "false")]
        report = await wait_for(lambda: app[AGENT_STATE].last_restore, 5, message="the restart reported")
        assert report is not None and report["restored_members"] == 2 and report["failed"] == []
        # The desks were told they were out of every queue, then back in.
        def told(sock: h.AgentSocket) -> list[bool]:
            """Each agent.state the desk got: in some queue (True) or in none (False)."""
            return [bool(m["agent"] and m["agent"]["queues"]) for m in sock.messages if m["type"] == "agent.state"]

        for ext, sock in sockets.items():
            await wait_for(lambda s=sock: told(s)[-1:] == [True], 5,
                           message=f"desk {ext} back in the queue: {told(sock)} {[m['agent'] for m in sock.messages if m['type'] == 'agent.state']}")
            # After the restart: out of every queue (as Asterisk had it), then restored.
            seen = told(sock)
            assert seen[-2:] == [False, True], f"desk {ext}: {seen}"

        # -- 3. pops and callback jobs ---------------------------------------------------------
        expected = recorded_pops()
        by_agent: dict[str, dict[str, dict]] = {}
        for ext, sock in sockets.items():
            for m in sock.messages:
                if m["type"] == "call.ringing":
                    by_agent.setdefault(ext, {})[m["call"]["id"]] = m
        got = {call: ext for ext, calls in by_agent.items() for call in calls}
        expected_mapped = {replay.ids.get(k, k): v for k, v in expected.items()}
        assert got == expected_mapped and len(got) == 4
        pops = {call: by_agent[ext][call] for call, ext in got.items()}
        who = {call: (p["customer"] or {}).get("id") for call, p in pops.items()}
        answered_call = replay.ids[RECORDED_ATTEMPT]
        assert who[answered_call] == customers["13800000009"]
        assert pops[answered_call]["callback"]["reason"] == "客户要求回电"
        assert sorted(v for v in who.values() if v is not None) == sorted(
            [customers["13800000020"], customers["13800000021"], customers["13800000009"]])
        assert list(who.values()).count(None) == 1  # the anonymous caller
        async with sm() as s:
            abandoned = (await s.scalars(select(OutboundJob).where(OutboundJob.dedupe_key.like("abandoned:%")))).all()
        assert sorted(j.customer_id for j in abandoned) == sorted(
            [customers["13800000022"], customers["13800000023"]])

        # -- 4. never dialled again ------------------------------------------------------------
        dialler = app[OUTBOUND]
        dialler.clock = lambda: utcnow() + dt.timedelta(hours=6)  # past every retry delay
        for _ in range(5):
            dialler.wake()
            await asyncio.sleep(0.3)
        to_customer = [m for m in replay.received if m.get("Action") == "Originate"
                       and m.get("Channel", "").startswith("Local/13800000009@")]
        assert len(to_customer) == 1, "the answered callback was dialled again"
    finally:
        for sock in sockets.values():
            await sock.close()
        await replay.stop()


async def _logins(client, n: int) -> bool:  # type: ignore[no-untyped-def]
    async with h.sessionmaker_of(client)() as s:
        return len((await s.scalars(select(QueueLogin))).all()) == n
