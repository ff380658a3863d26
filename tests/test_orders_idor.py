"""Object-level access for every id-bearing order endpoint: another engineer's order (and its
appointments) is 404 — the same as one that does not exist — a role that may not act is 403,
and ids inside bodies must belong to the customer (422). Nothing changes on a refused call."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from callcenter.auth.identity import CurrentUser
from callcenter.db.models import Address, Appliance, AuditEntry, Customer, OrderEvent, WorkOrder
from callcenter.dispatch.engine import engine_for
from callcenter.orders.appointments import AppointmentService
from callcenter.orders.schemas import AppointmentIn, IntakeIn
from callcenter.orders.services import OrderService
from tests.test_orders_http import SETTINGS_, World, build_world, client, hour, intake_body  # noqa: F401

MISSING = 987654321


def _user(w: World, name: str) -> CurrentUser:
    role = "engineer" if name.startswith("eng") else name
    return CurrentUser(id=w.users[name], username=name, role=role)


@pytest.fixture
async def world(sessionmaker) -> tuple[World, dict[str, int]]:  # type: ignore[no-untyped-def]
    """Order A dispatched to eng1 with a proposed appointment; order B dispatched to eng2."""
    w = await build_world(sessionmaker)
    service = OrderService(sessionmaker, SETTINGS_)
    agent, dispatcher = _user(w, "agent"), _user(w, "dispatcher")
    ids: dict[str, int] = {}
    for key, eng in (("A", "eng1"), ("B", "eng2")):
        intake_id, order_id = await service.create_intake(
            IntakeIn.model_validate(intake_body(w, create_order={})), agent)
        await engine_for(sessionmaker, SETTINGS_).manual(order_id, dispatcher, engineer_id=w.users[eng],
                                                         version=1, reason="测试派单")
        ids[key], ids["intake" + key] = order_id, intake_id
    ids["apA"] = await AppointmentService(service).create(ids["A"], AppointmentIn.model_validate(
        {"window_start": hour(1, 9), "window_end": hour(1, 11), "service_content": "检修"}), _user(w, "eng1"))
    return w, ids


def matrix(ids: dict[str, int], w: World) -> list[tuple[str, str, dict | None]]:
    a, ap, ia = ids["A"], ids["apA"], ids["intakeA"]
    return [
        ("GET", f"/api/orders/{a}", None),
        ("POST", f"/api/orders/{a}/transitions", {"to": "已取消", "reason": "测试", "version": 3}),
        ("POST", f"/api/orders/{a}/assign", {"engineer_id": w.users["eng2"], "version": 3}),
        ("POST", f"/api/orders/{a}/accept", {}),
        ("POST", f"/api/orders/{a}/contacted", {}),
        ("POST", f"/api/orders/{a}/appointments",
         {"window_start": hour(2, 9), "window_end": hour(2, 11), "service_content": "检修"}),
        ("GET", f"/api/appointments/{ap}", None),
        ("POST", f"/api/appointments/{ap}/confirm", {}),
        ("GET", f"/api/intakes/{ia}", None),
        ("POST", "/api/orders", {"intake_id": ia}),
        ("GET", f"/api/intakes/prefill?customer_id={w.customer}", None),
    ]


# For each caller, the expected status per row of the matrix (same order).
EXPECTED = {
    # Another engineer: the order and its appointment do not exist for them; what their role
    # may never do is 403.
    "eng2": [404, 404, 403, 404, 404, 404, 404, 404, 403, 403, 403],
    "survey": [200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403],
    "agent": [200, None, 403, 403, 403, None, 200, None, 200, 409, 200],
}


@pytest.mark.parametrize("who", list(EXPECTED))
async def test_idor_matrix(client, world, sessionmaker, who):  # type: ignore[no-untyped-def]
    w, ids = world
    async with sessionmaker() as s:
        before = ((await s.get(WorkOrder, ids["A"])).version,
                  (await s.execute(select(func.count()).select_from(OrderEvent))).scalar())
    got = []
    for (method, url, body), want in zip(matrix(ids, w), EXPECTED[who]):
        if want is None:
            got.append(None)  # a write that would succeed for this role: not an access question
            continue
        r = await client.request(method, url, json=body, headers=w.as_(who))
        got.append(r.status)
    assert got == EXPECTED[who]
    if who != "agent":
        async with sessionmaker() as s:
            after = ((await s.get(WorkOrder, ids["A"], populate_existing=True)).version,
                     (await s.execute(select(func.count()).select_from(OrderEvent))).scalar())
        assert after == before


async def test_owner_and_leads_see_the_order(client, world):  # type: ignore[no-untyped-def]
    w, ids = world
    for who in ("eng1", "dispatcher", "supervisor", "admin", "survey", "agent"):
        r = await client.get(f"/api/orders/{ids['A']}", headers=w.as_(who))
        assert r.status == 200, who
    r = await client.get(f"/api/appointments/{ids['apA']}", headers=w.as_("eng1"))
    assert r.status == 200
    # eng2 sees their own order B but not A.
    r = await client.get(f"/api/orders/{ids['B']}", headers=w.as_("eng2"))
    assert r.status == 200


async def test_missing_ids_are_404_like_others_orders(client, world):  # type: ignore[no-untyped-def]
    w, ids = world
    missing = {"A": MISSING, "apA": MISSING, "intakeA": MISSING}
    for (method, url, body), status in zip(matrix(missing, w), EXPECTED["eng2"]):
        if status != 404:
            continue
        r = await client.request(method, url, json=body, headers=w.as_("eng2"))
        body_other = await r.json()
        assert r.status == 404 and body_other["error"] == "not_found", url
        r = await client.request(method, url, json=body, headers=w.as_("admin"))
        assert r.status == 404, url
    r = await client.get(f"/api/intakes/{MISSING}", headers=w.as_("admin"))
    assert r.status == 404


async def test_ids_in_bodies_must_be_the_customers(client, world, sessionmaker):  # type: ignore[no-untyped-def]
    w, _ = world
    async with sessionmaker.begin() as s:
        other = Customer(name="李四", created_at=dt.datetime.now(dt.UTC),
                         addresses=[Address(province="北京市", city="北京市", district="朝阳区")],
                         appliances=[Appliance(category="冰箱", model="BCD-200")])
        s.add(other)
        await s.flush()
        other_address, other_appliance = other.addresses[0].id, other.appliances[0].id
    for over, field in [({"appliance_id": other_appliance}, "appliance_id"),
                        ({"create_order": {"address_id": other_address}}, "create_order.address_id"),
                        ({"customer_id": other.id}, "phone_id")]:  # w's phone is not 李四's
        r = await client.post("/api/intakes", json=intake_body(w, **over), headers=w.as_("agent"))
        assert r.status == 422 and (await r.json())["details"]["field"] == field, over
    async with sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(AuditEntry)
                                .where(AuditEntry.entity == "intake"))).scalar() == 2  # the fixture's
