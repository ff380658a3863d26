"""The candidate loader on SQLite and PostgreSQL: bounding box on base and fresh reported
positions, skills, load, leave, the record (first-time fix, satisfaction, idle), geocoding of an
address without coordinates, refusals, order-level blocks, and the widened search with shops."""

from __future__ import annotations

import datetime as dt

import pytest

from callcenter.db.models import WorkOrder
from callcenter.db.workforce import DispatchDecision, DispatchRefusal, ServiceShop
from callcenter.dispatch import rules as r
from callcenter.dispatch.candidates import CandidateLoader
from tests.dispatchworld import NOW, TZ, build, near

CFG = r.RuleConfig(tz=TZ)


@pytest.fixture
async def world(sessionmaker):  # type: ignore[no-untyped-def]
    return await build(sessionmaker)


async def preview(engine, order_id, cfg=CFG, **kw):  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return await CandidateLoader(cfg).preview(conn, order_id, NOW, **kw)


def by_id(p):  # type: ignore[no-untyped-def]
    return {a.engineer_id: a for a in p.evaluation.candidates}


async def test_candidates_filters_and_record(engine, world):
    u = world.users
    p = await preview(engine, world.orders["main"])
    assert p.order.category == "空调" and p.order.certificate == "制冷作业证" and p.status == "待处理"
    cands = by_id(p)
    # In the box: everyone but "gone" (inactive user) and "far" (15 km).
    assert set(cands) == {u[k] for k in ("best", "full", "fridge", "corner", "moving", "leave", "expired")}
    codes = {k: [e.code for e in cands[u[k]].exclusions] for k in ("full", "fridge", "corner", "leave", "expired")}
    assert codes == {"full": ["at_capacity"], "fridge": ["no_skill"], "corner": ["too_far"],
                     "leave": ["on_leave"], "expired": ["certificate_expired"]}
    moving = cands[u["moving"]]
    assert moving.eligible and moving.position_source == "last" and moving.distance_km < 1
    assert moving.open_orders == 2
    best = cands[u["best"]]
    assert p.evaluation.winner.engineer_id == u["best"] and best.rank == 1
    c = best.score.components
    assert c["ftf"].value == pytest.approx(3 / 4)  # the cancelled order does not count
    assert c["satisfaction"].value == pytest.approx(1 / 2)
    assert c["idle"].value == pytest.approx(2.0)
    assert 0.9 < best.distance_km < 1.1
    assert p.tiers is None  # somebody matched: no widened search
    assert p.people[u["best"]].display_name == "李best"


async def test_refusal_excludes_and_the_next_one_wins(engine, sessionmaker, world):
    u = world.users
    async with sessionmaker.begin() as s:
        s.add(DispatchRefusal(order_id=world.orders["main"], engineer_id=u["best"], at=NOW, reason="时间冲突"))
    p = await preview(engine, world.orders["main"])
    assert [e.code for e in by_id(p)[u["best"]].exclusions] == ["refused"]
    assert p.evaluation.winner.engineer_id == u["moving"]


async def test_address_without_coordinates_is_geocoded(engine, world):
    p = await preview(engine, world.orders["unlocated"])
    # 西城区's centre is about 3 km west of Tiananmen.
    assert p.order.location is not None and p.order.region == "北京市"
    assert p.evaluation.candidates and not p.evaluation.blocked


async def test_order_without_category_is_blocked(engine, world):
    p = await preview(engine, world.orders["no_category"])
    assert [b.code for b in p.evaluation.blocked] == ["category_unknown"]
    assert p.evaluation.winner is None and p.tiers is None


async def test_nobody_matches_widened_search_with_shops(engine, sessionmaker, world):
    u = world.users
    async with sessionmaker.begin() as s:
        shops = [ServiceShop(name="黄浦网点", region="上海市", lat=31.2300, lon=121.4800, categories=["空调"],
                             capacity=2, created_at=NOW, version=1, contact_phone_enc="", contact_phone_masked=""),
                 ServiceShop(name="冰箱网点", region="上海市", lat=31.2310, lon=121.4810, categories=["冰箱"],
                             capacity=5, created_at=NOW, version=1, contact_phone_enc="", contact_phone_masked="")]
        s.add_all(shops)
        await s.flush()
        # The 空调 shop already holds two open orders (capacity 2) → full.
        for key in ("main", "unlocated"):
            s.add(DispatchDecision(order_id=world.orders[key], at=NOW, mode="manual", shop_id=shops[0].id,
                                   candidates=[], score={}, rule_version="", weights={}, reason="测试"))
    p = await preview(engine, world.orders["shanghai"])
    assert p.evaluation.winner is None and p.evaluation.candidates == ()
    tiers = {t.name: t for t in p.tiers}
    assert tiers["shops"].suggestions == () and tiers["shops"].excluded == {"category_not_served": 1, "shop_full": 1}
    # One of the two orders finishes: the shop has room again.
    async with sessionmaker.begin() as s:
        (await s.get(WorkOrder, world.orders["unlocated"])).status = "已完成"
    p = await preview(engine, world.orders["shanghai"])
    assert [x.name for x in {t.name: t for t in p.tiers}["shops"].suggestions] == ["黄浦网点"]
    # In Beijing with a 0.3 km radius nobody matches; the rings find them, far is cross-region.
    narrow = r.RuleConfig(tz=TZ, radius_km=0.3, far_km=50)
    p = await preview(engine, world.orders["main"], narrow)
    assert p.evaluation.winner is None
    tiers = {t.name: t for t in p.tiers}
    ten = [a.engineer_id for a in tiers["10km"].suggestions]
    assert set(ten) == {u["best"], u["moving"], u["corner"]}  # corner: 6.4 km
    assert [a.engineer_id for a in tiers["20km"].suggestions] == [u["far"]]
    assert tiers["20km"].suggestions[0].cross_region


async def test_stale_reported_position_falls_back_to_base(engine, sessionmaker, world):
    from callcenter.db.workforce import EngineerProfile

    async with sessionmaker.begin() as s:
        (await s.get(EngineerProfile, world.users["moving"])).last_seen_at = NOW - dt.timedelta(hours=5)
    p = await preview(engine, world.orders["main"])
    assert world.users["moving"] not in by_id(p)  # base is 40 km away: outside the box
    assert near(0)[0] > 0


async def test_nearest_limits_the_eligible_not_the_excluded(engine, world):
    async with engine.connect() as conn:
        loader = CandidateLoader(CFG)
        order, _ = await loader.order_facts(conn, world.orders["main"])
        every = await loader.engineers(conn, order, NOW, 20.0)
        two = await loader.engineers(conn, order, NOW, 20.0, nearest=2)

    def eligible(engineers):  # type: ignore[no-untyped-def]
        return {e.id: r.distance_to(e, order, NOW, CFG)[0] for e in engineers
                if not r.exclusions(e, order, NOW, CFG, r.distance_to(e, order, NOW, CFG)[0], radius_km=20.0)}

    all_ok, kept = eligible(every), eligible(two)
    assert len(all_ok) > 2 and len(kept) == 2
    assert sorted(kept.values()) == sorted(all_ok.values())[:2]
    assert {e.id for e in every} - set(all_ok) == {e.id for e in two} - set(kept)  # every excluded stays
