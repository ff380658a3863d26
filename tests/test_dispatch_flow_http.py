"""Dispatch endpoints that act, over HTTP (SQLite and PostgreSQL): manual dispatch with its
reason and the cap (409), a shop as the target, the rules on demand, the engineer's refusal
(422 without a valid reason), and the record of decisions and refusals with masked names."""

from __future__ import annotations

import json

import pytest

from callcenter.db.workforce import ServiceShop
from callcenter.dispatch import rules as r
from callcenter.dispatch.candidates import CandidateLoader
from callcenter.dispatch.engine import DispatchEngine
from callcenter.dispatch.flow_http import routes
from callcenter.privacy import mask_name
from callcenter.realtime.mailbox import LocalMailbox
from tests.dispatchworld import NOW, TZ, bare_app, build
from tests.privacy_scan import assert_no_personal


@pytest.fixture
async def world(sessionmaker):  # type: ignore[no-untyped-def]
    return await build(sessionmaker)


@pytest.fixture
async def client(aiohttp_client, engine, sessionmaker):  # type: ignore[no-untyped-def]
    # The rules at the world's Monday 10:00 (everyone on duty); requests use the engine's clock.
    dispatch = DispatchEngine(sessionmaker, CandidateLoader(r.RuleConfig(tz=TZ)), LocalMailbox(50), clock=lambda: NOW)
    return await aiohttp_client(bare_app(engine, sessionmaker, routes, DISPATCH=dispatch))


def who(world, name: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    role = name if name in ("dispatcher", "admin", "supervisor", "agent") else "engineer"
    return {"X-Test-User": f"{world.users[name]}:{role}"}


async def call(client, method, url, headers, body=None, status=200):  # type: ignore[no-untyped-def]
    r = await client.request(method, url, json=body, headers=headers)
    text = await r.text()
    assert r.status == status, f"{method} {url} → {r.status}: {text}"
    return json.loads(text) if text else None


async def test_manual_dispatch_refusal_and_the_record(client, world, sessionmaker):  # type: ignore[no-untyped-def]
    w, main = world, world.orders["main"]
    url = f"/api/orders/{main}"
    d = who(w, "dispatcher")
    # Who may dispatch; what the body must say.
    for name in ("agent", "best"):
        await call(client, "POST", url + "/dispatch", who(w, name), {"engineer_id": w.users["best"], "reason": "x"},
                   status=403)
    err = await call(client, "POST", url + "/dispatch", d, {"engineer_id": w.users["best"]}, status=422)
    assert err["details"]["field"] == "reason"
    await call(client, "POST", url + "/dispatch", d, {"reason": "客户指定"}, status=422)
    await call(client, "POST", url + "/dispatch", d, {"engineer_id": w.users["best"], "shop_id": 1, "reason": "x"},
               status=422)
    err = await call(client, "POST", url + "/dispatch", d, {"engineer_id": w.users["full"], "reason": "客户指定"},
                     status=409)
    assert err["error"] == "at_capacity"
    out = await call(client, "POST", url + "/dispatch", d, {"engineer_id": w.users["corner"], "reason": "客户指定",
                                                           "version": 1})
    assert (out["status"], out["engineer_id"], out["queued"]) == ("已派单", w.users["corner"], False)
    assert out["accept_due_at"].startswith("2026-11-23T02:15")
    # The engineer refuses: a reason from the list, a note for 其他.
    err = await call(client, "POST", url + "/refuse", who(w, "corner"), {"reason": "不想去"}, status=422)
    assert err["details"]["field"] == "reason"
    err = await call(client, "POST", url + "/refuse", who(w, "corner"), {"reason": "其他"}, status=422)
    assert err["details"]["field"] == "note"
    await call(client, "POST", url + "/refuse", who(w, "best"), {"reason": "时间冲突"}, status=404)
    out = await call(client, "POST", url + "/refuse", who(w, "corner"), {"reason": "技能不符", "note": "不熟悉该型号"})
    assert out["status"] == "待处理" and out["engineer_id"] is None
    # The rules on demand: the refuser is excluded, the best one wins.
    out = await call(client, "POST", url + "/dispatch/auto", d)
    assert out["engineer_id"] == w.users["best"]
    await call(client, "POST", url + "/dispatch/auto", d, status=409)  # no longer undispatched
    # The record, newest first, names masked.
    rec = await call(client, "GET", url + "/dispatch/decisions", who(w, "supervisor"))
    assert [(x["mode"], x["engineer_id"]) for x in rec["decisions"]] == [
        ("auto", w.users["best"]), ("manual", w.users["corner"])]
    assert rec["decisions"][1]["reason"] == "客户指定" and rec["decisions"][1]["decided_by"]["name"] == "d*********"
    auto = rec["decisions"][0]
    assert auto["score"]["total"] > 0 and set(auto["score"]["components"]) == set(r.COMPONENTS)
    refused = {c["engineer_id"]: c for c in auto["candidates"]}[w.users["corner"]]
    assert "refused" in [e["code"] for e in refused["exclusions"]]
    assert [(x["engineer_id"], x["reason"], x["note"], x["timed_out"]) for x in rec["refusals"]] == [
        (w.users["corner"], "技能不符", "不熟悉该型号", False)]
    assert rec["people"][str(w.users["best"])]["name"] == mask_name("李best") != "李best"
    assert_no_personal(json.dumps(rec, ensure_ascii=False), where="dispatch decisions")
    await call(client, "GET", url + "/dispatch/decisions", who(w, "agent"), status=403)
    await call(client, "GET", url + "/dispatch/decisions", who(w, "best"), status=403)


async def test_dispatch_to_a_partner_shop(client, world, sessionmaker):  # type: ignore[no-untyped-def]
    w = world
    async with sessionmaker.begin() as s:
        shop = ServiceShop(name="东城合作网点", region="北京市", lat=39.91, lon=116.40, categories=["空调"],
                           capacity=5, created_at=NOW)
        closed = ServiceShop(name="已停网点", region="北京市", active=False, created_at=NOW)
        s.add_all([shop, closed])
    url = f"/api/orders/{w.orders['shanghai']}/dispatch"
    d = who(w, "dispatcher")
    await call(client, "POST", url, d, {"shop_id": closed.id, "reason": "就近"}, status=422)
    out = await call(client, "POST", url, d, {"shop_id": shop.id, "reason": "本地无工程师，转合作网点"})
    assert (out["status"], out["engineer_id"], out["shop_id"], out["accept_due_at"]) == ("已派单", None, shop.id, None)
    rec = await call(client, "GET", f"/api/orders/{w.orders['shanghai']}/dispatch/decisions", d)
    assert rec["decisions"][0]["shop_name"] == "东城合作网点"


async def test_the_engineers_phone_reports_its_position(client, world, sessionmaker):  # type: ignore[no-untyped-def]
    from callcenter.db.workforce import EngineerProfile

    w = world
    await call(client, "POST", "/api/dispatch/position", who(w, "dispatcher"), {"lat": 39.9, "lon": 116.4}, status=403)
    await call(client, "POST", "/api/dispatch/position", who(w, "best"), {"lat": 91, "lon": 116.4}, status=422)
    await call(client, "POST", "/api/dispatch/position", who(w, "best"), {"lat": 39.95, "lon": 116.41}, status=204)
    async with sessionmaker() as s:
        p = await s.get(EngineerProfile, w.users["best"])
    assert (p.last_lat, p.last_lon) == (39.95, 116.41) and p.last_seen_at is not None
