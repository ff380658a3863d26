"""History per queue and hour, and per agent, from the call records (callcenter.wallboard.history)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import aiohttp

from callcenter.appkeys import AGENTS, AUTH, SESSIONMAKER
from callcenter.db.models import Call
from callcenter.wallboard.history import summarise
from tests import apphelpers as h
from tests.services import free_port

TZ = ZoneInfo("Asia/Shanghai")


def at(hour: int, minute: int = 0) -> dt.datetime:
    """2026-11-24 hour:minute in Shanghai, as UTC."""
    return dt.datetime(2026, 11, 24, hour, minute, tzinfo=TZ).astimezone(dt.UTC)


def rec(lid: str, queue: str, started: dt.datetime, *, answered: bool = False, ended: bool = True,
        outcome: str | None = None, hold: int | None = None, talk: int | None = None, member: str = "") -> dict:
    return {"linkedid": lid, "queue": queue, "started_at": started,
            "answered_at": started + dt.timedelta(seconds=hold or 0) if answered else None,
            "state": "ended" if ended else "answered", "outcome": outcome or ("answered" if answered else "abandoned"),
            "hold_s": hold, "talk_s": talk, "agent_member": member}


# 09:xx aftersales: answered after 5 s talk 100; answered after 30 s talk 200; abandoned after 8 s;
# a call that left on timeout (unanswered); one answered after 10 s still talking (not completed).
# 10:xx aftersales: one answered after 20 s (in SL: inclusive), talk 60. 09:xx escalation: one abandoned.
RECORDS = [
    rec("a", "aftersales", at(9, 1), answered=True, hold=5, talk=100, member="8001"),
    rec("b", "aftersales", at(9, 30), answered=True, hold=30, talk=200, member="8002"),
    rec("c", "aftersales", at(9, 40), outcome="abandoned", hold=8),
    rec("d", "aftersales", at(9, 50), outcome="unanswered", hold=60),
    rec("e", "aftersales", at(9, 59), answered=True, ended=False, hold=10, member="8001"),
    rec("f", "aftersales", at(10, 5), answered=True, hold=20, talk=60, member="8001"),
    rec("g", "escalation", at(9, 5), outcome="abandoned", hold=40),
]


def test_summarise_per_queue_and_hour_by_hand() -> None:
    out = summarise(RECORDS, TZ, {"aftersales": 20, "escalation": 20})
    rows = {(r["queue"], r["hour"]): r for r in out["hours"]}
    assert list(rows) == [("aftersales", 9), ("aftersales", 10), ("escalation", 9)]
    nine = rows[("aftersales", 9)]
    assert (nine["offered"], nine["answered"], nine["abandoned"], nine["completed"]) == (5, 3, 1, 2)
    assert nine["service_level"] == 50.0          # a in SL, b not; e not completed yet
    assert nine["asa"] == 15.0                    # (5 + 30 + 10) / 3
    assert nine["aht"] == 150.0                   # (100 + 200) / 2
    assert nine["abandon_rate"] == 20.0           # 1 / 5
    ten = rows[("aftersales", 10)]
    assert (ten["service_level"], ten["asa"], ten["aht"], ten["abandon_rate"]) == (100.0, 20.0, 60.0, 0.0)
    esc = rows[("escalation", 9)]
    assert (esc["offered"], esc["abandoned"], esc["service_level"], esc["service_level2"]) == (1, 1, None, 0.0)
    agents = {a["member"]: a for a in out["agents"]}
    assert agents["8001"] == {"member": "8001", "answered": 3, "completed": 2, "talk_s": 160, "aht": 80.0}
    assert agents["8002"] == {"member": "8002", "answered": 1, "completed": 1, "talk_s": 200, "aht": 200.0}


def test_service_level_threshold_per_queue() -> None:
    out = summarise(RECORDS, TZ, {"aftersales": 30})
    nine = next(r for r in out["hours"] if r["queue"] == "aftersales" and r["hour"] == 9)
    assert nine["service_level"] == 100.0  # 30 s is within a 30 s threshold


async def test_history_endpoint(db_url, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    client = await h.start(aiohttp_client, h.settings_for(db_url, free_port()))
    app = client.server.app
    await app[AUTH].add_user("boss", role="supervisor", password=h.PASSWORD)
    await app[AUTH].add_user("agent8001", role="agent", password=h.PASSWORD, extension="8001")
    await app[AGENTS].refresh()
    async with app[SESSIONMAKER].begin() as s:
        for r in RECORDS:
            s.add(Call(linkedid=r["linkedid"], queue=r["queue"], started_at=r["started_at"],
                       answered_at=r["answered_at"], state=r["state"], outcome=r["outcome"],
                       hold_s=r["hold_s"], talk_s=r["talk_s"], agent_member=r["agent_member"]))
    boss = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    agent = await h.login(client, "8001")
    try:
        r = await boss.post(client.make_url("/api/session"), json={"username": "boss", "password": h.PASSWORD})
        assert r.status == 200
        r = await boss.get(client.make_url("/api/wallboard/history?date=2026-11-24&queue=aftersales"))
        assert r.status == 200, await r.text()
        data = await r.json()
        assert [(x["queue"], x["hour"], x["offered"]) for x in data["hours"]] == [("aftersales", 9, 5), ("aftersales", 10, 1)]
        assert {a["member"]: a["name"] for a in data["agents"]}["8001"] == "agent8001"
        r = await boss.get(client.make_url("/api/wallboard/history?date=2026-11-23"))
        assert (await r.json())["hours"] == []
        r = await boss.get(client.make_url("/api/wallboard/history?queue=a%0d%0aAction"))
        assert r.status == 422
        r = await agent.get(client.make_url("/api/wallboard/history"))
        assert r.status == 403
    finally:
        await boss.close()
        await agent.close()
