"""The dispatcher's board over HTTP (SQLite and PostgreSQL): who may read it; the undispatched
on-site orders (automatic dispatch due or in the queue) with the last decision's summary and
its commonest exclusion reasons; orders awaiting acceptance with the minutes left; open SLA
alerts by urgency then deadline (a breached clock once); counts and paging; refusals per
engineer over a period; nothing unmasked."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import update

from callcenter.clock import utcnow
from callcenter.db.models import WorkOrder
from callcenter.db.oversight import SlaAlert
from callcenter.db.workforce import DispatchDecision, DispatchRefusal, ServiceShop
from callcenter.dispatch import rules as r
from callcenter.dispatch.board import decision_summary, reason_counts
from callcenter.dispatch.board_http import RefusalQuery, period
from callcenter.dispatch.board_http import routes as board_routes
from callcenter.dispatch.candidates import CandidateLoader
from tests.dispatchworld import NOW, TZ, bare_app, build
from tests.privacy_scan import assert_no_personal
from tests.test_dispatch_http import who

# The world's people and places that must never show unmasked.
SECRETS = ["王小明", "某街1号", "某街2号", "某路3号", "李best", "李full", "李fridge", "dispatcher"]
# Monday 2026-11-23 20:00 in Shanghai: everyone is off duty.
EVENING = dt.datetime(2026, 11, 23, 20, 0, tzinfo=TZ).astimezone(dt.UTC)


@pytest.fixture
async def world(sessionmaker):  # type: ignore[no-untyped-def]
    return await build(sessionmaker)


@pytest.fixture
async def client(aiohttp_client, engine, sessionmaker):  # type: ignore[no-untyped-def]
    return await aiohttp_client(bare_app(engine, sessionmaker, board_routes))


async def get(client, url, headers, status=200):  # type: ignore[no-untyped-def]
    resp = await client.get(url, headers=headers)
    text = await resp.text()
    assert resp.status == status, f"GET {url} → {resp.status}: {text}"
    assert_no_personal(text, where=url, secrets=SECRETS)
    return json.loads(text)


async def _order(s, world, **values) -> int:  # type: ignore[no-untyped-def]
    values.setdefault("number", f"WO20261123-{len(world.orders) + 100:03d}")
    wo = WorkOrder(customer_id=world.customer_id, created_at=NOW, **values)
    s.add(wo)
    await s.flush()
    world.orders[values["number"]] = wo.id
    return wo.id


async def _seed(world, engine, sessionmaker) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Decisions, refusals, dispatched orders and SLA alerts on top of the dispatch world."""
    loader = CandidateLoader(r.RuleConfig(tz=TZ))
    async with engine.connect() as conn:
        evening = await loader.preview(conn, world.orders["main"], EVENING, widen=False)
        shanghai = await loader.preview(conn, world.orders["shanghai"], NOW, widen=False)
    assert evening is not None and shanghai is not None and evening.evaluation.winner is None
    now = utcnow()
    ids: dict[str, int] = {}
    async with sessionmaker.begin() as s:
        u = world.users
        shop = ServiceShop(name="东城网点", region="北京市", lat=39.9, lon=116.4, categories=["空调"], created_at=NOW)
        s.add(shop)
        await s.flush()
        o = world.orders
        # main: the rules found nobody in the evening (everyone off duty) → the queue.
        s.add(DispatchDecision(order_id=o["main"], at=EVENING, mode="auto", candidates=[
            a.to_json() for a in evening.evaluation.candidates], score={}, rule_version=r.RULES_VERSION))
        # shanghai: nobody within the box at all; still due for automatic dispatch.
        s.add(DispatchDecision(order_id=o["shanghai"], at=NOW, mode="auto", candidates=[]))
        await s.execute(update(WorkOrder).where(WorkOrder.id == o["shanghai"]).values(auto_dispatch_due_at=NOW))
        # unlocated: dispatched to best, who refused; a critical order waiting longest.
        s.add(DispatchDecision(order_id=o["unlocated"], at=NOW, mode="manual", engineer_id=u["best"],
                               decided_by=u["dispatcher"], reason="客户电话 13812345678 指定"))
        s.add(DispatchRefusal(order_id=o["unlocated"], engineer_id=u["best"], at=NOW, reason="技能不符"))
        await s.execute(update(WorkOrder).where(WorkOrder.id == o["unlocated"]).values(
            urgency="特急", created_at=NOW - dt.timedelta(hours=1)))
        # Not undispatched: remote support, a shop's, an engineer's.
        await _order(s, world, status="待处理", service_type="远程支持")
        await _order(s, world, status="待处理", shop_id=shop.id)
        # Awaiting acceptance: two with deadlines (one past), one without (assigned before acceptance
        # deadlines); not: an accepted one, one with a partner shop.
        ids["due_soon"] = await _order(s, world, status="已派单", engineer_id=u["best"], dispatched_at=now,
                                       accept_due_at=now + dt.timedelta(minutes=10))
        ids["overdue"] = await _order(s, world, status="已派单", engineer_id=u["fridge"], urgency="紧急",
                                      dispatched_at=now - dt.timedelta(minutes=20),
                                      accept_due_at=now - dt.timedelta(minutes=5))
        await _order(s, world, status="已派单", engineer_id=u["best"], dispatched_at=now, accepted_at=now)
        ids["legacy"] = await _order(s, world, status="已派单", engineer_id=u["corner"],
                                     dispatched_at=now - dt.timedelta(hours=1))
        await _order(s, world, status="已派单", shop_id=shop.id, dispatched_at=now - dt.timedelta(hours=1))
        # SLA: a 紧急 order breached (its warning too), a 特急 warning, a cleared one, a closed order's.
        ids["breached"] = await _order(s, world, status="已派单", urgency="紧急", engineer_id=u["full"],
                                       accepted_at=now)
        ids["critical"] = await _order(s, world, status="待处理", urgency="特急", service_type="远程支持")
        done = await _order(s, world, status="已完成")
        deadline = now - dt.timedelta(minutes=3)
        s.add_all([
            SlaAlert(order_id=ids["breached"], clock="contact", level="warning", deadline=deadline, raised_at=now),
            SlaAlert(order_id=ids["breached"], clock="contact", level="breach", deadline=deadline, raised_at=now),
            SlaAlert(order_id=ids["critical"], clock="plan", level="warning", deadline=now + dt.timedelta(minutes=2),
                     raised_at=now),
            SlaAlert(order_id=ids["critical"], clock="dispatch", level="breach", deadline=now,
                     raised_at=now, cleared_at=now),
            SlaAlert(order_id=done, clock="signoff", level="breach", deadline=deadline, raised_at=now),
        ])
        # Refusals over time.
        s.add_all([
            DispatchRefusal(order_id=ids["due_soon"], engineer_id=u["fridge"], at=now - dt.timedelta(days=1),
                            reason="技能不符"),
            DispatchRefusal(order_id=ids["due_soon"], engineer_id=u["fridge"], at=now - dt.timedelta(days=2),
                            reason="其他", note="15分钟内未接单", timed_out=True),
            DispatchRefusal(order_id=ids["due_soon"], engineer_id=u["full"], at=now - dt.timedelta(days=40),
                            reason="时间冲突"),
        ])
    return ids


