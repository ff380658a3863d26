"""Dispatch endpoints over HTTP (SQLite and PostgreSQL): who may read and write profiles,
skills, leave and shops; geocoded places; 409 on stale versions; 422 naming the field; masked
answers and sealed numbers; audit entries; and the preview of an order."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from callcenter.db.models import WorkOrder
from callcenter.db.oversight import AuditEntry
from callcenter.db.workforce import ServiceShop
from callcenter.dispatch.http import routes
from callcenter.privacy import mask_name
from tests.apphelpers import fixed_vault
from tests.dispatchworld import TZ, bare_app, build


@pytest.fixture
async def world(sessionmaker):  # type: ignore[no-untyped-def]
    return await build(sessionmaker)


@pytest.fixture
async def client(aiohttp_client, engine, sessionmaker):  # type: ignore[no-untyped-def]
    return await aiohttp_client(bare_app(engine, sessionmaker, routes))


def who(world, name: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    role = name if name in ("dispatcher", "admin", "supervisor", "agent") else "engineer"
    return {"X-Test-User": f"{world.users[name]}:{role}"}


async def call(client, method, url, headers, body=None, status=200):  # type: ignore[no-untyped-def]
    r = await client.request(method, url, json=body, headers=headers)
    text = await r.text()
    assert r.status == status, f"{method} {url} → {r.status}: {text}"
    return json.loads(text) if text else None


async def test_roles(client, world):
    eng = world.users["best"]
    for name, read, write, preview in [("dispatcher", 200, 403, 200), ("admin", 200, 200, 200),
                                       ("supervisor", 403, 403, 200), ("agent", 403, 403, 403),
                                       ("best", 403, 403, 403)]:
        h = who(world, name)
        await call(client, "GET", "/api/dispatch/engineers", h, status=read)
        await call(client, "GET", "/api/dispatch/shops", h, status=read)
        await call(client, "PATCH", f"/api/dispatch/engineers/{eng}", h, {"load_cap": 3}, status=write)
        await call(client, "GET", f"/api/orders/{world.orders['main']}/dispatch/preview", h, status=preview)
    r = await client.get("/api/dispatch/engineers")
    assert r.status == 401


async def test_profiles_list_get_update(client, world, sessionmaker):
    admin, eng = who(world, "admin"), world.users["best"]
    page = await call(client, "GET", "/api/dispatch/engineers?region=北京市", admin)
    names = {i["engineer_id"]: i for i in page["items"]}
    assert page["total"] == 7 + 1  # Beijing engineers incl. the inactive user; not 河北省's
    assert names[eng]["name"] == mask_name("李best") != "李best" and names[eng]["skills"][0]["valid_today"] is True
    assert names[world.users["full"]]["open_orders"] == 3
    got = await call(client, "GET", f"/api/dispatch/engineers/{eng}", admin)
    assert got["leave"] == [] and got["version"] == 1
    # base_place geocoded to 朝阳区's centre.
    upd = await call(client, "PATCH", f"/api/dispatch/engineers/{eng}", admin,
                     {"version": 1, "base_place": {"province": "北京", "city": "北京市", "district": "朝阳"},
                      "load_cap": 4, "working_hours": {"1": [["08:00", "12:00"], ["13:00", "17:00"]]}})
    assert (upd["base_lat"], upd["base_lon"], upd["load_cap"], upd["version"]) == (39.9219, 116.4436, 4, 2)
    await call(client, "PATCH", f"/api/dispatch/engineers/{eng}", admin, {"version": 1, "active": False}, status=409)
    bad = await call(client, "PATCH", f"/api/dispatch/engineers/{eng}", admin,
                     {"base_place": {"city": "北京市", "district": "不存在区"}}, status=422)
    assert bad["details"]["field"] == "base_place"
    for body, field in [({"base_lat": 39.9}, "body"), ({"load_cap": 0}, "load_cap"),
                        ({"working_hours": {"1": [["18:00", "09:00"]]}}, "working_hours"), ({"nope": 1}, "nope")]:
        bad = await call(client, "PATCH", f"/api/dispatch/engineers/{eng}", admin, body, status=422)
        assert bad["details"]["field"] == field, body
    await call(client, "GET", f"/api/dispatch/engineers/{world.users['admin']}", admin, status=404)
    # A new profile for an engineer who had none is created with the defaults.
    async with sessionmaker() as s:
        entries = (await s.scalars(select(AuditEntry).where(AuditEntry.entity == "engineer_profile"))).all()
    assert [e.detail["fields"] for e in entries] == [["base_lat", "base_lon", "load_cap", "working_hours"]]


async def test_skills_and_leave(client, world, sessionmaker):
    admin, eng = who(world, "admin"), world.users["fridge"]
    out = await call(client, "PUT", f"/api/dispatch/engineers/{eng}/skills", admin, {"skills": [
        {"category": "空调", "certificate": "制冷作业证", "certificate_no": "T-77", "certificate_expires": "2027-01-01"},
        {"category": "冰箱"}]})
    assert {s["category"]: s["valid_today"] for s in out["skills"]} == {"空调": True, "冰箱": True}
    bad = await call(client, "PUT", f"/api/dispatch/engineers/{eng}/skills", admin,
                     {"skills": [{"category": "冰箱"}, {"category": "吸尘器"}]}, status=422)
    assert bad["details"]["field"] == "skills[1].category"
    await call(client, "PUT", f"/api/dispatch/engineers/{eng}/skills", admin,
               {"skills": [{"category": "冰箱"}, {"category": "冰箱"}]}, status=422)
    leave = await call(client, "POST", f"/api/dispatch/engineers/{eng}/leave", admin,
                       {"start_date": "2099-01-02", "end_date": "2099-01-03", "kind": "休息"}, status=201)
    bad = await call(client, "POST", f"/api/dispatch/engineers/{eng}/leave", admin,
                     {"start_date": "2099-01-05", "end_date": "2099-01-03"}, status=422)
    listed = await call(client, "GET", f"/api/dispatch/engineers/{eng}/leave", who(world, "dispatcher"))
    assert [x["id"] for x in listed["items"]] == [leave["id"]]
    await call(client, "DELETE", f"/api/dispatch/leave/{leave['id']}", who(world, "dispatcher"), status=403)
    await call(client, "DELETE", f"/api/dispatch/leave/{leave['id']}", admin, status=204)
    await call(client, "DELETE", f"/api/dispatch/leave/{leave['id']}", admin, status=404)
    async with sessionmaker() as s:
        actions = [(e.entity, e.action) for e in await s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == [("engineer_skills", "update"), ("engineer_leave", "create"), ("engineer_leave", "delete")]


async def test_shops_sealed_phone(client, world, sessionmaker):
    admin = who(world, "admin")
    shop = await call(client, "POST", "/api/dispatch/shops", admin, {
        "name": "朝阳合作网点", "region": "北京市", "place": {"city": "北京", "district": "朝阳区"},
        "categories": ["空调"], "capacity": 5, "contact_name": "赵经理", "contact_phone": "138 0013 8000"}, status=201)
    assert shop["contact_phone_masked"] == "138****8000" and shop["contact_name"] == mask_name("赵经理")
    assert (shop["lat"], shop["lon"]) == (39.9219, 116.4436)
    assert "13800138000" not in json.dumps(shop)
    async with sessionmaker() as s:
        row = await s.get(ServiceShop, shop["id"])
        assert fixed_vault().decrypt(row.contact_phone_enc) == "13800138000"
    await call(client, "POST", "/api/dispatch/shops", admin, {"name": "朝阳合作网点"}, status=409)
    bad = await call(client, "POST", "/api/dispatch/shops", admin, {"name": "x", "contact_phone": "abc"}, status=422)
    assert bad["details"]["field"] == "contact_phone"
    upd = await call(client, "PATCH", f"/api/dispatch/shops/{shop['id']}", admin, {"version": 1, "capacity": 0})
    assert upd["capacity"] == 0 and upd["version"] == 2
    await call(client, "PATCH", f"/api/dispatch/shops/{shop['id']}", admin, {"version": 1, "capacity": 3}, status=409)
    listed = await call(client, "GET", "/api/dispatch/shops", who(world, "dispatcher"))
    assert [x["name"] for x in listed["items"]] == ["朝阳合作网点"]
    await call(client, "GET", "/api/dispatch/shops/999999", admin, status=404)


async def test_preview(client, world, sessionmaker):
    # The endpoint evaluates at the wall clock: a booked window next week, 10:00–12:00 in the
    # centre, keeps everyone's working hours in play whenever the test runs.
    start = (dt.datetime.now(TZ) + dt.timedelta(days=7)).replace(hour=10, minute=0, second=0, microsecond=0)
    start = start.astimezone(dt.UTC)  # stored as UTC, like every time
    async with sessionmaker.begin() as s:
        order = await s.get(WorkOrder, world.orders["main"])
        order.appointment_start, order.appointment_end = start, start + dt.timedelta(hours=2)
    h = who(world, "dispatcher")
    p = await call(client, "GET", f"/api/orders/{world.orders['main']}/dispatch/preview", h)
    best = world.users["best"]
    assert p["evaluation"]["winner"]["engineer_id"] == best
    assert p["category"] == "空调" and p["required_certificate"] == "制冷作业证" and p["located"]
    assert p["people"][str(best)]["name"] == mask_name("李best")
    first = p["evaluation"]["candidates"][0]
    assert first["rank"] == 1 and set(first["score"]["components"]) == {"distance", "load", "ftf", "satisfaction", "idle"}
    excluded = {c["engineer_id"]: c["exclusions"] for c in p["evaluation"]["candidates"] if not c["eligible"]}
    assert excluded[world.users["full"]] == [{"code": "at_capacity", "reason": "未完成工单3单，已达上限3单"}]
    assert p["widened"] is None
    far = await call(client, "GET", f"/api/orders/{world.orders['shanghai']}/dispatch/preview", h)
    assert far["evaluation"]["winner"] is None
    assert [t["name"] for t in far["widened"]] == ["10km", "20km", "other_regions", "shops"]
    await call(client, "GET", "/api/orders/999999/dispatch/preview", h, status=404)
