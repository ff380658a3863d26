"""The on-site record over HTTP (SA-OS-004): create, edit with versions, parts from stock, fees
computed on the server, sign-off and lock, reopen; the IDOR matrix and 422s naming the field.

A small app with the parts routes and a fake login (``X-Test-User: <id>:<role>``) over real
users, orders and stock in the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

import pytest
from aiohttp import web
from sqlalchemy import func, select

from callcenter.appkeys import MAILBOX, SESSIONMAKER, SETTINGS
from callcenter.db.models import Appliance, Customer, User, WorkOrder
from callcenter.db.oversight import AuditEntry
from callcenter.db.records import OnsiteRecord, OrderEvent
from callcenter.db.stock import (
    OnsitePartLine,
    Part,
    PriceItem,
    StockLevel,
    StockLocation,
    StockMovement,
)
from callcenter.parts.http import routes
from callcenter.parts.views import utc
from callcenter.realtime.mailbox import LocalMailbox
from callcenter.settings import Settings
from callcenter.web.middleware import error_middleware
from tests.apphelpers import header_login

NOW = dt.datetime.now(dt.UTC)


fake_auth = header_login  # X-Test-User: <id>:<role>


@dataclass
class World:
    """Ids of what :func:`build_world` seeded."""

    users: dict[str, int]
    orders: dict[str, int]
    parts: dict[str, int]
    locations: dict[str, int]
    prices: dict[str, int]

    def as_(self, name: str) -> dict[str, str]:
        role = "engineer" if name.startswith("eng") else name
        return {"X-Test-User": f"{self.users[name]}:{role}"}


async def build_world(sessionmaker, *, parts_stock: int = 10,  # type: ignore[no-untyped-def]
                      extra_orders: int = 0) -> World:
    users: dict[str, int] = {}
    async with sessionmaker.begin() as s:
        for i, (name, role) in enumerate([("eng1", "engineer"), ("eng2", "engineer"), ("agent", "agent"),
                                           ("dispatcher", "dispatcher"), ("supervisor", "supervisor"),
                                           ("admin", "admin"), ("survey", "survey")]):
            u = User(username=name, display_name="张工程" if name == "eng1" else name, password_hash="x",
                     role=role, active=True, created_at=NOW, staff_no=f"GY{i:07d}")
            s.add(u)
            await s.flush()
            users[name] = u.id
        c = Customer(name="欧阳娜娜", created_at=NOW)
        s.add(c)
        await s.flush()
        ac = Appliance(customer_id=c.id, category="空调", model="KFR-35GW", serial="SN1")
        s.add(ac)
        await s.flush()
        orders: dict[str, int] = {}
        specs = [("o1", "eng1", "服务中", "保外"), ("o2", "eng2", "服务中", "保外"), ("o3", "eng1", "待件", "保内"),
                 ("o4", "eng1", "已预约", "保外")]
        specs += [(f"x{i}", "eng1", "服务中", "保外") for i in range(extra_orders)]
        for i, (key, eng, status, warranty) in enumerate(specs):
            o = WorkOrder(number=f"WO20261123-{i + 1:03d}", customer_id=c.id, appliance_id=ac.id,
                          product_model="KFR-35GW", serial="SN1", warranty=warranty, status=status,
                          engineer_id=users[eng], created_at=NOW)
            s.add(o)
            await s.flush()
            orders[key] = o.id
        prices = {}
        for key, kind, name, fen in [("visit", "上门费", "上门检测", 5000), ("cap", "工时费", "更换电容", 8000),
                                     ("gas", "工时费", "加氟", 15000), ("fridge_labour", "工时费", "冰箱检修", 6000)]:
            item = PriceItem(category="冰箱" if key == "fridge_labour" else "空调", kind=kind, name=name,
                             amount_fen=fen, active=True)
            s.add(item)
            await s.flush()
            prices[key] = item.id
        parts = {}
        for key, code, cat, fen in [("cap", "CAP-35UF", "空调", 3500), ("seal", "SEAL-BCD", "冰箱", 2000)]:
            p = Part(code=code, name=key, model="M", category=cat, unit_price_fen=fen, active=True)
            s.add(p)
            await s.flush()
            parts[key] = p.id
        locations = {}
        for key, kind, wtype, eng in [("parts", "warehouse", "配件库", None), ("goods", "warehouse", "成品库", None),
                                      ("van1", "van", "", "eng1"), ("van2", "van", "", "eng2")]:
            loc = StockLocation(code=key.upper(), name=key, kind=kind, warehouse_type=wtype,
                                engineer_id=users[eng] if eng else None)
            s.add(loc)
            await s.flush()
            locations[key] = loc.id
        for loc_key, qty in [("parts", parts_stock), ("goods", 10), ("van1", 3), ("van2", 3)]:
            s.add(StockLevel(location_id=locations[loc_key], part_id=parts["cap"], quantity=qty, safety_stock=0))
    return World(users, orders, parts, locations, prices)


def make_app(sessionmaker, mailbox=None) -> web.Application:  # type: ignore[no-untyped-def]
    app = web.Application(middlewares=[error_middleware, fake_auth])
    app[SESSIONMAKER] = sessionmaker
    app[SETTINGS] = Settings()
    app[MAILBOX] = mailbox or LocalMailbox(100)
    app.add_routes(routes)
    return app


@pytest.fixture
async def world(sessionmaker) -> World:  # type: ignore[no-untyped-def]
    return await build_world(sessionmaker)


@pytest.fixture
async def client(aiohttp_client, sessionmaker):  # type: ignore[no-untyped-def]
    return await aiohttp_client(make_app(sessionmaker))


async def call(client, method: str, url: str, who: dict, body=None, status: int = 200):  # type: ignore[no-untyped-def]
    r = await client.request(method, url, json=body, headers=who)
    text = await r.text()
    assert r.status == status, f"{method} {url} → {r.status}: {text}"
    return json.loads(text) if text else None


async def level(sessionmaker, location_id: int, part_id: int) -> int:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s:
        return await s.scalar(select(StockLevel.quantity).where(
            StockLevel.location_id == location_id, StockLevel.part_id == part_id))


async def count(sessionmaker, model, *where) -> int:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s:
        return await s.scalar(select(func.count()).select_from(model).where(*where)) or 0


# ---- the whole record ----------------------------------------------------------------------------

async def test_create_edit_parts_sign_lock_reopen(client, world, sessionmaker):
    w, eng1 = world, world.as_("eng1")
    rec = await call(client, "POST", f"/api/orders/{w.orders['o1']}/onsite", eng1,
                     {"fault_observed": "外机不转"}, status=201)
    assert re.fullmatch(r"OS\d{8}-001", rec["number"])
    assert rec["engineer"] == {"id": w.users["eng1"], "name": "张**", "staff_no": "GY0000000"}
    assert rec["category"] == "空调" and rec["in_warranty"] is False and rec["version"] == 1
    # the category's visit fee is there from the start
    assert [f["name"] for f in rec["fee_items"]] == ["上门检测"]
    assert rec["totals"] == {"parts_fen": 0, "visit_fee_fen": 5000, "labour_fee_fen": 0,
                             "total_fen": 5000, "list_total_fen": 5000}
    # a second unsigned record for the same order: 409 naming the first
    r = await call(client, "POST", f"/api/orders/{w.orders['o1']}/onsite", eng1, {}, status=409)
    assert r["details"]["onsite_id"] == rec["id"]

    oid = rec["id"]
    rec = await call(client, "PATCH", f"/api/onsite/{oid}", eng1, {
        "version": 1, "root_cause": "启动电容读数 0 µF", "solution": "更换电容", "test_result": "出风 16 °C",
        "customer_feedback": "满意，电话 13800138000", "labour_items": [{"price_item_id": w.prices["cap"]}]})
    assert rec["version"] == 2 and rec["root_cause"] == "启动电容读数 0 µF"
    assert "13800138000" not in json.dumps(rec) and "138****8000" in rec["customer_feedback"]
    assert rec["totals"]["labour_fee_fen"] == 8000 and rec["totals"]["total_fen"] == 13000
    # stale version → 409, nothing changed
    r = await call(client, "PATCH", f"/api/onsite/{oid}", eng1, {"version": 1, "solution": "x"}, status=409)
    assert r["error"] == "stale_version" and r["details"]["current_version"] == 2

    rec = await call(client, "POST", f"/api/onsite/{oid}/parts", eng1,
                     {"part_id": w.parts["cap"], "location_id": w.locations["van1"], "quantity": 2}, status=201)
    assert await level(sessionmaker, w.locations["van1"], w.parts["cap"]) == 1
    line = rec["parts"][0]
    assert (line["quantity"], line["unit_price_fen"], line["total_fen"], line["free"]) == (2, 3500, 7000, False)
    assert rec["totals"] == {"parts_fen": 7000, "visit_fee_fen": 5000, "labour_fee_fen": 8000,
                             "total_fen": 20000, "list_total_fen": 20000}
    # edit the line: stock moves by the difference; more than there is → 409, nothing moved
    rec = await call(client, "PATCH", f"/api/onsite/{oid}/parts/{line['id']}", eng1, {"quantity": 1})
    assert await level(sessionmaker, w.locations["van1"], w.parts["cap"]) == 2
    await call(client, "PATCH", f"/api/onsite/{oid}/parts/{line['id']}", eng1, {"quantity": 4}, status=409)
    assert await level(sessionmaker, w.locations["van1"], w.parts["cap"]) == 2
    rec = await call(client, "PATCH", f"/api/onsite/{oid}/parts/{line['id']}", eng1, {"quantity": 3})
    assert await level(sessionmaker, w.locations["van1"], w.parts["cap"]) == 0
    assert rec["totals"]["parts_fen"] == 10500
    # remove it: everything back
    rec = await call(client, "DELETE", f"/api/onsite/{oid}/parts/{line['id']}", eng1)
    assert rec["parts"] == [] and rec["totals"]["parts_fen"] == 0
    assert await level(sessionmaker, w.locations["van1"], w.parts["cap"]) == 3
    async with sessionmaker() as s:
        deltas = (await s.scalars(select(StockMovement.delta).where(
            StockMovement.location_id == w.locations["van1"]).order_by(StockMovement.id))).all()
    assert deltas == [-2, 1, -2, 3]

    rec = await call(client, "POST", f"/api/onsite/{oid}/parts", eng1,
                     {"part_id": w.parts["cap"], "location_id": w.locations["parts"], "quantity": 1}, status=201)
    version = rec["version"]
    # sign-off: needs the customer's confirmation; signatures checked
    await call(client, "POST", f"/api/onsite/{oid}/sign", eng1, {
        "version": version, "customer_confirmed": True, "customer_signature": "data:image/gif;base64,R0lG",
        "engineer_signature": "张工"}, status=422)
    rec = await call(client, "POST", f"/api/onsite/{oid}/sign", eng1, {
        "version": version, "customer_confirmed": True, "customer_signature": "欧阳娜娜",
        "engineer_signature": "data:image/png;base64,iVBORw0KGgo="})
    assert rec["locked"] is True and rec["customer_confirmed"] is True and rec["signed_at"]
    assert rec["customer_signature"] == {"kind": "typed", "text": "欧阳**"}
    assert rec["engineer_signature"] == {"kind": "drawn", "text": ""}
    assert rec["ended_at"] is not None and rec["totals"]["total_fen"] == 3500 + 5000 + 8000
    async with sessionmaker() as s:
        order = await s.get(WorkOrder, w.orders["o1"])
        assert order.signed_at is not None and order.service_finished_at is not None
        assert order.status == "服务中"  # status transitions belong to the orders slice

    # locked: every write 409
    v = rec["version"]
    for method, url, body in [
        ("PATCH", f"/api/onsite/{oid}", {"version": v, "solution": "x"}),
        ("POST", f"/api/onsite/{oid}/parts",
         {"part_id": w.parts["cap"], "location_id": w.locations["van1"], "quantity": 1}),
        ("PATCH", f"/api/onsite/{oid}/parts/{rec['parts'][0]['id']}", {"quantity": 2}),
        ("DELETE", f"/api/onsite/{oid}/parts/{rec['parts'][0]['id']}", None),
        ("POST", f"/api/onsite/{oid}/sign", {"version": v, "customer_confirmed": True,
                                             "customer_signature": "a", "engineer_signature": "b"}),
    ]:
        r = await call(client, method, url, eng1, body, status=409)
        assert r["error"] == "onsite_locked"
    # only a supervisor reopens, with a reason
    await call(client, "POST", f"/api/onsite/{oid}/reopen", eng1, {"version": v, "reason": "客户要求"}, status=403)
    rec = await call(client, "POST", f"/api/onsite/{oid}/reopen", w.as_("supervisor"),
                     {"version": v, "reason": "费用录入有误"})
    assert rec["locked"] is False and rec["customer_signature"]["kind"] == "none"
    rec = await call(client, "PATCH", f"/api/onsite/{oid}", eng1, {"version": rec["version"], "solution": "更换电容并清洗"})
    assert rec["solution"] == "更换电容并清洗"

    async with sessionmaker() as s:
        actions = (await s.scalars(select(AuditEntry.action).where(AuditEntry.entity == "onsite")
                                   .order_by(AuditEntry.id))).all()
        events = (await s.scalars(select(OrderEvent.action).where(OrderEvent.order_id == w.orders["o1"]))).all()
        details = (await s.scalars(select(AuditEntry.detail).where(AuditEntry.entity == "onsite"))).all()
    assert actions[:2] == ["onsite.create", "onsite.update"]
    assert {"onsite.part.add", "onsite.part.update", "onsite.part.remove", "onsite.sign",
            "onsite.reopen"} <= set(actions)
    assert set(events) == {"onsite"} and len(events) == len(actions)
    assert "欧阳" not in json.dumps(details, ensure_ascii=False)


async def test_in_warranty_everything_free_with_list_prices(client, world, sessionmaker):
    w, eng1 = world, world.as_("eng1")
    rec = await call(client, "POST", f"/api/orders/{w.orders['o3']}/onsite", eng1, {}, status=201)
    assert rec["in_warranty"] is True
    rec = await call(client, "PATCH", f"/api/onsite/{rec['id']}", eng1, {
        "version": rec["version"], "labour_items": [{"price_item_id": w.prices["gas"], "quantity": 2}]})
    rec = await call(client, "POST", f"/api/onsite/{rec['id']}/parts", eng1,
                     {"part_id": w.parts["cap"], "location_id": w.locations["parts"], "quantity": 2}, status=201)
    line = rec["parts"][0]
    assert (line["free"], line["unit_price_fen"], line["total_fen"]) == (True, 3500, 0)
    assert all(f["free"] and f["total_fen"] == 0 for f in rec["fee_items"])
    assert [f["amount_fen"] for f in rec["fee_items"]] == [5000, 15000]
    assert rec["totals"] == {"parts_fen": 0, "visit_fee_fen": 0, "labour_fee_fen": 0, "total_fen": 0,
                             "list_total_fen": 7000 + 5000 + 30000}
    # free or not, the stock is used
    assert await level(sessionmaker, w.locations["parts"], w.parts["cap"]) == 8


async def test_totals_are_never_taken_from_the_client(client, world, sessionmaker):
    w, eng1 = world, world.as_("eng1")
    rec = await call(client, "POST", f"/api/orders/{w.orders['o1']}/onsite", eng1, {}, status=201)
    for field in ("total_fen", "visit_fee_fen", "parts_total_fen", "labour_fee_fen", "totals", "in_warranty"):
        r = await call(client, "PATCH", f"/api/onsite/{rec['id']}", eng1,
                       {"version": rec["version"], field: 1}, status=422)
        assert r["details"]["field"] == field
    r = await call(client, "POST", f"/api/onsite/{rec['id']}/parts", eng1,
                   {"part_id": w.parts["cap"], "location_id": w.locations["parts"], "quantity": 1,
                    "unit_price_fen": 1}, status=422)
    assert r["details"]["field"] == "unit_price_fen"
    async with sessionmaker() as s:
        stored = await s.get(OnsiteRecord, rec["id"])
        assert (stored.total_fen, stored.visit_fee_fen, stored.version) == (5000, 5000, 1)
    again = await call(client, "GET", f"/api/onsite/{rec['id']}", eng1)
    assert again["totals"]["total_fen"] == 5000


@pytest.mark.parametrize(("body", "field"), [
    ({"version": 1, "started_at": "yesterday"}, "started_at"),
    ({"version": 1, "root_cause": "x" * 2001}, "root_cause"),
    ({"version": 1, "labour_items": [{"price_item_id": 0}]}, "labour_items[0].price_item_id"),
    ({"version": 1, "labour_items": [{"price_item_id": 1, "quantity": 0}]}, "labour_items[0].quantity"),
    ({"solution": "x"}, "version"),
    ({"version": 1, "solution": None}, "solution"),
])
async def test_update_422_names_the_field(client, world, body, field):
    rec = await call(client, "POST", f"/api/orders/{world.orders['o1']}/onsite", world.as_("eng1"), {}, status=201)
    r = await call(client, "PATCH", f"/api/onsite/{rec['id']}", world.as_("eng1"), body, status=422)
    assert r["error"] == "validation_failed" and r["details"]["field"] == field


async def test_domain_422s_name_the_field(client, world):
    w, eng1 = world, world.as_("eng1")
    rec = await call(client, "POST", f"/api/orders/{w.orders['o1']}/onsite", eng1, {}, status=201)
    oid, v = rec["id"], rec["version"]
    cases = [
        ("PATCH", f"/api/onsite/{oid}", {"version": v, "visit_item_id": w.prices["cap"]}, "visit_item_id"),
        ("PATCH", f"/api/onsite/{oid}", {"version": v, "labour_items": [{"price_item_id": w.prices["fridge_labour"]}]},
         "labour_items[0].price_item_id"),
        ("PATCH", f"/api/onsite/{oid}", {"version": v, "ended_at": "2000-01-01T00:00:00+08:00"}, "ended_at"),
        ("POST", f"/api/onsite/{oid}/parts", {"part_id": w.parts["seal"], "location_id": w.locations["parts"],
                                              "quantity": 1}, "part_id"),
        ("POST", f"/api/onsite/{oid}/parts", {"part_id": w.parts["cap"], "location_id": w.locations["goods"],
                                              "quantity": 1}, "location_id"),
        ("POST", f"/api/onsite/{oid}/parts", {"part_id": w.parts["cap"], "location_id": w.locations["van2"],
                                              "quantity": 1}, "location_id"),
        ("POST", f"/api/onsite/{oid}/parts", {"part_id": w.parts["cap"], "location_id": 999999,
                                              "quantity": 1}, "location_id"),
        ("POST", f"/api/onsite/{oid}/sign", {"version": v, "customer_confirmed": False,
                                             "customer_signature": "a", "engineer_signature": "b"},
         "customer_confirmed"),
        # cause and fix first
        ("POST", f"/api/onsite/{oid}/sign", {"version": v, "customer_confirmed": True,
                                             "customer_signature": "a", "engineer_signature": "b"}, "root_cause"),
    ]
    for method, url, body, field in cases:
        r = await call(client, method, url, eng1, body, status=422)
        assert r["details"]["field"] == field, (url, body, r)
    # naive times are the centre's local time, stored to the minute
    rec = await call(client, "PATCH", f"/api/onsite/{oid}", eng1,
                     {"version": v, "started_at": "2026-01-05T09:30:42"})
    assert rec["started_at"] == "2026-01-05T01:30:00+00:00"


async def test_create_needs_an_order_in_service(client, world):
    w = world
    r = await call(client, "POST", f"/api/orders/{w.orders['o4']}/onsite", w.as_("eng1"), {}, status=409)
    assert r["error"] == "order_not_in_service" and r["details"]["order_status"] == "已预约"
    # 待件 is fine
    await call(client, "POST", f"/api/orders/{w.orders['o3']}/onsite", w.as_("eng1"), {}, status=201)


async def test_reopen_refused_once_the_order_is_closed(client, world, sessionmaker):
    w, eng1 = world, world.as_("eng1")
    rec = await call(client, "POST", f"/api/orders/{w.orders['o1']}/onsite", eng1, {}, status=201)
    rec = await call(client, "PATCH", f"/api/onsite/{rec['id']}", eng1,
                     {"version": rec["version"], "root_cause": "电容失效", "solution": "更换电容"})
    rec = await call(client, "POST", f"/api/onsite/{rec['id']}/sign", eng1, {
        "version": rec["version"], "customer_confirmed": True, "customer_signature": "欧阳娜娜",
        "engineer_signature": "张工"})
    async with sessionmaker.begin() as s:
        (await s.get(WorkOrder, w.orders["o1"])).status = "已完成"
    r = await call(client, "POST", f"/api/onsite/{rec['id']}/reopen", w.as_("supervisor"),
                   {"version": rec["version"], "reason": "复核"}, status=409)
    assert r["error"] == "order_closed"
    # nor can a new record be started on a closed order
    await call(client, "POST", f"/api/orders/{w.orders['o1']}/onsite", eng1, {}, status=409)


# ---- IDOR matrix ----------------------------------------------------------------------------------

async def test_idor_matrix(client, world, sessionmaker):
    """Every id-bearing endpoint with another engineer's ids → 404; read-only roles writing → 403."""
    w = world
    rec2 = await call(client, "POST", f"/api/orders/{w.orders['o2']}/onsite", w.as_("eng2"), {}, status=201)
    rec2 = await call(client, "POST", f"/api/onsite/{rec2['id']}/parts", w.as_("eng2"),
                      {"part_id": w.parts["cap"], "location_id": w.locations["van2"], "quantity": 1}, status=201)
    oid, line, v = rec2["id"], rec2["parts"][0]["id"], rec2["version"]
    # eng1's own record, to try eng2's line id on it
    own = await call(client, "POST", f"/api/orders/{w.orders['o1']}/onsite", w.as_("eng1"), {}, status=201)
    sign = {"version": v, "customer_confirmed": True, "customer_signature": "a", "engineer_signature": "b"}
    requests = [
        ("GET", f"/api/onsite/{oid}", None),
        ("GET", f"/api/orders/{w.orders['o2']}/onsite", None),
        ("POST", f"/api/orders/{w.orders['o2']}/onsite", {}),
        ("PATCH", f"/api/onsite/{oid}", {"version": v, "solution": "x"}),
        ("POST", f"/api/onsite/{oid}/parts",
         {"part_id": w.parts["cap"], "location_id": w.locations["parts"], "quantity": 1}),
        ("PATCH", f"/api/onsite/{oid}/parts/{line}", {"quantity": 2}),
        ("DELETE", f"/api/onsite/{oid}/parts/{line}", None),
        ("POST", f"/api/onsite/{oid}/sign", sign),
        # another record's line through one's own record
        ("PATCH", f"/api/onsite/{own['id']}/parts/{line}", {"quantity": 2}),
        ("DELETE", f"/api/onsite/{own['id']}/parts/{line}", None),
        # ids that do not exist answer the same
        ("GET", "/api/onsite/987654", None),
        ("POST", "/api/orders/987654/onsite", {}),
    ]
    for method, url, body in requests:
        r = await call(client, method, url, w.as_("eng1"), body, status=404)
        assert r["error"] == "not_found"
    for role in ("agent", "dispatcher", "survey"):
        for method, url, body in requests[2:8]:
            await call(client, method, url, w.as_(role), body, status=403)
        # reading is allowed to every role but engineers of other orders
        await call(client, "GET", f"/api/onsite/{oid}", w.as_(role))
    await call(client, "POST", f"/api/onsite/{oid}/reopen", w.as_("eng2"), {"version": v, "reason": "xx"}, status=403)
    # nothing moved: eng2's line and stock as they were
    async with sessionmaker() as s:
        assert (await s.get(OnsitePartLine, line)).quantity == 1
        assert (await s.get(OnsiteRecord, oid)).version == v
    assert await level(sessionmaker, w.locations["van2"], w.parts["cap"]) == 2
    # no login → 401
    r = await client.get(f"/api/onsite/{oid}")
    assert r.status == 401


