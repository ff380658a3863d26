"""A small month of records (November 2026, Asia/Shanghai) whose SA-DA-006 figures are worked
out by hand below (``EXPECTED``), for ``test_monthly_report*.py`` and the browser test.

Orders (local times; ``*`` = in the month's cohort by creation):

====  =========  ==========  ===========  ====================================================
no.   type       appliance   created      what happens
====  =========  ==========  ===========  ====================================================
O1*   上门维修   AP1 格力    11-02 09:00  plan +60 min, on site +26 h, done +28 h; 1 visit with
                                          a 150.00 part (in warranty: free, list value counts)
                                          and a 50.00 visit fee; surveyed, satisfied
O2*   上门维修   AP2 海尔    11-05 10:00  plan +30 min, on site +48 h, done +96 h; 2 visits
                                          (2 × 20.00 parts; fees 50 + 50 + 60) and a re-check
                                          visit after the complaint (fee 50): surveyed, unhappy
O3*   上门维修   AP1 格力    11-20 08:00  plan +120 min, booked: a repeat repair (O1, 18 days)
O4*   远程支持   AP3 格力    11-10 12:00  plan +10 min, done +2 h: a repeat of O7 (21 days)
O5*   安装       AP4 海尔    11-15 09:00  plan +90 min, on site +24 h, done +27 h; fee 30.00
O6*   上门维修   AP2 海尔    11-25 09:00  cancelled
O7    上门维修   AP3 格力    10-20 10:00  done 11-01 10:00 (288 h); 1 visit, fee 50.00
O8*   上门维修   —           11-30 23:30  特急, pending (the month's last minutes)
O9    上门维修   AP2 海尔    12-01 00:10  next month (just after the boundary)
O10   上门维修   AP2 海尔    08-01 10:00  done 08-03 10:00 (48 h): the trend's August
O11   上门维修   AP4 海尔    09-10 10:00  done 09-11 10:00 (24 h): September
O12   上门维修   AP4 海尔    10-05 10:00  done 10-07 10:00 (48 h): October
====  =========  ==========  ===========  ====================================================

Survey forms (SA-CS-005) answered in November: O1 (5 5 5 5 5 4: mean 29/6) and O2 (2 3 2 2 2 3:
mean 14/6), so the average satisfaction is (29/6 + 14/6) / 2 = 43/12; O10's, answered in August,
is not counted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.db.models import Address, Appliance, Customer, User, WorkOrder
from callcenter.db.records import OnsiteRecord
from callcenter.db.stock import OnsitePartLine, Part, StockLocation
from callcenter.db.survey import SCORE_COLUMNS, SurveyResult

TZ = ZoneInfo("Asia/Shanghai")
MONTH = "2026-11"
NOW = dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.UTC)


def local(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=TZ).astimezone(dt.UTC)


H, MIN = dt.timedelta(hours=1), dt.timedelta(minutes=1)

EXPECTED: dict[str, Any] = {
    "avg_response_min": (60 + 30 + 120 + 10 + 90) / 5,
    "avg_to_site_h": (26 + 48 + 24) / 3,
    "completion_rate": 4 / 6,
    "first_time_fix_rate": 2 / 3,
    "repeat_repair_rate": 2 / 5,
    "satisfied_rate": 1 / 2,
    "avg_satisfaction": 43 / 12,
    "avg_parts_fen": (15000 + 4000) / 5,
    "avg_onsite_fen": (5000 + 21000 + 3000 + 5000) / 5,
    "complaint_fen_per_order": 5000 / 5,
    "avg_repair_h": (28 + 96 + 2 + 288) / 4,
}
EXPECTED_COUNTS = {"created": 7, "cancelled": 1, "completed_of_created": 4, "responded": 5, "reached": 3,
                   "repairs": 5, "repeats": 2, "completed": 5, "ftf_base": 3, "ftf": 2, "repaired": 4,
                   "parts_fen": 19000, "onsite_fen": 34000, "surveyed": 2, "dissatisfied": 1,
                   "complaints": 1, "complaint_fen": 5000, "scored": 2}
SCORES = {1: ((5, 5, 5, 5, 5, 4), local(11, 4, 10)), 2: ((2, 3, 2, 2, 2, 3), local(11, 10, 9)),
          10: ((4, 4, 4, 4, 4, 4), local(8, 4, 10))}
EXPECTED_TOP = [("不制冷/制冷差", 2, 2 / 7), ("漏水", 2, 2 / 7), ("安装/移机", 1, 1 / 7)]
EXPECTED_FAILURE = [("KFR-35GW/BP3DN8Y", 3, 2, 1500.0), ("BCD-470WDPG", 1, 2, 500.0)]
EXPECTED_QUARTERS = ["2026Q1", "2026Q2", "2026Q3", "2026Q4"]
EXPECTED_BRANDS = [("海尔", [0, 0, 2, 2]), ("格力", [0, 0, 0, 3])]
# month → (repair orders completed, average hours)
EXPECTED_TREND = {"2026-07": (0, None), "2026-08": (1, 48.0), "2026-09": (1, 24.0), "2026-10": (1, 48.0),
                  "2026-11": (4, 103.5)}


def _fee(amount: int, quantity: int = 1, kind: str = "上门费") -> dict[str, Any]:
    return {"price_item_id": None, "kind": kind, "name": kind, "amount_fen": amount, "quantity": quantity}


async def seed_month(engine: AsyncEngine) -> dict[str, int]:
    """Insert the records above; returns the engineers' user ids by staff number."""
    now = NOW
    async with engine.begin() as c:
        e1 = (await c.execute(insert(User).values(
            username="eng1", display_name="王建国", password_hash="x", role="engineer", active=True,
            created_at=now, staff_no="GY2026101").returning(User.id))).scalar_one()
        e2 = (await c.execute(insert(User).values(
            username="eng2", display_name="李明", password_hash="x", role="engineer", active=True,
            created_at=now, staff_no="GY2026102").returning(User.id))).scalar_one()
        cust = (await c.execute(insert(Customer).values(name="张三", created_at=now).returning(Customer.id))).scalar_one()
        a1 = (await c.execute(insert(Address).values(customer_id=cust, province="广东省", city="深圳市",
                                                     district="南山区", detail="x").returning(Address.id))).scalar_one()
        a2 = (await c.execute(insert(Address).values(customer_id=cust, province="北京市", city="北京市",
                                                     district="朝阳区", detail="y").returning(Address.id))).scalar_one()
        ap = {}
        for name, cat, brand, model in (("AP1", "空调", "格力", "KFR-35GW/BP3DN8Y"), ("AP2", "冰箱", "海尔", "BCD-470WDPG"),
                                        ("AP3", "空调", "格力", "KFR-35GW/BP3DN8Y"), ("AP4", "冰箱", "海尔", "BCD-470WDPG")):
            ap[name] = (await c.execute(insert(Appliance).values(
                customer_id=cust, category=cat, brand=brand, model=model, serial=f"SN-{name}",
                warranty_months=12).returning(Appliance.id))).scalar_one()
        model = {"AP1": "KFR-35GW/BP3DN8Y", "AP2": "BCD-470WDPG", "AP3": "KFR-35GW/BP3DN8Y", "AP4": "BCD-470WDPG"}

        async def order(n: int, kind: str, app: str | None, addr: int | None, eng: int | None, created: dt.datetime,
                        status: str, problem: str, urgency: str = "普通", **milestones: dt.datetime | None) -> int:
            return (await c.execute(insert(WorkOrder).values(
                number=f"WO-T{n:03d}", customer_id=cust, appliance_id=ap.get(app) if app else None,
                address_id=addr, product_model=model.get(app, "") if app else "",
                serial=f"SN-{app}" if app else "", service_type=kind, status=status, urgency=urgency,
                problem=problem, engineer_id=eng, created_at=created, **milestones).returning(WorkOrder.id))).scalar_one()

        t1 = local(11, 2, 9)
        o1 = await order(1, "上门维修", "AP1", a1, e1, t1, "已回访", "不制冷，外机不转", planned_at=t1 + 60 * MIN,
                         service_started_at=t1 + 26 * H, completed_at=t1 + 28 * H, surveyed_at=local(11, 4, 10))
        t2 = local(11, 5, 10)
        o2 = await order(2, "上门维修", "AP2", a2, e2, t2, "已回访", "漏水，地面有水渍", planned_at=t2 + 30 * MIN,
                         service_started_at=t2 + 48 * H, completed_at=t2 + 96 * H, surveyed_at=local(11, 10, 9),
                         dissatisfied_at=local(11, 10, 10))
        t3 = local(11, 20, 8)
        await order(3, "上门维修", "AP1", a1, e1, t3, "已预约", "空调又不制冷了", planned_at=t3 + 120 * MIN)
        t4 = local(11, 10, 12)
        await order(4, "远程支持", "AP3", a1, None, t4, "已完成", "显示E4故障代码", planned_at=t4 + 10 * MIN,
                    service_started_at=t4 + 10 * MIN, completed_at=t4 + 2 * H)
        t5 = local(11, 15, 9)
        o5 = await order(5, "安装", "AP4", a2, e2, t5, "已完成", "新机安装", planned_at=t5 + 90 * MIN,
                         service_started_at=t5 + 24 * H, completed_at=t5 + 27 * H)
        await order(6, "上门维修", "AP2", a2, None, local(11, 25, 9), "已取消", "漏水")
        t7 = local(10, 20, 10)
        o7 = await order(7, "上门维修", "AP3", a1, e1, t7, "已回访", "不制冷", planned_at=t7 + 60 * MIN,
                         service_started_at=t7 + 24 * H, completed_at=local(11, 1, 10))
        await order(8, "上门维修", None, None, None, local(11, 30, 23, 30), "待处理", "闻到燃气味，已关阀门", urgency="特急")
        await order(9, "上门维修", "AP2", a2, None, local(12, 1, 0, 10), "待处理", "漏水")
        t10 = local(8, 1, 10)
        o10 = await order(10, "上门维修", "AP2", a2, e2, t10, "已回访", "漏水", planned_at=t10 + 60 * MIN,
                    service_started_at=t10 + 24 * H, completed_at=t10 + 48 * H)
        for n, t, hours in ((11, local(9, 10, 10), 24), (12, local(10, 5, 10), 48)):
            await order(n, "上门维修", "AP4", a2, e2, t, "已回访", "漏水", planned_at=t + 60 * MIN,
                        service_started_at=t + 12 * H, completed_at=t + hours * H)

        part = (await c.execute(insert(Part).values(code="P1", name="压缩机电容", model="C1", category="空调",
                                                    unit_price_fen=15000, active=True).returning(Part.id))).scalar_one()
        loc = (await c.execute(insert(StockLocation).values(code="PJK", name="配件库", kind="warehouse",
                                                            warehouse_type="配件库").returning(StockLocation.id))).scalar_one()

        async def visit(n: int, oid: int, eng: int, started: dt.datetime, fees: list[dict[str, Any]],
                        parts: list[tuple[int, int, bool]] = ()) -> None:  # type: ignore[assignment]
            rid = (await c.execute(insert(OnsiteRecord).values(
                number=f"OS-T{n:03d}", order_id=oid, engineer_id=eng, started_at=started, ended_at=started + H,
                fee_items=fees, in_warranty=False, created_at=started).returning(OnsiteRecord.id))).scalar_one()
            for price, qty, free in parts:
                await c.execute(insert(OnsitePartLine).values(
                    onsite_id=rid, part_id=part, location_id=loc, quantity=qty, unit_price_fen=price, free=free,
                    total_fen=0 if free else price * qty, created_at=started))

        await visit(1, o1, e1, t1 + 26 * H, [_fee(5000)], [(15000, 1, True)])
        await visit(2, o2, e2, t2 + 48 * H, [_fee(5000)])
        await visit(3, o2, e2, t2 + 72 * H, [_fee(5000), _fee(6000, kind="工时费")], [(2000, 2, False)])
        await visit(4, o2, e2, local(11, 11, 14), [_fee(5000)])  # the re-check after the complaint
        await visit(5, o5, e2, t5 + 24 * H, [_fee(3000)])
        await visit(6, o7, e1, t7 + 24 * H, [_fee(5000)])
        for n, oid in ((1, o1), (2, o2), (10, o10)):
            scores, answered = SCORES[n]
            await c.execute(insert(SurveyResult).values(
                number=f"CS-T{n:03d}", order_id=oid, customer_id=cust, channel="agent", answered_at=answered,
                created_at=answered, **dict(zip(SCORE_COLUMNS, scores))))
    return {"GY2026101": e1, "GY2026102": e2}