async def test_roles(client, world):
    for name, status in [("dispatcher", 200), ("supervisor", 200), ("admin", 200), ("agent", 403), ("best", 403)]:
        await get(client, "/api/dispatch/board", who(world, name), status)
        await get(client, "/api/dispatch/refusals", who(world, name), status)
    assert (await client.get("/api/dispatch/board")).status == 401


async def test_board_sections(client, world, engine, sessionmaker):
    ids = await _seed(world, engine, sessionmaker)
    o, u = world.orders, world.users
    board = await get(client, "/api/dispatch/board", who(world, "dispatcher"))
    counts = board["counts"]
    assert counts == {"undispatched": 4, "auto_pending": 1, "queued": 3, "awaiting": 3, "awaiting_overdue": 1,
                      "at_risk": 2, "breached": 1}

    # Undispatched: 特急 first, then the longest waiting (the rest were created together: by id).
    rows = board["undispatched"]["items"]
    assert [x["order_id"] for x in rows] == [o["unlocated"], o["main"], o["shanghai"], o["no_category"]]
    by_id = {x["order_id"]: x for x in rows}
    main = by_id[o["main"]]
    assert main["address"] == "北京市东城区" and main["category"] == "空调" and main["auto"] is False
    assert main["waiting_s"] > 0 and main["urgency"] == "普通"
    d = main["last_decision"]
    assert d["matched"] is False and d["mode"] == "auto" and d["candidates"] == 6
    assert d["summary"].startswith("5公里内无可派工程师（6人均不符合）：不在工作时间 6人")
    assert d["reasons"][0] == {"code": "off_duty", "label": "不在工作时间", "count": 6}
    assert len(d["reasons"]) == 3
    sh = by_id[o["shanghai"]]
    assert sh["auto"] is True and sh["last_decision"]["summary"] == "5公里内没有工程师"
    assert sh["address"] == "上海市黄浦区"
    un = by_id[o["unlocated"]]
    assert un["refusals"] == 1 and un["last_refusal"]["reason"] == "技能不符"
    assert un["last_refusal"]["engineer"]["name"] == "李****"
    assert un["last_decision"]["summary"] == "派给 李**** · " + un["last_decision"]["engineer"]["staff_no"]
    assert "138****5678" in un["last_decision"]["reason"]
    assert by_id[o["no_category"]]["last_decision"] is None and by_id[o["no_category"]]["category"] == ""

    # Awaiting acceptance: the earliest deadline first, the one without a deadline last; not the shop's.
    rows = board["awaiting"]["items"]
    assert [x["order_id"] for x in rows] == [ids["overdue"], ids["due_soon"], ids["legacy"]]
    assert rows[0]["seconds_left"] < 0 and 500 < rows[1]["seconds_left"] <= 600
    assert rows[1]["engineer"] == {"id": u["best"], "name": "李****", "staff_no": rows[1]["engineer"]["staff_no"]}
    assert rows[2]["engineer"]["name"] == "李******" and rows[2]["seconds_left"] is None

    # At risk: the 特急 warning first, then the 紧急 breach (its warning not repeated); cleared and
    # closed orders' alerts left out.
    rows = board["at_risk"]["items"]
    assert [(x["order_id"], x["clock"], x["level"]) for x in rows] == [
        (ids["critical"], "plan", "warning"), (ids["breached"], "contact", "breach")]
    assert rows[0]["label"] == "方案答复" and rows[0]["seconds_overdue"] < 0 < rows[1]["seconds_overdue"]
    assert rows[1]["engineer"]["name"] == "李****"