async def test_recorded_end_starts_the_sign_off_clock(client, world, sessionmaker):
    """The first end time becomes the order's service_finished_at (the SLA's 10 min to the
    signature run from it); signing keeps it."""
    w, eng1 = world, world.as_("eng1")
    rec = await call(client, "POST", f"/api/orders/{w.orders['o1']}/onsite", eng1, {}, status=201)
    end = (NOW - dt.timedelta(minutes=30)).replace(second=0, microsecond=0)
    rec = await call(client, "PATCH", f"/api/onsite/{rec['id']}", eng1, {
        "version": rec["version"], "started_at": (end - dt.timedelta(hours=1)).isoformat(),
        "ended_at": end.isoformat(), "root_cause": "电容失效", "solution": "更换电容"})
    async with sessionmaker() as s:
        finished = (await s.get(WorkOrder, w.orders["o1"])).service_finished_at
    assert utc(finished) == end
    rec = await call(client, "POST", f"/api/onsite/{rec['id']}/sign", eng1, {
        "version": rec["version"], "customer_confirmed": True, "customer_signature": "欧阳娜娜",
        "engineer_signature": "张工"})
    assert rec["ended_at"] == end.isoformat()
    async with sessionmaker() as s:
        order = await s.get(WorkOrder, w.orders["o1"])
    assert utc(order.service_finished_at) == end and order.signed_at is not None
