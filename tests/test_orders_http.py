"""Intake → work order → dispatch → accept → appointment → service → 已完成 over HTTP, with the
409s (illegal, unmet, stale), 422s naming the field, and masked answers.

A small app with the order routes and a fake login (``X-Test-User: <id>:<role>``) over real
users, customers and records in the database (SQLite and PostgreSQL). The on-site record is
inserted directly (its API is the parts slice's)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from dataclasses import dataclass

import pytest
from aiohttp import web
from sqlalchemy import func, select

from callcenter.appkeys import DISPATCH, MAILBOX, ORDERS, SESSIONMAKER, SETTINGS
from callcenter.dispatch.engine import engine_for
from callcenter.dispatch.flow_http import routes as flow_routes
from callcenter.crypto import new_key_spec
from callcenter.db.models import (
    Address, Appliance, AuditEntry, Call, Customer, CustomerPhone, IntakeRecord, OnsiteRecord,
    OrderEvent, ProductCategory, User, WorkOrder,
)
from callcenter.orders.http import routes
from callcenter.orders.services import OrderService
from callcenter.realtime.mailbox import LocalMailbox
from callcenter.settings import Settings
from callcenter.web.middleware import error_middleware
from tests.apphelpers import header_login
from tests.privacy_scan import LogScan, assert_no_personal

NOW = dt.datetime.now(dt.UTC)
TZ = Settings().tz
TODAY = NOW.astimezone(TZ).date()
SETTINGS_ = Settings().with_(data_keys=new_key_spec("k1"), index_keys=new_key_spec("i1"))
MOBILE = "13800138000"
SECRETS = ("欧阳娜娜", "体育西路", "张工程")
ENGINEER_MOBILE = "13912345678"


fake_auth = header_login  # X-Test-User: <id>:<role>


@dataclass
class World:
    users: dict[str, int]
    customer: int
    phone: int
    address: int
    appliance: int
    linkedid: str

    def as_(self, name: str) -> dict[str, str]:
        role = "engineer" if name.startswith("eng") else name
        return {"X-Test-User": f"{self.users[name]}:{role}"}


async def build_world(sessionmaker) -> World:  # type: ignore[no-untyped-def]
    """Staff of every role (two engineers), one customer with a phone, an address, an
    out-of-warranty air-conditioner, and the call they are on."""
    vault = SETTINGS_.phone_vault()
    users: dict[str, int] = {}
    async with sessionmaker.begin() as s:
        for i, (name, role) in enumerate([("eng1", "engineer"), ("eng2", "engineer"), ("agent", "agent"),
                                           ("dispatcher", "dispatcher"), ("supervisor", "supervisor"),
                                           ("admin", "admin"), ("survey", "survey")]):
            mobile = vault.seal(ENGINEER_MOBILE if name == "eng1" else f"1390000000{i}")
            u = User(username=name, display_name="张工程" if name == "eng1" else name, password_hash="x",
                     role=role, active=True, created_at=NOW, staff_no=f"GY2024{i:03d}",
                     mobile_enc=mobile.enc, mobile_masked=mobile.masked)
            s.add(u)
            await s.flush()
            users[name] = u.id
        s.add(ProductCategory(name="空调", warranty_months=36, certificate="制冷作业证"))
        sealed = vault.seal(MOBILE)
        c = Customer(name="欧阳娜娜", created_at=NOW, remarks="独居老人，上门前1小时电话 13800138000",
                     phones=[CustomerPhone(number_index=sealed.index, number_enc=sealed.enc,
                                           masked=sealed.masked, kind="mobile")],
                     addresses=[Address(province="广东省", city="广州市", district="天河区", detail="体育西路1号")],
                     appliances=[Appliance(category="空调", brand="美的", model="KFR-35GW/ABC123",
                                           serial="SN-001", purchase_date=dt.date(2022, 8, 15),
                                           warranty_months=12)])
        s.add(c)
        await s.flush()
        s.add(Call(linkedid="1700000000.42", caller_index=sealed.index, caller_enc=sealed.enc,
                   caller_masked=sealed.masked, queue="hotline", state="answered",
                   started_at=NOW - dt.timedelta(minutes=3)))
        return World(users, c.id, c.phones[0].id, c.addresses[0].id, c.appliances[0].id, "1700000000.42")


def make_app(sessionmaker) -> web.Application:  # type: ignore[no-untyped-def]
    app = web.Application(middlewares=[error_middleware, fake_auth])
    app[SETTINGS] = SETTINGS_
    app[SESSIONMAKER] = sessionmaker
    app[ORDERS] = OrderService(sessionmaker, SETTINGS_)
    app[MAILBOX] = LocalMailbox(10)
    app[DISPATCH] = engine_for(sessionmaker, SETTINGS_, app[MAILBOX])
    app.add_routes(routes)
    app.add_routes(flow_routes)
    return app


@pytest.fixture
async def world(sessionmaker) -> World:  # type: ignore[no-untyped-def]
    return await build_world(sessionmaker)


@pytest.fixture
async def client(aiohttp_client, sessionmaker):  # type: ignore[no-untyped-def]
    return await aiohttp_client(make_app(sessionmaker))


def assert_masked(body: object) -> None:
    """No mobile number (in any spelling), full name or street in an answer."""
    assert_no_personal(json.dumps(body, ensure_ascii=False), where="orders API",
                       secrets=SECRETS)


async def call(client, method: str, url: str, who: dict, body=None, status: int = 200):  # type: ignore[no-untyped-def]
    r = await client.request(method, url, json=body, headers=who)
    data = await r.json()
    assert r.status == status, (r.status, data)
    assert_masked(data)
    return data


def intake_body(w: World, **over) -> dict:  # type: ignore[no-untyped-def]
    body = {"customer_id": w.customer, "channel": "电话", "linkedid": w.linkedid, "phone_id": w.phone,
            "appliance_id": w.appliance, "request_type": "维修",
            "problem": "空调不制冷，外机有异响，已尝试重启无效", "urgency": "紧急", "mood": "焦虑",
            "remarks": "独居老人，上门前1小时电话", "read_back": True}
    body.update(over)
    return body


def hour(days: int, h: int) -> str:
    """An on-the-hour local time ``days`` from today, ISO with offset."""
    day = TODAY + dt.timedelta(days=days)
    return dt.datetime(day.year, day.month, day.day, h, tzinfo=TZ).isoformat()


async def test_prefill_from_the_call(client, world):  # type: ignore[no-untyped-def]
    w = world
    data = await call(client, "GET", f"/api/intakes/prefill?linkedid={w.linkedid}", w.as_("agent"))
    assert data["customer"]["id"] == w.customer and data["customer"]["name"] == "欧阳**"
    assert data["phones"] == [{"phone_id": w.phone, "masked": "138****8000", "kind": "mobile"}]
    assert data["caller_phone_id"] == w.phone
    assert data["addresses"] == [{"id": w.address, "masked": "广东省广州市天河区"}]
    [ac] = data["appliances"]
    assert ac["warranty"] == {"kind": "保外", "status": "out", "expires": "2023-08-15",
                              "days_left": (dt.date(2023, 8, 15) - TODAY).days, "months": 12}
    assert data["call"]["linkedid"] == w.linkedid and data["call"]["queue"] == "hotline"
    # The call is not linked to a customer yet: the agent names one.
    r = await client.get("/api/intakes/prefill?linkedid=nope", headers=w.as_("agent"))
    assert r.status == 404
    r = await client.get("/api/intakes/prefill", headers=w.as_("agent"))
    assert r.status == 422 and (await r.json())["details"]["field"] == "customer_id"
    r = await client.get(f"/api/intakes/prefill?customer_id={w.customer}", headers=w.as_("eng1"))
    assert r.status == 403


async def test_the_whole_flow_to_done(client, world, sessionmaker):  # type: ignore[no-untyped-def]
    with LogScan(secrets=SECRETS) as logs:
        await _whole_flow(client, world, sessionmaker)
    assert any("intake" in line for line in logs.lines)


async def _whole_flow(client, w, sessionmaker):  # type: ignore[no-untyped-def]
    created = await call(client, "POST", "/api/intakes", w.as_("agent"),
                         intake_body(w, create_order={"address_id": w.address}), status=201)
    intake, order = created["intake"], created["order"]
    assert re.fullmatch(r"CR\d{8}-001", intake["number"])
    assert re.fullmatch(r"WO\d{8}-001", order["number"])
    assert intake["contact_phone"] == "138****8000" and intake["warranty"] == "保外"
    assert intake["product_model"] == "KFR-35GW/ABC123" and intake["call_linkedid"] == w.linkedid
    assert intake["order_number"] == order["number"] and intake["read_back"] is True
    assert intake["remarks"] == "独居老人，上门前1小时电话"
    assert order["status"] == "待处理" and order["service_type"] == "上门维修"
    assert order["urgency"] == "紧急" and order["warranty"] == "保外" and order["version"] == 1
    assert order["serial"] == "SN-001" and order["call_linkedid"] == w.linkedid
    oid = order["id"]
    async with sessionmaker() as s:
        # The intake's number is sealed, the call now belongs to the customer.
        row = await s.get(IntakeRecord, intake["id"])
        assert row.contact_phone_masked == "138****8000" and MOBILE not in row.contact_phone_enc
        assert SETTINGS_.phone_vault().decrypt(row.contact_phone_enc) == MOBILE
        assert (await s.execute(select(Call.customer_id).where(Call.linkedid == w.linkedid))).scalar() == w.customer

    engineers = await call(client, "GET", "/api/engineers", w.as_("dispatcher"))
    eng1 = next(e for e in engineers["engineers"] if e["id"] == w.users["eng1"])
    assert eng1 == {"id": w.users["eng1"], "name": "张**", "staff_no": "GY2024000", "open_orders": 0}

    d = await call(client, "POST", f"/api/orders/{oid}/assign", w.as_("dispatcher"),
                   {"engineer_id": w.users["eng1"], "version": 1, "note": "就近派单"})
    assert d["order"]["status"] == "已派单" and d["order"]["milestones"]["dispatched_at"]
    assert d["engineer"] == {"id": w.users["eng1"], "name": "张**", "role": "engineer",
                             "staff_no": "GY2024000", "mobile": "139****5678"}
    assert "已取消" in d["allowed"]
    d = await call(client, "POST", f"/api/orders/{oid}/accept", w.as_("eng1"), {})
    assert d["order"]["milestones"]["accepted_at"] and d["allowed"] == ["待处理"]
    await call(client, "POST", f"/api/orders/{oid}/accept", w.as_("eng1"), {}, status=409)
    d = await call(client, "POST", f"/api/orders/{oid}/contacted", w.as_("eng1"), {"note": "已电话联系"})
    assert d["order"]["milestones"]["contacted_at"]

    ap = await call(client, "POST", f"/api/orders/{oid}/appointments", w.as_("eng1"), {
        "window_start": hour(1, 14), "window_end": hour(1, 16), "source": "客户意愿",
        "proposed_slots": [{"start": hour(1, 14), "end": hour(1, 16)}, {"start": hour(2, 9), "end": hour(2, 11)}],
        "service_content": "空调不制冷检修", "prepare": "保持空调通电，外机周围清出1米空间"}, status=201)
    a = ap["appointment"]
    assert re.fullmatch(r"AP\d{8}-001", a["number"]) and a["status"] == "proposed"
    assert a["fee_notes"] == "保修已于2023-08-15到期：更换配件前先报价，费用按官方价目表"
    assert a["engineer"]["staff_no"] == "GY2024000" and a["engineer"]["mobile"] == "139****5678"
    assert a["phone"] == "138****8000" and a["address"] == "广东省广州市天河区"
    assert a["customer"]["name"] == "欧阳**" and len(a["proposed_slots"]) == 2
    assert ap["order"]["status"] == "已派单"

    conf = await call(client, "POST", f"/api/appointments/{a['id']}/confirm", w.as_("agent"), {})
    assert conf["appointment"]["status"] == "confirmed" and conf["appointment"]["customer_confirmed"]
    o = conf["order"]
    assert o["status"] == "已预约" and o["milestones"]["planned_at"]
    assert dt.datetime.fromisoformat(o["appointment_start"]) == dt.datetime.fromisoformat(hour(1, 14))
    await call(client, "POST", f"/api/appointments/{a['id']}/confirm", w.as_("agent"), {}, status=409)

    d = await call(client, "POST", f"/api/orders/{oid}/transitions", w.as_("eng1"),
                   {"to": "服务中", "version": o["version"]})
    assert d["order"]["status"] == "服务中" and d["order"]["milestones"]["service_started_at"]
    version = d["order"]["version"]
    # Not done without a signed on-site record (slice C writes it; here, directly).
    err = await call(client, "POST", f"/api/orders/{oid}/transitions", w.as_("eng1"),
                     {"to": "已完成", "version": version}, status=409)
    assert err["error"] == "requirement_missing" and err["details"]["requires"] == "onsite_record"
    async with sessionmaker.begin() as s:
        s.add(OnsiteRecord(number="OS20261123-001", order_id=oid, engineer_id=w.users["eng1"],
                           root_cause="电容读数 0 µF", solution="更换启动电容", customer_confirmed=True,
                           signed_at=NOW, created_at=NOW, test_result="出风 16 °C / 室温 30 °C"))
    d = await call(client, "POST", f"/api/orders/{oid}/transitions", w.as_("eng1"),
                   {"to": "已完成", "version": version, "note": "已修复"})
    done = d["order"]
    assert done["status"] == "已完成" and done["completed_at"] and done["milestones"]["service_finished_at"]
    assert d["onsite"][0]["root_cause"] == "电容读数 0 µF"
    assert [(e["action"], e["to_status"]) for e in d["events"]] == [
        ("created", "待处理"), ("assigned", "已派单"), ("accepted", ""), ("contacted", ""),
        ("appointment", ""), ("transition", "已预约"), ("transition", "服务中"), ("transition", "已完成")]
    assert d["events"][1]["user"]["role"] == "dispatcher" and d["events"][1]["note"] == "就近派单"
    assert d["allowed"] == []  # the engineer has nothing left to do
    assert d["sla"] is not None and {c["clock"] for c in d["sla"]} >= {"plan", "dispatch", "contact"}

    # Illegal now: 409 naming from and to.
    err = await call(client, "POST", f"/api/orders/{oid}/transitions", w.as_("agent"),
                     {"to": "已取消", "reason": "客户不修了", "version": done["version"]}, status=409)
    assert err["error"] == "illegal_transition" and err["details"]["frm"] == "已完成"
    # The survey agent closes it with a note.
    d = await call(client, "POST", f"/api/orders/{oid}/transitions", w.as_("survey"),
                   {"to": "已回访", "note": "电话回访：满意", "version": done["version"]})
    assert d["order"]["status"] == "已回访" and d["order"]["milestones"]["surveyed_at"]

    async with sessionmaker() as s:
        actions = (await s.execute(select(AuditEntry.action, AuditEntry.entity)
                                   .order_by(AuditEntry.id))).all()
        assert ("create", "intake") in actions and ("assign", "work_order") in actions
        assert ("confirm", "appointment") in actions
        details = json.dumps([r.detail for r in (await s.execute(select(AuditEntry))).scalars()],
                             ensure_ascii=False)
        assert MOBILE not in details and "娜娜" not in details


async def test_order_from_an_intake_separately(client, world):  # type: ignore[no-untyped-def]
    w = world
    # A new appliance: the category's 36 months apply; bought a year ago → 保内.
    bought = (TODAY - dt.timedelta(days=365)).isoformat()
    created = await call(client, "POST", "/api/intakes", w.as_("agent"), intake_body(
        w, appliance_id=None, phone_id=None, contact_phone="+86 139-0000-1111", linkedid="",
        new_appliance={"category": "空调", "model": "KFR-26GW", "serial": "N2", "purchase_date": bought}),
        status=201)
    intake = created["intake"]
    assert created["order"] is None and intake["warranty"] == "保内"
    assert intake["contact_phone"] == "139****1111"
    d = await call(client, "POST", "/api/orders", w.as_("agent"),
                   {"intake_id": intake["id"], "service_type": "远程支持"}, status=201)
    assert d["order"]["status"] == "待处理" and d["order"]["address_id"] is None
    assert d["appliance"]["warranty"]["months"] == 36 and d["appliance"]["warranty"]["kind"] == "保内"
    assert d["intake"]["number"] == intake["number"]
    err = await call(client, "POST", "/api/orders", w.as_("agent"), {"intake_id": intake["id"]}, status=409)
    assert err["error"] == "order_exists"
    got = await call(client, "GET", f"/api/intakes/{intake['id']}", w.as_("dispatcher"))
    assert got["order_id"] == d["order"]["id"]

    # Remote support: started without dispatch, then converted to an on-site repair in place.
    oid = d["order"]["id"]
    d = await call(client, "POST", f"/api/orders/{oid}/transitions", w.as_("agent"),
                   {"to": "服务中", "version": d["order"]["version"]})
    assert d["order"]["milestones"]["planned_at"]
    d = await call(client, "POST", f"/api/orders/{oid}/transitions", w.as_("agent"),
                   {"to": "待处理", "note": "远程重置无效，转上门", "version": d["order"]["version"]})
    assert d["order"]["service_type"] == "上门维修" and d["order"]["status"] == "待处理"
    assert d["events"][-1]["action"] == "converted"
    # An on-site order needs its address before dispatch is of use — but the dispatch itself
    # goes through /assign, never the generic endpoint.
    err = await call(client, "POST", f"/api/orders/{oid}/transitions", w.as_("dispatcher"),
                     {"to": "已派单", "version": d["order"]["version"]}, status=409)
    assert err["error"] == "use_assign"


async def test_carry_in_flow(client, world, sessionmaker):  # type: ignore[no-untyped-def]
    w = world
    created = await call(client, "POST", "/api/intakes", w.as_("agent"),
                         intake_body(w, create_order={"service_type": "送修"}), status=201)
    o = created["order"]
    assert o["status"] == "待修"
    d = await call(client, "POST", f"/api/orders/{o['id']}/assign", w.as_("dispatcher"),
                   {"engineer_id": w.users["eng2"], "version": o["version"]})
    assert d["order"]["status"] == "待修" and d["order"]["engineer_id"] == w.users["eng2"]
    v = d["order"]["version"]
    for to, extra in [("修理中", {}), ("难修", {"note": "主板疑难故障"}), ("修理中", {})]:
        d = await call(client, "POST", f"/api/orders/{o['id']}/transitions", w.as_("eng2"),
                       {"to": to, "version": v, **extra})
        v = d["order"]["version"]
    err = await call(client, "POST", f"/api/orders/{o['id']}/transitions", w.as_("eng2"),
                     {"to": "待取", "version": v}, status=409)
    assert err["details"]["requires"] == "repair_record"
    async with sessionmaker.begin() as s:
        s.add(OnsiteRecord(number="OS20261123-009", order_id=o["id"], root_cause="主板电源短路",
                           solution="更换主板", created_at=NOW))
    d = await call(client, "POST", f"/api/orders/{o['id']}/transitions", w.as_("eng2"), {"to": "待取", "version": v})
    d = await call(client, "POST", f"/api/orders/{o['id']}/transitions", w.as_("agent"),
                   {"to": "已取", "version": d["order"]["version"]})
    assert d["order"]["status"] == "已取" and d["order"]["completed_at"]


async def test_stale_version_and_concurrent_changes(client, world, sessionmaker):  # type: ignore[no-untyped-def]
    w = world
    o = (await call(client, "POST", "/api/intakes", w.as_("agent"),
                    intake_body(w, create_order={}), status=201))["order"]
    # Two dispatchers assign at once from the same version: one wins, the other gets 409.
    results = await asyncio.gather(*[
        client.post(f"/api/orders/{o['id']}/assign", headers=w.as_(who),
                    json={"engineer_id": w.users[eng], "version": 1})
        for who, eng in [("dispatcher", "eng1"), ("supervisor", "eng2")]])
    assert sorted(r.status for r in results) == [200, 409]
    loser = await next(r for r in results if r.status == 409).json()
    assert loser["error"] == "stale_version"
    async with sessionmaker() as s:
        order = await s.get(WorkOrder, o["id"])
        assert order.version == 2
        assigned = (await s.execute(select(func.count()).select_from(OrderEvent)
                                    .where(OrderEvent.order_id == o["id"], OrderEvent.action == "assigned"))).scalar()
        assert assigned == 1
    # A client still holding version 1 is told to reload.
    err = await call(client, "POST", f"/api/orders/{o['id']}/transitions", w.as_("agent"),
                     {"to": "已取消", "reason": "重复工单", "version": 1}, status=409)
    assert err["error"] == "stale_version" and err["details"]["current"] == 2

    # Many writers racing on one order, each with the version it read: exactly one succeeds.
    results = await asyncio.gather(*[
        client.post(f"/api/orders/{o['id']}/transitions", headers=w.as_("agent"),
                    json={"to": "已取消", "reason": f"并发{i}", "version": 2}) for i in range(8)])
    assert sorted(r.status for r in results) == [200] + [409] * 7


@pytest.mark.parametrize(("over", "field"), [
    ({"problem": ""}, "problem"),
    ({"read_back": False}, "read_back"),
    ({"urgency": "很急"}, "urgency"),
    ({"request_type": "投诉"}, "request_type"),
    ({"customer_id": 0}, "customer_id"),
    ({"unknown": 1}, "unknown"),
    ({"phone_id": None}, "phone_id"),
    ({"appliance_id": None}, "appliance_id"),
    ({"phone_id": None, "contact_phone": "abc"}, "contact_phone"),
    ({"appliance_id": None, "new_appliance": {"category": "空调", "model": ""}}, "new_appliance.model"),
    ({"request_type": "咨询", "create_order": {}}, "create_order.service_type"),
    ({"create_order": {"address_id": 999999}}, "create_order.address_id"),
    ({"customer_id": 999999}, "customer_id"),
])
async def test_intake_422_names_the_field(client, world, sessionmaker, over, field):  # type: ignore[no-untyped-def]
    r = await client.post("/api/intakes", json=intake_body(world, **over), headers=world.as_("agent"))
    body = await r.json()
    assert r.status == 422, body
    assert body["details"]["field"] == field
    async with sessionmaker() as s:  # nothing half-written, no number used
        assert (await s.execute(select(func.count()).select_from(IntakeRecord))).scalar() == 0


async def test_transition_and_appointment_422s(client, world):  # type: ignore[no-untyped-def]
    w = world
    o = (await call(client, "POST", "/api/intakes", w.as_("agent"),
                    intake_body(w, create_order={}), status=201))["order"]
    url = f"/api/orders/{o['id']}"
    for body, field in [({"to": "已取消", "version": 1}, "reason"), ({"to": "已取消", "reason": "x"}, "version"),
                        ({"to": "", "version": 1}, "to")]:
        err = await call(client, "POST", url + "/transitions", w.as_("agent"), body, status=422)
        assert err["details"]["field"] == field
    err = await call(client, "POST", url + "/assign", w.as_("dispatcher"),
                     {"engineer_id": w.users["agent"], "version": 1}, status=422)
    assert err["details"]["field"] == "engineer_id"
    # No appointment before an engineer is assigned.
    good = {"window_start": hour(1, 9), "window_end": hour(1, 11), "service_content": "检修"}
    err = await call(client, "POST", url + "/appointments", w.as_("agent"), good, status=409)
    assert err["details"]["frm"] == "待处理"
    await call(client, "POST", url + "/assign", w.as_("dispatcher"), {"engineer_id": w.users["eng1"], "version": 1})
    for over, field in [({"window_start": hour(1, 9).replace(":00:00", ":30:00")}, "window_start"),
                        ({"window_end": hour(1, 8)}, "window_end"),
                        ({"window_end": hour(1, 18)}, "window_end"),
                        ({"window_start": hour(-2, 9), "window_end": hour(-2, 11)}, "window_end"),
                        ({"window_start": "2026-12-01T09:00:00"}, "window_start"),
                        ({"service_content": ""}, "service_content"),
                        ({"source": "随便"}, "source"),
                        ({"proposed_slots": [{"start": hour(1, 9), "end": hour(1, 9)}]}, "proposed_slots[0].end")]:
        err = await call(client, "POST", url + "/appointments", w.as_("eng1"), {**good, **over}, status=422)
        assert err["details"]["field"] == field, (over, err)
    # Booked at once when the customer agrees on the phone.
    d = await call(client, "POST", url + "/appointments", w.as_("eng1"), {**good, "customer_confirmed": True},
                   status=201)
    assert d["order"]["status"] == "已预约" and d["appointment"]["status"] == "confirmed"
    # A new window for the booked visit supersedes the first.
    d2 = await call(client, "POST", url + "/appointments", w.as_("eng1"),
                    {**good, "window_start": hour(2, 9), "window_end": hour(2, 11), "customer_confirmed": True},
                    status=201)
    assert d2["order"]["status"] == "已预约"
    detail = await call(client, "GET", url, w.as_("agent"))
    assert [a["status"] for a in detail["appointments"]] == ["superseded", "confirmed"]
    assert detail["events"][-1]["action"] == "rebooked"


async def test_wired_into_the_app(aiohttp_client, sqlite_only_url):  # type: ignore[no-untyped-def]
    """The real app: login, register a customer, pre-fill, intake with its order, read it back;
    the endpoints are in the OpenAPI document."""
    from callcenter.appkeys import AUTH
    from tests import apphelpers as h

    settings = h.settings_for(sqlite_only_url, 1, data_keys=SETTINGS_.data_keys,
                              index_keys=SETTINGS_.index_keys)
    client = await h.start(aiohttp_client, settings)
    await client.server.app[AUTH].add_user("desk1", role="agent", password=h.PASSWORD)
    r = await client.post("/api/session", json={"username": "desk1", "password": h.PASSWORD})
    assert r.status == 200
    r = await client.post("/api/customers", json={
        "name": "欧阳娜娜", "phones": [MOBILE],
        "address": {"province": "广东省", "city": "广州市", "district": "天河区", "detail": "体育西路1号"},
        "appliances": [{"category": "空调", "model": "KFR-35GW", "purchase_date": "2022-08-15"}]})
    assert r.status == 201, await r.text()
    cid = (await r.json())["id"]
    r = await client.get(f"/api/intakes/prefill?customer_id={cid}")
    pre = await r.json()
    assert r.status == 200, pre
    assert_masked(pre)
    body = {"customer_id": cid, "phone_id": pre["phones"][0]["phone_id"],
            "appliance_id": pre["appliances"][0]["id"], "request_type": "维修", "problem": "不制冷",
            "read_back": True, "create_order": {}}
    r = await client.post("/api/intakes", json=body)
    created = await r.json()
    assert r.status == 201, created
    assert_masked(created)
    r = await client.get(f"/api/orders/{created['order']['id']}")
    detail = await r.json()
    assert r.status == 200 and detail["order"]["status"] == "待处理"
    assert detail["address"]["id"] == pre["addresses"][0]["id"]
    assert_masked(detail)
    r = await client.get("/api/openapi.json")
    paths = (await r.json())["paths"]
    for path in ("/api/intakes", "/api/intakes/prefill", "/api/intakes/{id}", "/api/orders/{id}",
                 "/api/orders/{id}/transitions", "/api/orders/{id}/assign", "/api/orders/{id}/accept",
                 "/api/orders/{id}/contacted", "/api/orders/{id}/appointments",
                 "/api/appointments/{id}", "/api/appointments/{id}/confirm", "/api/engineers"):
        assert path in paths, path
    assert "post" in paths["/api/orders"] and "get" in paths["/api/orders"]


async def test_engineer_refuses_with_a_reason(client, world):  # type: ignore[no-untyped-def]
    w = world
    o = (await call(client, "POST", "/api/intakes", w.as_("agent"),
                    intake_body(w, create_order={}), status=201))["order"]
    d = await call(client, "POST", f"/api/orders/{o['id']}/assign", w.as_("dispatcher"),
                   {"engineer_id": w.users["eng1"], "version": 1})
    # A refusal goes through the dispatch flow (kept, counted, re-matched), not a bare transition.
    err = await call(client, "POST", f"/api/orders/{o['id']}/transitions", w.as_("eng1"),
                     {"to": "待处理", "reason": "时间冲突", "version": d["order"]["version"]}, status=409)
    assert err["error"] == "use_refuse"
    err = await call(client, "POST", f"/api/orders/{o['id']}/refuse", w.as_("eng1"),
                     {"reason": "其他", "version": d["order"]["version"]}, status=422)
    assert err["details"]["field"] == "note"
    err = await call(client, "POST", f"/api/orders/{o['id']}/refuse", w.as_("eng1"),
                     {"reason": "不想去", "version": d["order"]["version"]}, status=422)
    assert err["details"]["field"] == "reason"
    r = await call(client, "POST", f"/api/orders/{o['id']}/refuse", w.as_("eng1"),
                   {"reason": "时间冲突", "version": d["order"]["version"]})
    assert r["status"] == "待处理" and r["engineer_id"] is None
    d = await call(client, "GET", f"/api/orders/{o['id']}", w.as_("dispatcher"))
    assert d["order"]["status"] == "待处理" and d["order"]["engineer_id"] is None
    assert d["order"]["milestones"]["dispatched_at"] is None
    assert d["events"][-1]["note"] == "时间冲突"
    # No longer theirs.
    r = await client.get(f"/api/orders/{o['id']}", headers=w.as_("eng1"))
    assert r.status == 404
