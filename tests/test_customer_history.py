"""Caller context against a real database: identification, history, flags, masking, plans."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re

import pytest
from sqlalchemy import event, func, insert, select

from callcenter.auth.identity import CurrentUser
from callcenter.customers.history import build_caller_context, build_customer_context, repeat_repairs
from callcenter.customers.services import CustomerService
from callcenter.db.models import Address, Appliance, Call, Customer, CustomerPhone, IntakeRecord, WorkOrder
from callcenter.errors import Conflict, ValidationFailed
from callcenter.settings import Settings
from tests.apphelpers import fixed_vault, keyed_settings

UTC = dt.UTC
NOW = dt.datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
AGENT = CurrentUser(id=7, username="agent7", role="agent")
_serial = itertools.count(1)
TABLES = {"customers", "customer_phones", "addresses", "appliances", "work_orders", "calls",
          "intake_records"}
VAULT = fixed_vault()


def _sealed_caller(number: str) -> dict[str, str]:
    sealed = VAULT.seal(number)
    return {"caller_index": sealed.index, "caller_enc": sealed.enc, "caller_masked": sealed.masked}


@pytest.fixture
def settings() -> Settings:
    return keyed_settings()


@pytest.fixture
def service(sessionmaker, settings) -> CustomerService:
    return CustomerService(sessionmaker, settings)


ZHANG = {
    "name": "张三",
    "level": "VIP",
    "remarks": "老人独居，备用电话 13912345678，上门前1小时联系",
    "phones": ["+86 138 0013 8000", "(010) 8888 6666"],
    "address": {"province": "北京市", "city": "北京市", "district": "朝阳区", "detail": "建国路88号3-501"},
    "appliances": [
        {"category": "冰箱", "brand": "海尔", "model": "BCD-470", "serial": "FR2024A1",
         "purchase_date": "2024-01-10", "warranty_months": 12},
        {"category": "空调", "brand": "格力", "model": "KFR-35GW", "serial": "AC2020B7",
         "purchase_date": "2020-05-01", "warranty_months": 36},
    ],
}


async def _zhang(service: CustomerService) -> tuple[int, list[int]]:
    customer = await service.create(ZHANG, AGENT, now=NOW)
    return customer.id, [a.id for a in customer.appliances]


async def _order(sessionmaker, customer_id: int, *, appliance_id: int | None = None,
                 status: str = "待处理", service_type: str = "上门维修",
                 created_at: dt.datetime = NOW, problem: str = "不制冷") -> str:
    number = f"WO{created_at:%Y%m%d}-{next(_serial):04d}"
    async with sessionmaker() as s, s.begin():
        await s.execute(insert(WorkOrder).values(
            number=number, customer_id=customer_id, appliance_id=appliance_id, status=status,
            service_type=service_type, urgency="普通", problem=problem, created_at=created_at))
    return number


async def _call(sessionmaker, *, started_at: dt.datetime, customer_id: int | None = None,
                caller: str = "13800138000", linkedid: str | None = None) -> str:
    linkedid = linkedid or f"1717{next(_serial):06d}.{next(_serial)}"
    async with sessionmaker() as s, s.begin():
        await s.execute(insert(Call).values(
            linkedid=linkedid, **_sealed_caller(caller), customer_id=customer_id,
            queue="aftersales", agent_member="Agent 8001", state="ended", outcome="answered",
            rang=[], started_at=started_at, talk_s=95))
    return linkedid


async def _context(sessionmaker, settings, raw: str, **kw) -> object:
    async with sessionmaker() as s:
        return await build_caller_context(s, raw, now=kw.pop("now", NOW), settings=settings,
                                          vault=VAULT, **kw)


@pytest.mark.parametrize("spelling", [
    "13800138000", "+8613800138000", "0086-138-0013-8000", "013800138000", "８６１３８００１３８０００",
    "(010) 8888 6666", "01088886666", "+86 10 8888 6666", "010-88886666-8001",
])
async def test_known_customer_by_any_spelling_of_either_number(sessionmaker, settings, service,
                                                               spelling) -> None:
    cid, _ = await _zhang(service)
    ctx = await _context(sessionmaker, settings, spelling)
    assert ctx.customer_id == cid
    assert await service.find_by_number(spelling) == cid
    out = ctx.to_json()
    assert out["customer"]["name"] == "张*"
    assert out["customer"]["phones"] == ["138****8000", "010****6666"]
    assert out["customer"]["address"] == "北京市朝阳区"
    assert out["customer"]["level"] == "VIP"
    assert out["history"]["anonymous"] is False and out["history"]["new_caller"] is False
    assert out["history"]["caller_kind"] in ("mobile", "landline")


async def test_warranty_in_and_out(sessionmaker, settings, service) -> None:
    cid, (fridge, ac) = await _zhang(service)
    appliances = (await _context(sessionmaker, settings, "13800138000")).to_json()["history"]["appliances"]
    assert [a["id"] for a in appliances] == [fridge, ac]
    assert appliances[0]["warranty"] == {"status": "in", "expires": "2025-01-10", "days_left": 223}
    assert appliances[0]["purchase_date"] == "2024-01-10"
    assert appliances[1]["warranty"]["status"] == "out"
    assert appliances[1]["warranty"]["expires"] == "2023-05-01"
    assert appliances[1]["model"] == "KFR-35GW" and appliances[1]["serial"] == "AC2020B7"


async def test_open_orders_and_recent_orders(sessionmaker, settings, service) -> None:
    cid, (fridge, _) = await _zhang(service)
    made = []
    statuses = ["已完成", "已回访", "待处理", "已取消", "已预约", "待件", "已完成"]
    for i, status in enumerate(statuses):
        made.append(await _order(sessionmaker, cid, appliance_id=fridge, status=status,
                                 service_type="安装", created_at=NOW - dt.timedelta(days=200 - i)))
    h = (await _context(sessionmaker, settings, "13800138000")).to_json()["history"]
    assert [o["number"] for o in h["open_orders"]] == [made[5], made[4], made[2]]
    assert [o["number"] for o in h["recent_orders"]] == made[::-1][:5]
    first = h["recent_orders"][0]
    assert first["status"] == "已完成" and first["appliance_id"] == fridge
    assert first["created_at"] == (NOW - dt.timedelta(days=194)).isoformat()
    assert first["created_at"].endswith("+00:00")
    assert set(first) == {"number", "status", "urgency", "service_type", "problem", "created_at",
                          "appliance_id"}


@pytest.mark.parametrize(("hours_ago", "repeat"), [(1, True), (71.9, True), (72, True), (72.1, False),
                                                   (24 * 29, False)])
async def test_repeat_caller_window(sessionmaker, settings, service, hours_ago, repeat) -> None:
    cid, _ = await _zhang(service)
    linkedid = await _call(sessionmaker, customer_id=cid, started_at=NOW - dt.timedelta(hours=hours_ago))
    h = (await _context(sessionmaker, settings, "13800138000")).to_json()["history"]
    assert h["repeat_caller"] is repeat
    assert h["calls_30d"] == 1
    assert h["recent_calls"][0]["id"] == linkedid
    assert h["recent_calls"][0]["talk_s"] == 95 and h["recent_calls"][0]["outcome"] == "answered"


async def test_recent_calls_are_capped_newest_first_and_30_days(sessionmaker, settings, service) -> None:
    cid, _ = await _zhang(service)
    for d in range(1, 13):
        await _call(sessionmaker, customer_id=cid, started_at=NOW - dt.timedelta(days=d))
    await _call(sessionmaker, customer_id=cid, started_at=NOW - dt.timedelta(days=31))
    h = (await _context(sessionmaker, settings, "13800138000")).to_json()["history"]
    assert h["calls_30d"] == 12
    starts = [c["started_at"] for c in h["recent_calls"]]
    assert len(starts) == 10 and starts == sorted(starts, reverse=True)
    assert starts[0] == (NOW - dt.timedelta(days=1)).isoformat()


async def test_current_call_is_not_a_previous_call(sessionmaker, settings, service) -> None:
    cid, _ = await _zhang(service)
    current = await _call(sessionmaker, customer_id=cid, started_at=NOW - dt.timedelta(seconds=3))
    h = (await _context(sessionmaker, settings, "13800138000", exclude_linkedid=current)).to_json()["history"]
    assert h["repeat_caller"] is False and h["calls_30d"] == 0 and h["recent_calls"] == []
    h = (await _context(sessionmaker, settings, "13800138000")).to_json()["history"]
    assert h["repeat_caller"] is True and h["calls_30d"] == 1


D = dt.timedelta


@pytest.mark.parametrize(("orders", "flagged"), [
    # (days before now, service type, status) of orders on the fridge
    ([(10, "上门维修", "已完成"), (85, "上门维修", "已完成")], True),  # 75 days apart, latest recent
    ([(10, "上门维修", "已完成"), (100, "上门维修", "已完成")], True),  # exactly 90 days apart
    ([(10, "上门维修", "已完成"), (101, "上门维修", "已完成")], False),  # 91 days apart
    ([(5, "远程支持", "已完成"), (20, "上门维修", "待处理")], True),
    ([(95, "上门维修", "已完成"), (120, "上门维修", "已完成")], False),  # latest outside 90 days
    ([(10, "上门维修", "已完成"), (100.5, "上门维修", "已完成")], False),  # 90.5 days apart
    ([(10, "上门维修", "已完成"), (30, "安装", "已完成")], False),  # install is no repair
    ([(10, "上门维修", "已完成"), (30, "上门维修", "已取消")], False),  # cancelled is no repair
    ([(10, "上门维修", "已完成")], False),
])
async def test_repeat_repair(sessionmaker, settings, service, orders, flagged) -> None:
    cid, (fridge, ac) = await _zhang(service)
    for days, kind, status in orders:
        await _order(sessionmaker, cid, appliance_id=fridge, service_type=kind, status=status,
                     created_at=NOW - D(days=days))
    # One repair on the other appliance never pairs with the fridge's.
    await _order(sessionmaker, cid, appliance_id=ac, created_at=NOW - D(days=12))
    h = (await _context(sessionmaker, settings, "13800138000")).to_json()["history"]
    assert h["repeat_repair"] is flagged
    assert h["repeat_repair_appliance_ids"] == ([fridge] if flagged else [])


@pytest.mark.parametrize(("times", "flagged"), [
    ([0, 90], True),  # exactly 90 days apart still counts
    ([0, 91], False),
    ([-5, 80], True),  # an order "after now" (clock skew) still pairs
    ([100, 150, 170], False),
    ([200, 110, 15], False),  # pairs 90 and 95 days apart; the 90-day one is old
    ([200, 120, 60], True),  # 60 days apart, latest 60 days ago
])
def test_repeat_repairs_rule(times: list[int], flagged: bool) -> None:
    orders = [(1, NOW - D(days=t)) for t in times]
    assert repeat_repairs(orders, now=NOW, window=D(days=90)) == ((1,) if flagged else ())


async def test_unknown_number_is_a_new_caller(sessionmaker, settings, service) -> None:
    await _zhang(service)
    await _call(sessionmaker, caller="13911112222", started_at=NOW - D(hours=2))
    await _call(sessionmaker, caller="13911112222", started_at=NOW - D(days=40))
    ctx = await _context(sessionmaker, settings, "+86 139 1111 2222")
    assert ctx.customer_id is None
    out = ctx.to_json()
    assert out["customer"] is None
    h = out["history"]
    assert h["new_caller"] is True and h["anonymous"] is False
    assert h["caller"] == "139****2222" and h["caller_kind"] == "mobile"
    assert h["calls_30d"] == 1 and h["repeat_caller"] is True
    assert h["appliances"] == [] and h["open_orders"] == [] and h["repeat_repair"] is False
    assert ctx.to_json(masked=False)["history"]["caller"] == "13911112222"


@pytest.mark.parametrize("raw", ["", "<unknown>", "anonymous", "   "])
async def test_anonymous_caller(sessionmaker, settings, raw) -> None:
    ctx = await _context(sessionmaker, settings, raw)
    out = ctx.to_json()
    assert ctx.customer_id is None and out["customer"] is None
    assert out["history"]["anonymous"] is True and out["history"]["new_caller"] is False
    assert out["history"]["caller"] is None and out["history"]["caller_kind"] is None
    assert out["history"]["recent_calls"] == [] and out["history"]["calls_30d"] == 0


async def test_masked_json_has_no_full_number(sessionmaker, settings, service) -> None:
    cid, (fridge, _) = await _zhang(service)
    await _order(sessionmaker, cid, appliance_id=fridge, problem="客户说打 13800138000 或 010-8888-6666")
    await _call(sessionmaker, customer_id=cid, started_at=NOW - D(hours=1))
    ctx = await _context(sessionmaker, settings, "13800138000")
    masked = json.dumps(ctx.to_json(), ensure_ascii=False)
    assert not re.search(r"\d{11}", masked), masked
    for secret in ("13800138000", "01088886666", "13912345678", "8888-6666", "张三", "建国路"):
        assert secret not in masked
    full = json.dumps(ctx.to_json(masked=False, vault=VAULT), ensure_ascii=False)
    for secret in ("13800138000", "01088886666", "13912345678", "张三", "建国路88号"):
        assert secret in full


async def test_customer_context_by_id(sessionmaker, settings, service) -> None:
    cid, _ = await _zhang(service)
    async with sessionmaker() as s:
        ctx = await build_customer_context(s, cid, now=NOW, settings=settings)
        missing = await build_customer_context(s, cid + 1000, now=NOW, settings=settings)
    out = ctx.to_json()
    assert ctx.customer_id == cid and out["history"]["caller"] is None
    assert out["customer"]["name"] == "张*" and len(out["history"]["appliances"]) == 2
    assert missing.customer_id is None and missing.to_json()["customer"] is None


async def test_fixed_query_count_and_indexed_plans(engine, sessionmaker, settings, service) -> None:
    """No N+1: the same few queries whatever the data; on SQLite every one is an index search."""
    cid, (fridge, ac) = await _zhang(service)
    for d in range(12):
        await _order(sessionmaker, cid, appliance_id=(fridge, ac)[d % 2], created_at=NOW - D(days=d))
        await _call(sessionmaker, customer_id=cid, started_at=NOW - D(days=d, hours=1))
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        await _context(sessionmaker, settings, "13800138000", exclude_linkedid="x")
        known = len(seen)
        seen.clear()
        await _context(sessionmaker, settings, "13911112222")
        unknown = len(seen)
        seen.clear()
        await _context(sessionmaker, settings, "13800138000", exclude_linkedid="x")
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    assert known == 5 and unknown == 2
    if engine.dialect.name != "sqlite":
        return  # tiny PostgreSQL tables are scanned by choice; bench/history_lookup.py --explain
    async with engine.connect() as conn:
        for statement, parameters in seen:
            plan = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)).all()
            details = [row[-1] for row in plan]
            # "SCAN anon_1" / "SCAN (subquery-2)" walk rows a subquery already found by index.
            scans = [d for d in details if d.startswith("SCAN") and d.split()[1] in TABLES]
            assert not scans, (statement, details)


async def test_create_validates_every_field(service) -> None:
    bad = [
        ({**ZHANG, "name": " "}, "name"),
        ({**ZHANG, "name": "张" * 65}, "name"),
        ({**ZHANG, "phones": []}, "phones"),
        ({**ZHANG, "phones": ["13800138000"] * 6}, "phones"),
        ({**ZHANG, "phones": "13800138000"}, "phones"),
        ({**ZHANG, "phones": ["13800138000", "abc"]}, "phones[1]"),
        ({**ZHANG, "phones": ["13800138000", "+86 138-0013-8000"]}, "phones[1]"),
        ({**ZHANG, "phones": ["4008001234"]}, "phones[0]"),
        ({**ZHANG, "address": {"district": "x" * 33}}, "address.district"),
        ({**ZHANG, "appliances": [{"category": "冰箱"}]}, "appliances[0].model"),
        ({**ZHANG, "appliances": [{"model": "A", "purchase_date": "2024-13-01"}]}, "appliances[0].purchase_date"),
        ({**ZHANG, "appliances": [{"model": "A", "purchase_date": "2030-01-01"}]}, "appliances[0].purchase_date"),
        ({**ZHANG, "appliances": [{"model": "A", "warranty_months": 121}]}, "appliances[0].warranty_months"),
        ({**ZHANG, "appliances": [{"model": "A", "warranty_months": -1}]}, "appliances[0].warranty_months"),
        ({**ZHANG, "appliances": [{"model": "A"}, {"model": "B", "warranty_months": "x"}]},
         "appliances[1].warranty_months"),
    ]
    for data, field in bad:
        with pytest.raises(ValidationFailed) as e:
            await service.create(data, AGENT, now=NOW)
        assert e.value.details["field"] == field, data
        assert e.value.status == 422
        assert "13800138000" not in str(e.value.to_json())
    async with service.sessionmaker() as s:  # nothing half-written
        for table in (Customer, CustomerPhone, Address, Appliance):
            assert (await s.execute(select(func.count()).select_from(table))).scalar() == 0


async def test_create_rejects_a_number_of_another_customer(service) -> None:
    cid, _ = await _zhang(service)
    with pytest.raises(Conflict) as e:
        await service.create({"name": "李四", "phones": ["13700000000", "8610 8888 6666"]}, AGENT, now=NOW)
    assert e.value.status == 409
    assert e.value.details == {"field": "phones[1]", "phone": "010****6666", "customer_id": cid}
    assert "6666" in e.value.message and "88886666" not in e.value.message
    async with service.sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(Customer))).scalar() == 1
        assert (await s.execute(select(func.count()).select_from(CustomerPhone))).scalar() == 2


async def test_local_numbers_take_the_configured_area_code(sessionmaker) -> None:
    service = CustomerService(sessionmaker, keyed_settings(local_area_code="0755"))
    customer = await service.create({"name": "陈一", "phones": ["8888 6666"]}, AGENT, now=NOW)
    assert [VAULT.decrypt(p.number_enc) for p in customer.phones] == ["075588886666"]
    assert [p.masked for p in customer.phones] == ["0755****6666"]
    for spelling in ("88886666", "0755-8888-6666", "+86 755 8888 6666"):
        assert await service.find_by_number(spelling) == customer.id
    ctx = await service.caller_context("88886666", now=NOW)
    assert ctx.to_json()["history"]["caller"] == "0755****6666"


async def test_calls_show_their_intake_and_order_numbers_and_recent_intakes(sessionmaker, settings,
                                                                           service) -> None:
    cid, (fridge, _) = await _zhang(service)
    linked = await _call(sessionmaker, customer_id=cid, started_at=NOW - D(hours=2))
    plain = await _call(sessionmaker, customer_id=cid, started_at=NOW - D(hours=1))
    async with sessionmaker() as s, s.begin():
        for n, (created, lid) in enumerate([(NOW - D(hours=2), linked), (NOW - D(days=3), ""),
                                            (NOW - D(hours=2), linked)], start=1):
            await s.execute(insert(IntakeRecord).values(
                number=f"CR20240601-00{n}", created_at=created, customer_id=cid, appliance_id=fridge,
                product_model="BCD-470", request_type="维修", problem="不制冷，电话 13912345678",
                call_linkedid=lid))
        await s.execute(insert(WorkOrder).values(
            number="WO20240601-001", customer_id=cid, appliance_id=fridge, status="待处理",
            problem="不制冷", created_at=NOW - D(hours=2), call_linkedid=linked))
    h = (await _context(sessionmaker, settings, "13800138000")).to_json()["history"]
    assert [(c["id"], c["intakes"], c["orders"]) for c in h["recent_calls"]] == [
        (plain, [], []), (linked, ["CR20240601-001", "CR20240601-003"], ["WO20240601-001"])]
    intakes = h["recent_intakes"]
    assert [i["number"] for i in intakes] == ["CR20240601-003", "CR20240601-001", "CR20240601-002"]
    assert intakes[0]["call_id"] == linked and intakes[2]["call_id"] is None
    assert intakes[0]["request_type"] == "维修" and intakes[0]["problem"] == "不制冷，电话 139****5678"
    assert intakes[0]["appliance_id"] == fridge and intakes[0]["product_model"] == "BCD-470"
