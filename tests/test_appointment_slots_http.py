"""``GET /api/orders/{id}/appointment/slots`` over HTTP (SQLite and PostgreSQL): who may ask (the
order's engineer, dispatchers, supervisors, admins; another engineer gets 404), and that the
windows come from the engineer's calendar — profile hours (or the defaults), leave, their other
booked visits and confirmed appointments, the order's own requested window offered, its own
booked window not counted as busy. The endpoint reads the real clock, so the calendar is built
relative to today (centre's time zone)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from aiohttp import web

from callcenter.appkeys import ENGINE, SESSIONMAKER, SETTINGS
from callcenter.db.models import Appointment, Customer, User, WorkOrder
from callcenter.db.workforce import EngineerLeave, EngineerProfile
from callcenter.dispatch.slots_http import routes
from callcenter.web.middleware import error_middleware
from tests.apphelpers import header_login, keyed_settings

SETTINGS_ = keyed_settings()
TZ = SETTINGS_.tz


def _today() -> dt.date:
    return dt.datetime.now(TZ).date()


def _at(days: int, hour: int) -> dt.datetime:
    """``days`` after today at ``hour``:00, centre's time zone, as aware UTC."""
    return dt.datetime.combine(_today() + dt.timedelta(days=days), dt.time(hour), TZ).astimezone(dt.UTC)


@pytest.fixture
async def client(aiohttp_client, engine, sessionmaker):  # type: ignore[no-untyped-def]
    app = web.Application(middlewares=[error_middleware, header_login])
    app[ENGINE], app[SESSIONMAKER], app[SETTINGS] = engine, sessionmaker, SETTINGS_
    app.add_routes(routes)
    return await aiohttp_client(app)


