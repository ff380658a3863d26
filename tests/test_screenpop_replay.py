"""End to end on every recording: replayed over real TCP into the real connector, through the
tracker and the caller lookup, out of the real websocket to each agent; records checked in the
database (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

import pytest
from sqlalchemy import select

from callcenter.appkeys import CONNECTOR, POPS, RECORDER
from callcenter.calls.events import to_call_event
from callcenter.calls.tracker import CallTracker, NotifyAgent
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.customers.services import sealed_phone
from callcenter.db.models import Appliance, Call, Customer, User, WorkOrder
from callcenter.simulator.replay import TranscriptReplayServer
from tests import apphelpers as h
from tests.transcripts import NAMES, TRANSCRIPTS, events
from tests.waiting import wait_for

NOW = dt.datetime.now(dt.UTC)
MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


def expected_notifications(name: str) -> dict[str, list[tuple[str, str]]]:
    """What each member must receive, from the pure tracker (pinned by test_call_tracker)."""
    tracker, out = CallTracker(), defaultdict(list)
    for msg in events(name):
        ev = to_call_event(msg)
        if ev is None:
            continue
        for e in tracker.apply(ev, NOW):
            if isinstance(e, NotifyAgent):
                out[e.member].append((e.call["id"], e.type))
    return dict(out)


def members_in(name: str) -> set[str]:
    return {m["MemberName"] for m in events(name) if m.get("MemberName")}


async def seed(db_url: str, extensions: set[str]) -> None:
    """Agents and one known customer (13800138000) before the app starts."""
    from callcenter.auth.services import AuthService

    engine = make_engine(db_url)
    await migrate(engine, vault=h.fixed_vault())
    sm = make_sessionmaker(engine)
    auth = AuthService(sm, ttl_s=3600)
    for ext in sorted(extensions):
        await auth.add_user(f"agent{ext}", role="agent", password=h.PASSWORD, extension=ext)
    async with sm.begin() as s:
        c = Customer(name="张三", level="VIP", remarks="", created_at=NOW)
        c.phones.append(sealed_phone(h.fixed_vault(), "13800138000", "mobile"))
        c.appliances.append(Appliance(category="空调", brand="美的", model="KFR-35GW/BP3DN8Y",
                                      serial="SN123", purchase_date=(NOW - dt.timedelta(days=100)).date(),
                                      warranty_months=36))
        s.add(c)
        await s.flush()
        s.add(WorkOrder(number="WO20261120-001", customer_id=c.id, appliance_id=c.appliances[0].id,
                        status="待处理", urgency="紧急", problem="不制冷", created_at=NOW - dt.timedelta(days=2)))
    await engine.dispose()


QUEUE_CALLS = ["inbound_answered", "inbound_abandoned", "inbound_ring_no_answer", "iax_inbound_answered",
               "originate_callback", "resync_mid_call", "burst_10_calls"]


@pytest.mark.parametrize("name", [n for n in NAMES if n != "login_failed"])
async def test_replay_recording_end_to_end(name, db_url, aiohttp_client):
    members = members_in(name)
    await seed(db_url, members)
    server = TranscriptReplayServer(TRANSCRIPTS / f"{name}.jsonl", speed=None)
    port = await server.start()
    sockets: dict[str, h.AgentSocket] = {}
    try:
        client = await h.start(aiohttp_client, h.settings_for(db_url, port))
        sockets = {}
        for ext in sorted(members):
            sockets[ext] = await h.connect(client, ext, last_seq=0)
        await wait_for(lambda: server.done.is_set(), 20, message="replay finished")
        expected = expected_notifications(name)

        def per_call(pairs):  # type: ignore[no-untyped-def]
            # Order is guaranteed within a call; an agent on two calls at once (ringinuse) may
            # get call B's "ended" before call A's "ringing" when A's caller lookup is slower.
            out = defaultdict(list)
            for call_id, kind in pairs:
                out[call_id].append(kind)
            return dict(out)

        def delivered() -> bool:
            return all(per_call((m["call"]["id"], m["type"]) for m in sockets[ext].messages
                                if m["type"].startswith("call.")) == per_call(expected.get(ext, []))
                       for ext in members)

        try:
            await wait_for(delivered, 10)
        except AssertionError:
            raise AssertionError(f"pops of {name}: got " + repr({e: s.types() for e, s in sockets.items()})
                                 + " expected " + repr(expected)) from None
        connector = client.server.app[CONNECTOR]
        assert connector.state == "connected" and connector.sessions == 1
        assert connector.malformed == 0

        for ext, sock in sockets.items():
            seqs = [m["seq"] for m in sock.messages if m["type"].startswith("call.")]
            assert seqs == list(range(1, len(seqs) + 1)), "per-agent sequence numbers"
            for m in sock.messages:
                assert not MOBILE.search(repr(m)), f"unmasked number sent to agent {ext}: {m}"

        joins = {m["Linkedid"] for m in events(name) if m["Event"] == "QueueCallerJoin"}
        sm = h.sessionmaker_of(client)

        app = client.server.app
        await wait_for(lambda: not app[POPS].busy and not app[RECORDER].pending, 5,
                       message="lookups done and records written")

        async def recorded() -> list[Call]:
            async with sm() as s:
                rows = list(await s.scalars(select(Call)))
            return rows if {c.linkedid for c in rows} == joins else []

        if joins:
            calls = await wait_for(recorded, 5, message="call records written")
        else:
            calls = await recorded()
        assert {c.linkedid for c in calls} == joins
        check = CHECKS.get(name)
        if check is not None:
            async with sm() as s:
                users = {u.extension: u.id for u in await s.scalars(select(User))}
            await check(sockets, {c.linkedid: c for c in calls}, users)
    finally:
        for sock in sockets.values():
            await sock.close()
        await server.stop()


async def _inbound_answered(sockets, calls, users):
    ring = next(m for m in sockets["8001"].messages if m["type"] == "call.ringing")
    assert ring["call"]["caller"] == "138****8000" and ring["call"]["queue"] == "aftersales"
    assert ring["call"]["did"] == "4008001234"
    assert ring["customer"]["name"] == "张*" and ring["customer"]["level"] == "VIP"
    hist = ring["history"]
    assert hist["new_caller"] is False and hist["anonymous"] is False
    assert hist["appliances"][0]["model"] == "KFR-35GW/BP3DN8Y"
    assert hist["appliances"][0]["warranty"]["status"] == "in"
    assert [o["number"] for o in hist["open_orders"]] == ["WO20261120-001"]
    missed = next(m for m in sockets["8002"].messages if m["type"] == "call.missed")
    assert missed["reason"] == "no_answer"
    call = calls["1795342910.6"]
    assert call.customer_id is not None and call.caller_masked == "138****8000"
    assert call.caller_index in h.fixed_vault().indexes("13800138000")
    assert h.fixed_vault().decrypt(call.caller_enc) == "13800138000"
    assert call.agent_id == users["8001"] and call.state == "answered" and call.hold_s == 7
    assert [(r["member"], r["result"], r["agent_id"]) for r in call.rang] == [
        ("8002", "no_answer", users["8002"]), ("8001", "answered", users["8001"])]


async def _abandoned(sockets, calls, users):
    call = calls["1795342940.18"]
    assert call.outcome == "abandoned" and call.hold_s == 4 and call.customer_id is None
    assert call.caller_index == h.fixed_vault().index("13700001111") and call.ended_at is not None
    assert all(not s.types() for s in sockets.values())


async def _ring_no_answer(sockets, calls, users):
    call = calls["1795342952.20"]
    assert call.outcome == "answered" and call.agent_id == users["8001"] and call.talk_s >= 6
    ring = next(m for m in sockets["8001"].messages if m["type"] == "call.ringing")
    assert ring["customer"] is None and ring["history"]["new_caller"] is True
    ended = next(m for m in sockets["8001"].messages if m["type"] == "call.ended")
    assert ended["call"]["outcome"] == "answered" and ended["call"]["talk_s"] >= 6


async def _iax(sockets, calls, users):
    ring = next(m for m in sockets["8001"].messages if m["type"] == "call.ringing")
    assert ring["customer"]["name"] == "张*" and ring["call"]["queue"] == "hotline"
    assert calls["1795343892.639"].outcome == "answered"


CHECKS = {"inbound_answered": _inbound_answered, "inbound_abandoned": _abandoned,
          "inbound_ring_no_answer": _ring_no_answer, "iax_inbound_answered": _iax}


async def test_login_failed_is_reported_on_health(sqlite_url, aiohttp_client):
    server = TranscriptReplayServer(TRANSCRIPTS / "login_failed.jsonl", speed=None)
    port = await server.start()
    try:
        client = await h.start(aiohttp_client, h.settings_for(sqlite_url, port))

        async def failed():
            body = await (await client.get("/health")).json()
            return body if body["ami"]["last_error"] == "authentication failed" else None

        body = await wait_for(failed, 10, message="health reports the failed AMI login")
        assert body["status"] == "degraded" and body["ami"]["state"] != "connected"
        assert "s3cret" not in repr(body)
    finally:
        await server.stop()


async def test_call_list_shows_answered_and_missed_calls_masked(db_url, aiohttp_client):
    await seed(db_url, {"8001", "8002"})
    async with TranscriptReplayServer(TRANSCRIPTS / "inbound_ring_no_answer.jsonl", speed=None) as server:
        client = await h.start(aiohttp_client, h.settings_for(db_url, server.port))
        await wait_for(lambda: server.done.is_set(), 20)
        app = client.server.app
        await wait_for(lambda: not app[POPS].busy and not app[RECORDER].pending, 5)
        for ext in ("8001", "8002"):  # 8001 answered it, 8002 missed it: both see it
            session = await h.login(client, ext)
            try:
                async def listed(session=session):
                    body = await (await session.get(client.make_url("/api/calls"))).json()
                    return body["calls"]
                calls = await wait_for(listed, 5, message=f"agent {ext} sees the call")
                assert [c["id"] for c in calls] == ["1795342952.20"]
                assert calls[0]["caller"] == "136****2222" and calls[0]["outcome"] == "answered"
                assert not MOBILE.search(repr(calls))
                r = await session.get(client.make_url("/api/calls?date=yesterday"))
                assert r.status == 422 and (await r.json())["details"]["field"] == "date"
            finally:
                await session.close()
        anon = await client.get("/api/calls")
        assert anon.status == 401
