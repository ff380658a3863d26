"""Stock: concurrent issues on a real PostgreSQL never oversell; receipts, transfers,
adjustments; safety-stock alerts listed and pushed once per crossing; who may read and write the
stock and the catalogue; 422s name the field."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import func, select

from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.db.oversight import AuditEntry
from callcenter.db.records import OnsiteRecord
from callcenter.db.stock import OnsitePartLine, StockMovement
from tests import test_onsite_http as onsite_tests
from tests.test_onsite_http import build_world, call, count, level, make_app


class RecordingMailbox:
    """What was pushed to whom."""

    def __init__(self) -> None:
        self.posts: list[tuple[int, dict]] = []

    async def post(self, user_id: int, message: dict) -> dict:
        json.dumps(message, ensure_ascii=False)  # must be JSON as it is
        self.posts.append((user_id, message))
        return message


# The same fixtures as the on-site tests (a small app over a seeded world).
world = onsite_tests.world
client = onsite_tests.client


@pytest.fixture
async def pg_sessionmaker(pg_url):  # type: ignore[no-untyped-def]
    engine = make_engine(pg_url)
    await migrate(engine)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_twenty_concurrent_issues_of_the_last_five_units(aiohttp_client, pg_sessionmaker):
    sm = pg_sessionmaker
    w = await build_world(sm, parts_stock=5, extra_orders=4)
    http = await aiohttp_client(make_app(sm))
    eng1 = w.as_("eng1")
    records = [await call(http, "POST", f"/api/orders/{w.orders[f'x{i}']}/onsite", eng1, {}, status=201)
               for i in range(4)]
    body = {"part_id": w.parts["cap"], "location_id": w.locations["parts"], "quantity": 1}

    async def issue(record_id: int):  # type: ignore[no-untyped-def]
        r = await http.post(f"/api/onsite/{record_id}/parts", json=body, headers=eng1)
        return r.status, await r.json()

    results = await asyncio.gather(*(issue(records[i % 4]["id"]) for i in range(20)))
    statuses = sorted(s for s, _ in results)
    assert statuses == [201] * 5 + [409] * 15
    assert all(b["error"] == "insufficient_stock" for s, b in results if s == 409)
    assert await level(sm, w.locations["parts"], w.parts["cap"]) == 0
    assert await count(sm, OnsitePartLine) == 5
    assert await count(sm, StockMovement, StockMovement.reason == "issue") == 5
    assert await count(sm, AuditEntry, AuditEntry.action == "onsite.part.add") == 5
    async with sm() as s:
        moved = await s.scalar(select(func.sum(StockMovement.delta)).where(
            StockMovement.location_id == w.locations["parts"]))
        versions = (await s.scalars(select(OnsiteRecord.version))).all()
        line_totals = (await s.scalars(select(OnsitePartLine.total_fen))).all()
        record_parts = (await s.scalars(select(OnsiteRecord.parts_total_fen))).all()
    assert moved == -5
    # each record's version and totals reflect exactly its own successful issues
    assert sum(versions) == 4 + 5 and sum(record_parts) == sum(line_totals) == 5 * 3500
    # putting one back makes exactly one more issue possible
    rec = next(b for s, b in results if s == 201)
    await call(http, "DELETE", f"/api/onsite/{rec['id']}/parts/{rec['parts'][0]['id']}", eng1)
    again = await asyncio.gather(*(issue(records[i % 4]["id"]) for i in range(6)))
    assert sorted(s for s, _ in again) == [201] + [409] * 5
    assert await level(sm, w.locations["parts"], w.parts["cap"]) == 0


async def test_receipt_transfer_adjust_and_safety_alerts_once_per_crossing(aiohttp_client, sessionmaker):
    w = await build_world(sessionmaker)
    mailbox = RecordingMailbox()
    http = await aiohttp_client(make_app(sessionmaker, mailbox))
    sup, cap, parts, van1 = w.as_("supervisor"), w.parts["cap"], w.locations["parts"], w.locations["van1"]

    r = await call(http, "PUT", "/api/stock/safety", sup, {"location_id": parts, "part_id": cap, "safety_stock": 4})
    assert r["levels"][0]["below_safety"] is False and mailbox.posts == []
    # 10 → 4: at the line, no alert; → 3: below, pushed once to the supervisor
    await call(http, "POST", "/api/stock/transfers", sup, {"from_location_id": parts, "to_location_id": van1,
                                                             "part_id": cap, "quantity": 6}, status=201)
    assert mailbox.posts == []
    rec = await call(http, "POST", f"/api/orders/{w.orders['o1']}/onsite", w.as_("eng1"), {}, status=201)
    await call(http, "POST", f"/api/onsite/{rec['id']}/parts", w.as_("eng1"),
               {"part_id": cap, "location_id": parts, "quantity": 1}, status=201)
    assert [(u, m["type"], m["quantity"], m["safety_stock"]) for u, m in mailbox.posts] == [
        (w.users["supervisor"], "stock.alert", 3, 4)]
    assert mailbox.posts[0][1]["location"]["warehouse_type"] == "配件库"
    # still below: listed, not pushed again
    await call(http, "POST", "/api/stock/adjustments", sup,
               {"location_id": parts, "part_id": cap, "delta": -1, "reason": "盘点少一个"}, status=201)
    assert len(mailbox.posts) == 1
    alerts = await call(http, "GET", "/api/stock/alerts", sup)
    assert [(a["location"]["id"], a["quantity"]) for a in alerts["items"]] == [(parts, 2)]
    assert alerts["items"][0]["alert_raised_at"]
    # back above: cleared; below again: a new crossing, a new push
    r = await call(http, "POST", "/api/stock/receipts", sup,
                   {"location_id": parts, "part_id": cap, "quantity": 8, "note": "采购入库"}, status=201)
    assert r["levels"][0]["quantity"] == 10 and r["levels"][0]["alert_raised_at"] is None
    assert (await call(http, "GET", "/api/stock/alerts", sup))["items"] == []
    await call(http, "POST", "/api/stock/adjustments", sup,
               {"location_id": parts, "part_id": cap, "delta": -7, "reason": "报损"}, status=201)
    assert len(mailbox.posts) == 2
    # an adjustment below zero is refused, nothing written
    r = await call(http, "POST", "/api/stock/adjustments", sup,
                   {"location_id": parts, "part_id": cap, "delta": -4, "reason": "盘点"}, status=409)
    assert r["error"] == "insufficient_stock" and r["details"]["available"] == 3
    assert await level(sessionmaker, parts, cap) == 3
    # transfers out of a van that lacks the units: 409
    await call(http, "POST", "/api/stock/transfers", sup, {"from_location_id": van1, "to_location_id": parts,
                                                             "part_id": cap, "quantity": 99}, status=409)
    assert await level(sessionmaker, van1, cap) == 9
    movements = await call(http, "GET", f"/api/stock/movements?location_id={parts}", sup)
    assert [m["reason"] for m in movements["items"]][:3] == ["adjust", "receipt", "adjust"]


async def test_engineers_see_their_van_and_the_parts_warehouse(client, world):
    w = world
    mine = await call(client, "GET", "/api/stock", w.as_("eng1"))
    assert {i["location"]["code"] for i in mine["items"]} == {"PARTS", "VAN1"}
    locs = await call(client, "GET", "/api/stock/locations", w.as_("eng1"))
    assert {loc["code"] for loc in locs["items"]} == {"PARTS", "VAN1"}
    everything = await call(client, "GET", "/api/stock", w.as_("dispatcher"))
    assert everything["total"] == 4
    for role in ("agent", "survey"):
        await call(client, "GET", "/api/stock", w.as_(role), status=403)
    # engineers and dispatchers do not write stock
    for who in ("eng1", "dispatcher", "agent"):
        await call(client, "POST", "/api/stock/receipts", w.as_(who),
                   {"location_id": w.locations["parts"], "part_id": w.parts["cap"], "quantity": 1}, status=403)


@pytest.mark.parametrize(("url", "body", "field"), [
    ("/api/stock/receipts", {"location_id": 1, "part_id": 1, "quantity": 0}, "quantity"),
    ("/api/stock/receipts", {"location_id": "a", "part_id": 1, "quantity": 1}, "location_id"),
    ("/api/stock/receipts", {"location_id": 999999, "part_id": 1, "quantity": 1}, "location_id"),
    ("/api/stock/adjustments", {"location_id": 1, "part_id": 1, "delta": 0, "reason": "盘点"}, "delta"),
    ("/api/stock/adjustments", {"location_id": 1, "part_id": 1, "delta": 1}, "reason"),
    ("/api/stock/transfers", {"from_location_id": 1, "to_location_id": 1, "part_id": 1, "quantity": 1},
     "to_location_id"),
    ("/api/stock/locations", {"code": "W2", "name": "仓", "kind": "warehouse"}, "warehouse_type"),
    ("/api/stock/locations", {"code": "W2", "name": "仓", "kind": "warehouse", "warehouse_type": "冷库"},
     "warehouse_type"),
    ("/api/stock/locations", {"code": "V9", "name": "车", "kind": "van"}, "engineer_id"),
    ("/api/parts", {"code": "X 1", "name": "x", "unit_price_fen": 1}, "code"),
    ("/api/parts", {"code": "X1", "name": "x", "unit_price_fen": -1}, "unit_price_fen"),
    ("/api/price-items", {"category": "空调", "kind": "材料费", "name": "x", "amount_fen": 1}, "kind"),
    ("/api/price-items", {"category": "", "kind": "上门费", "name": "x", "amount_fen": 1}, "category"),
])
async def test_admin_writes_422_name_the_field(client, world, url, body, field):
    r = await call(client, "POST", url, world.as_("admin"), body, status=422)
    assert r["details"]["field"] == field


async def test_receipts_go_into_warehouses_and_vans_need_an_engineer(client, world):
    w, admin = world, world.as_("admin")
    r = await call(client, "POST", "/api/stock/receipts", admin,
                   {"location_id": w.locations["van1"], "part_id": w.parts["cap"], "quantity": 1}, status=422)
    assert r["details"]["field"] == "location_id"
    r = await call(client, "POST", "/api/stock/locations", admin,
                   {"code": "V9", "name": "车", "kind": "van", "engineer_id": w.users["agent"]}, status=422)
    assert r["details"]["field"] == "engineer_id"
    # one van per engineer
    await call(client, "POST", "/api/stock/locations", admin,
               {"code": "V9", "name": "车", "kind": "van", "engineer_id": w.users["eng1"]}, status=409)
    for wtype in ("成品库", "待修库", "样品库", "报损库", "商返库", "配件库"):
        loc = await call(client, "POST", "/api/stock/locations", admin,
                         {"code": f"W-{wtype.encode().hex()[:8]}", "name": wtype, "kind": "warehouse",
                          "warehouse_type": wtype}, status=201)
        assert loc["warehouse_type"] == wtype


async def test_catalogue_admin_only_with_duplicates_refused(client, world):
    w = world
    part = {"code": "FAN-01", "name": "风扇电机", "model": "YDK-30", "category": "空调", "unit_price_fen": 12800}
    for role in ("supervisor", "eng1", "agent"):
        await call(client, "POST", "/api/parts", w.as_(role), part, status=403)
    created = await call(client, "POST", "/api/parts", w.as_("admin"), part, status=201)
    assert created["unit_price_fen"] == 12800
    await call(client, "POST", "/api/parts", w.as_("admin"), part, status=409)
    for role in ("supervisor", "eng1", "agent"):
        await call(client, "PATCH", f"/api/parts/{created['id']}", w.as_(role), {"unit_price_fen": 1}, status=403)
        await call(client, "PATCH", f"/api/price-items/{w.prices['visit']}", w.as_(role), {"amount_fen": 1},
                   status=403)
    upd = await call(client, "PATCH", f"/api/parts/{created['id']}", w.as_("admin"), {"unit_price_fen": 13000})
    assert upd["unit_price_fen"] == 13000
    await call(client, "PATCH", "/api/parts/999999", w.as_("admin"), {"active": False}, status=404)
    listed = await call(client, "GET", "/api/parts?category=空调&q=fan", w.as_("eng1"))
    assert [p["code"] for p in listed["items"]] == ["FAN-01"]

    item = {"category": "冰箱", "kind": "上门费", "name": "上门检测", "amount_fen": 4000}
    await call(client, "POST", "/api/price-items", w.as_("supervisor"), item, status=403)
    created = await call(client, "POST", "/api/price-items", w.as_("admin"), item, status=201)
    await call(client, "POST", "/api/price-items", w.as_("admin"), item, status=409)
    await call(client, "PATCH", f"/api/price-items/{created['id']}", w.as_("admin"), {"active": False})
    listed = await call(client, "GET", "/api/price-items?category=冰箱", w.as_("agent"))
    assert [i["name"] for i in listed["items"]] == ["冰箱检修"]
    listed = await call(client, "GET", "/api/price-items?category=冰箱&include_inactive=true", w.as_("agent"))
    assert len(listed["items"]) == 2


async def test_price_change_keeps_the_charged_amounts(client, world):
    """The record keeps what was charged when the item was chosen."""
    w = world
    rec = await call(client, "POST", f"/api/orders/{w.orders['o1']}/onsite", w.as_("eng1"), {}, status=201)
    await call(client, "PATCH", f"/api/price-items/{w.prices['visit']}", w.as_("admin"), {"amount_fen": 9900})
    again = await call(client, "GET", f"/api/onsite/{rec['id']}", w.as_("eng1"))
    assert again["totals"]["visit_fee_fen"] == 5000


async def test_defaults_seed_price_list_warehouses_and_vans_once(sessionmaker):
    from callcenter.db.models import User
    from callcenter.db.stock import Part, PriceItem, StockLevel, StockLocation
    from callcenter.parts.defaults import PARTS, PRICE_LIST, VAN_KIT, seed_parts
    from tests.test_onsite_http import NOW

    async def add_engineer(name: str) -> int:
        async with sessionmaker.begin() as s:
            u = User(username=name, password_hash="x", role="engineer", active=True, created_at=NOW)
            s.add(u)
            await s.flush()
            return u.id

    first = await add_engineer("eng-a")
    await seed_parts(sessionmaker, now=NOW)
    second = await add_engineer("eng-b")
    await seed_parts(sessionmaker, now=NOW)  # again: nothing doubled, the new engineer gets a van
    async with sessionmaker() as s:
        categories = set((await s.scalars(select(PriceItem.category))).all())
        visit_fees = await s.scalar(select(func.count()).select_from(PriceItem).where(PriceItem.kind == "上门费"))
        wtypes = sorted((await s.scalars(select(StockLocation.warehouse_type)
                                         .where(StockLocation.kind == "warehouse"))).all())
        vans = (await s.scalars(select(StockLocation.engineer_id).where(StockLocation.kind == "van"))).all()
        parts = await s.scalar(select(func.count()).select_from(Part))
        van_units = await s.scalar(select(func.sum(StockLevel.quantity)).join(
            StockLocation, StockLocation.id == StockLevel.location_id).where(StockLocation.kind == "van"))
        below = (await s.scalars(select(Part.code).join(StockLevel, StockLevel.part_id == Part.id)
                                 .where(StockLevel.quantity < StockLevel.safety_stock,
                                        StockLevel.alert_raised_at.is_not(None)))).all()
    assert {"空调", "冰箱", "洗衣机", "热水器", "燃气灶"} <= categories == set(PRICE_LIST)
    assert visit_fees == len(PRICE_LIST)
    assert wtypes == sorted(["成品库", "待修库", "样品库", "报损库", "商返库", "配件库"])
    assert sorted(vans) == [first, second] and parts == len(PARTS)
    assert van_units == 2 * sum(q for _, q in VAN_KIT)
    assert below == ["CAP-35UF"]