@pytest.fixture
async def world(sessionmaker) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Engineer ``busy`` (hours 10–16 every day, on leave today … +2, fully booked on day +3,
    a confirmed appointment on day +4 10–12) with orders ``main`` (a requested window on day +5
    14–16) and ``booked`` (its own visit on day +4 12–14); engineer ``plain`` without a profile;
    an order without an engineer."""
    now = dt.datetime.now(dt.UTC)
    ids: dict[str, int] = {}
    async with sessionmaker.begin() as s:
        for name in ("busy", "plain"):
            u = User(username=name, display_name=name, password_hash="x", role="engineer", active=True, created_at=now)
            s.add(u)
            await s.flush()
            ids[name] = u.id
        c = Customer(name="王小明", created_at=now)
        s.add(c)
        await s.flush()
        s.add(EngineerProfile(user_id=ids["busy"], working_hours={str(d): [["10:00", "16:00"]] for d in range(1, 8)}))
        s.add(EngineerLeave(engineer_id=ids["busy"], start_date=_today(), end_date=_today() + dt.timedelta(days=2),
                            kind="请假", created_at=now))

        def order(**kw: Any) -> WorkOrder:
            wo = WorkOrder(number=f"WO20261124-9{len(ids):02d}", customer_id=c.id, service_type="上门维修",
                           urgency="普通", problem="不制冷", created_at=now, **kw)
            s.add(wo)
            return wo

        main = order(status="已派单", engineer_id=ids["busy"], appointment_start=_at(5, 14),
                     appointment_end=_at(5, 16))
        await s.flush()
        ids["main"] = main.id
        day3 = order(status="已预约", engineer_id=ids["busy"], appointment_start=_at(3, 10),
                     appointment_end=_at(3, 16))
        await s.flush()
        ids["day3"] = day3.id
        other = order(status="已派单", engineer_id=ids["busy"])
        await s.flush()
        ids["other"] = other.id
        s.add(Appointment(number="AP20261124-901", order_id=other.id, engineer_id=ids["busy"], window_start=_at(4, 10),
                          window_end=_at(4, 12), source="工程师建议", proposed_slots=[], service_content="检修",
                          status="confirmed", customer_confirmed=True, created_at=now))
        # A closed order's old visit and a superseded proposal keep nothing busy.
        done = order(status="已完成", engineer_id=ids["busy"], appointment_start=_at(4, 12),
                     appointment_end=_at(4, 14))
        await s.flush()
        ids["done"] = done.id
        s.add(Appointment(number="AP20261124-902", order_id=other.id, engineer_id=ids["busy"], window_start=_at(4, 14),
                          window_end=_at(4, 16), source="工程师建议", proposed_slots=[], service_content="检修",
                          status="superseded", created_at=now))
        plain = order(status="已派单", engineer_id=ids["plain"])
        await s.flush()
        ids["plain_order"] = plain.id
        nobody = order(status="待处理")
        await s.flush()
        ids["nobody"] = nobody.id
    return ids


async def call(client, url: str, who: str | None, status: int = 200) -> Any:  # type: ignore[no-untyped-def]
    r = await client.get(url, headers={"X-Test-User": who} if who else {})
    text = await r.text()
    assert r.status == status, f"{who} GET {url} → {r.status}: {text}"
    return json.loads(text)


def _local(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso).astimezone(TZ)


async def test_who_may_ask(client, world) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/orders/{world['main']}/appointment/slots"
    for who in (f"{world['busy']}:engineer", "1:dispatcher", "1:supervisor", "1:admin"):
        assert (await call(client, url, who))["engineer_id"] == world["busy"]
    body = await call(client, url, f"{world['plain']}:engineer", status=404)
    assert body["error"] == "not_found"
    await call(client, url, "1:agent", status=403)
    await call(client, url, "1:survey", status=403)
    await call(client, url, None, status=401)
    await call(client, "/api/orders/999999/appointment/slots", "1:dispatcher", status=404)
    body = await call(client, f"/api/orders/{world['nobody']}/appointment/slots", "1:dispatcher", status=409)
    assert body["details"]["requires"] == "engineer"
    await call(client, f"{url}?hours=5", "1:dispatcher", status=422)


async def test_windows_come_from_the_engineers_calendar(client, world) -> None:  # type: ignore[no-untyped-def]
    body = await call(client, f"/api/orders/{world['main']}/appointment/slots", f"{world['busy']}:engineer")
    got = [(_local(s["start"]), _local(s["end"])) for s in body["slots"]]
    assert 2 <= len(got) <= 3
    today = _today()
    for (start, end), slot in zip(got, body["slots"], strict=True):
        assert (end - start) == dt.timedelta(hours=2) and start.minute == 0
        assert 10 <= start.hour and end.hour <= 16, "outside the profile's hours"
        # Leave until day +2, day +3 fully booked.
        assert (start.date() - today).days >= 4, f"{slot['label']} is on leave or a booked day"
        assert slot["label"].endswith(f"{start:%H:%M}–{end:%H:%M}")
    # Day +4: 10–12 is a confirmed appointment (the superseded proposal and the closed order's
    # window are free): 12–14 is the first free window; day +5 14–16 is the order's own wish.
    assert (got[0][0].date() - today).days == 4 and got[0][0].hour == 12
    assert (_at(5, 14).astimezone(TZ), _at(5, 16).astimezone(TZ)) in got


async def test_the_orders_own_visit_is_not_busy_and_defaults_without_a_profile(  # type: ignore[no-untyped-def]
        client, world) -> None:
    # Rebooking day +3's order: its own window (the whole working day +3) is offered again.
    body = await call(client, f"/api/orders/{world['day3']}/appointment/slots", "1:dispatcher")
    days = {(_local(s["start"]).date() - _today()).days for s in body["slots"]}
    assert 3 in days
    # No profile: every day 09:00–18:00.
    url = f"/api/orders/{world['plain_order']}/appointment/slots?hours=3"
    body = await call(client, url, f"{world['plain']}:engineer")
    assert body["engineer_id"] == world["plain"] and len(body["slots"]) == 3
    for s in body["slots"]:
        start, end = _local(s["start"]), _local(s["end"])
        assert end - start == dt.timedelta(hours=3) and 9 <= start.hour and end.hour <= 18