async def test_paging_and_filters(client, world, engine, sessionmaker):
    await _seed(world, engine, sessionmaker)
    o, h = world.orders, who(world, "supervisor")
    page = await get(client, "/api/dispatch/board?section=undispatched&page=2&page_size=2", h)
    assert page["awaiting"] is None and page["at_risk"] is None
    assert [x["order_id"] for x in page["undispatched"]["items"]] == [o["shanghai"], o["no_category"]]
    assert page["undispatched"]["total"] == 4 and page["undispatched"]["page"] == 2
    critical = await get(client, "/api/dispatch/board?urgency=特急", h)
    assert critical["counts"]["undispatched"] == 1 and critical["counts"]["at_risk"] == 1
    assert critical["counts"]["awaiting"] == 0
    for bad, field in [("section=nope", "section"), ("page_size=500", "page_size"), ("urgency=急", "urgency"),
                       ("page=0", "page")]:
        answer = await get(client, f"/api/dispatch/board?{bad}", h, 422)
        assert answer["details"]["field"] == field


async def test_refusals(client, world, engine, sessionmaker):
    await _seed(world, engine, sessionmaker)
    u, h = world.users, who(world, "dispatcher")
    out = await get(client, "/api/dispatch/refusals", h)
    rows = {x["engineer_id"]: x for x in out["engineers"]}
    assert list(rows) == [u["fridge"], u["best"]]  # most first; full's is 40 days old
    fridge = rows[u["fridge"]]
    assert (fridge["total"], fridge["refused"], fridge["timed_out"]) == (2, 1, 1)
    assert fridge["reasons"] == {"技能不符": 1, "时间冲突": 0, "其他": 0} and fridge["name"] == "李******"
    assert rows[u["best"]]["reasons"]["技能不符"] == 1
    assert (out["total"], out["timed_out"]) == (3, 1)
    wider = await get(client, "/api/dispatch/refusals?days=60", h)
    assert {x["engineer_id"] for x in wider["engineers"]} == {u["fridge"], u["best"], u["full"]}
    await get(client, "/api/dispatch/refusals?since=2026-11-10&until=2026-11-01", h, 422)
    await get(client, "/api/dispatch/refusals?days=0", h, 422)


def test_period_is_whole_local_days():
    now = dt.datetime(2026, 11, 24, 1, 0, tzinfo=dt.UTC)
    since, until = period(RefusalQuery(since=dt.date(2026, 11, 1), until=dt.date(2026, 11, 23)), now, TZ)
    assert since == dt.datetime(2026, 10, 31, 16, 0, tzinfo=dt.UTC)
    assert until == dt.datetime(2026, 11, 23, 16, 0, tzinfo=dt.UTC)
    assert period(RefusalQuery(), now, TZ) == (now - dt.timedelta(days=30), now)


@pytest.mark.parametrize(("candidates", "engineer", "shop", "summary"), [
    ([], None, None, "5公里内没有工程师"),
    ([{"eligible": False, "exclusions": [{"code": "too_far"}, {"code": "off_duty"}]},
      {"eligible": False, "exclusions": [{"code": "off_duty"}]}], None, None,
     "5公里内无可派工程师（2人均不符合）：不在工作时间 2人，距离过远 1人"),
    ([{"eligible": True, "exclusions": []}], 7, None, "派给 张* · GY7"),
    ([], None, 3, "派给合作网点 东城网点"),
])
def test_decision_summary(candidates, engineer, shop, summary):
    d = {"id": 1, "at": NOW, "mode": "auto", "engineer_id": engineer, "shop_id": shop, "candidates": candidates,
         "reason": ""}
    out = decision_summary(d, {7: ("张三", "GY7")}, {3: "东城网点"}, 5.0)
    assert out["summary"] == summary
    assert out["matched"] is (engineer is not None or shop is not None)


def test_reason_counts_once_per_candidate_and_commonest_first():
    cands = [{"exclusions": [{"code": "no_skill"}, {"code": "no_skill"}]}, {"exclusions": [{"code": "at_capacity"}]},
             {"exclusions": [{"code": "at_capacity"}, {"code": "mystery"}]}]
    assert reason_counts(cands) == [{"code": "at_capacity", "label": "工单已满", "count": 2},
                                    {"code": "mystery", "label": "mystery", "count": 1},
                                    {"code": "no_skill", "label": "无此品类技能", "count": 1}]
