"""Dispatch rules (pure): every hard filter with its boundaries, the score's formulas, the
tie-break, the widened search, the weights setting. Tables, no clock patching: ``now`` is an
argument.

Distances come from a table model (the engineer's latitude *is* the distance in km) so the
boundaries are exact; one test checks the great-circle default on real coordinates."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from callcenter.dispatch import rules as r
from callcenter.geo import GeoPoint
from callcenter.settings import Settings, SettingsError

TZ = ZoneInfo("Asia/Shanghai")
# Monday 2026-11-23 10:00 in Shanghai.
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=TZ).astimezone(dt.UTC)
CUSTOMER = GeoPoint(0.0, 0.0)


class LatIsKm:
    """The engineer's latitude is the distance in km (exact boundaries)."""

    name = "table"

    def km(self, a: GeoPoint, b: GeoPoint) -> float:
        return abs(a.lat - b.lat)


CFG = r.RuleConfig(tz=TZ, distance=LatIsKm())


def local(y: int, m: int, d: int, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=TZ).astimezone(dt.UTC)


def eng(id: int = 1, km: float = 1.0, **kw) -> r.EngineerFacts:  # type: ignore[no-untyped-def]
    kw.setdefault("skills", (r.Skill("空调", "制冷作业证", "T-1", dt.date(2027, 1, 1)),))
    return r.EngineerFacts(id=id, base=GeoPoint(km, 0.0), **kw)


def order(**kw) -> r.OrderFacts:  # type: ignore[no-untyped-def]
    kw.setdefault("category", "空调")
    kw.setdefault("certificate", "制冷作业证")
    kw.setdefault("location", CUSTOMER)
    return r.OrderFacts(id=7, **kw)


def codes(e: r.EngineerFacts, o: r.OrderFacts | None = None, now: dt.datetime = NOW,
          cfg: r.RuleConfig = CFG) -> list[str]:
    a = r.evaluate(o or order(), [e], now, cfg).candidates[0]
    return [x.code for x in a.exclusions]


# ---- hard filters -------------------------------------------------------------------------------

@pytest.mark.parametrize("km, expected", [
    (0.0, []), (4.999, []), (5.0, []), (5.0004, []),  # rounded to metres: 5.000 passes
    (5.0006, ["too_far"]), (5.001, ["too_far"]), (12.0, ["too_far"]),
])
def test_distance_boundary(km, expected):
    assert codes(eng(km=km)) == expected


@pytest.mark.parametrize("skills, cert_needed, expected", [
    ((r.Skill("空调", "制冷作业证", "T-1", dt.date(2027, 1, 1)),), "制冷作业证", []),
    ((r.Skill("空调", "制冷作业证", "T-1", dt.date(2026, 11, 23)),), "制冷作业证", []),  # expires today
    ((r.Skill("空调", "制冷作业证", "T-1", dt.date(2026, 11, 22)),), "制冷作业证", ["certificate_expired"]),
    ((r.Skill("空调", "制冷作业证", "T-1", None),), "制冷作业证", []),  # no expiry recorded
    ((r.Skill("空调", "", "", None),), "制冷作业证", ["no_certificate"]),
    ((r.Skill("空调", "电工证", "E-1", dt.date(2030, 1, 1)),), "制冷作业证", ["no_certificate"]),
    ((r.Skill("冰箱", "制冷作业证", "T-1", dt.date(2030, 1, 1)),), "制冷作业证", ["no_skill"]),
    ((), "制冷作业证", ["no_skill"]),
    ((r.Skill("空调", "", "", None),), "", []),  # category needs no certificate
    ((r.Skill("空调", "制冷作业证", "T-1", dt.date(2020, 1, 1)),), "", []),  # expired but not needed
])
def test_skill_and_certificate(skills, cert_needed, expected):
    assert codes(eng(skills=skills), order(certificate=cert_needed)) == expected


def test_certificate_checked_on_the_service_day_in_the_centre_time_zone():
    # 2026-11-23 23:30 Shanghai is still 15:30 UTC the same day; a window on the 24th needs the
    # certificate valid on the 24th.
    e = eng(skills=(r.Skill("空调", "制冷作业证", "T", dt.date(2026, 11, 23)),),
            working_hours={d: ((dt.time(8), dt.time(20)),) for d in range(1, 8)})
    assert codes(e, order(window=(local(2026, 11, 23, 14), local(2026, 11, 23, 16)))) == []
    assert codes(e, order(window=(local(2026, 11, 24, 9), local(2026, 11, 24, 11)))) == ["certificate_expired"]


@pytest.mark.parametrize("open_orders, cap, expected", [
    (0, 3, []), (2, 3, []), (3, 3, ["at_capacity"]), (4, 3, ["at_capacity"]), (0, 1, []), (1, 1, ["at_capacity"]),
])
def test_load_cap(open_orders, cap, expected):
    assert codes(eng(open_orders=open_orders, load_cap=cap)) == expected


NINE_TO_SIX = {d: ((dt.time(9), dt.time(18)),) for d in range(1, 6)}  # Mon–Fri
SPLIT = {1: ((dt.time(8), dt.time(12)), (dt.time(13), dt.time(17)))}


@pytest.mark.parametrize("hours, now, window, expected", [
    (NINE_TO_SIX, local(2026, 11, 23, 10), None, []),
    (NINE_TO_SIX, local(2026, 11, 23, 9), None, []),  # the first minute counts
    (NINE_TO_SIX, local(2026, 11, 23, 18), None, ["off_duty"]),  # the end does not
    (NINE_TO_SIX, local(2026, 11, 23, 8, 59), None, ["off_duty"]),
    (NINE_TO_SIX, local(2026, 11, 28, 10), None, ["off_duty"]),  # Saturday
    (NINE_TO_SIX, NOW, (local(2026, 11, 23, 16), local(2026, 11, 23, 18)), []),  # ends exactly at 18:00
    (NINE_TO_SIX, NOW, (local(2026, 11, 23, 17), local(2026, 11, 23, 19)), ["off_duty"]),  # crosses the end
    (NINE_TO_SIX, NOW, (local(2026, 11, 23, 8), local(2026, 11, 23, 10)), ["off_duty"]),  # starts before
    (NINE_TO_SIX, NOW, (local(2026, 11, 24, 9), local(2026, 11, 24, 11)), []),  # Tuesday
    (NINE_TO_SIX, NOW, (local(2026, 11, 23, 17), local(2026, 11, 24, 10)), ["off_duty"]),  # overnight
    (SPLIT, NOW, (local(2026, 11, 23, 11), local(2026, 11, 23, 12)), []),
    (SPLIT, NOW, (local(2026, 11, 23, 11), local(2026, 11, 23, 14)), ["off_duty"]),  # spans lunch
    (SPLIT, NOW, (local(2026, 11, 23, 13), local(2026, 11, 23, 17)), []),
    ({}, NOW, None, ["off_duty"]),  # no working hours at all
])
def test_working_hours(hours, now, window, expected):
    assert codes(eng(working_hours=hours), order(window=window), now=now) == expected


@pytest.mark.parametrize("leave, now, window, expected", [
    ((r.Leave(dt.date(2026, 11, 23), dt.date(2026, 11, 23), "休息"),), NOW, None, ["on_leave"]),
    ((r.Leave(dt.date(2026, 11, 20), dt.date(2026, 11, 22)),), NOW, None, []),  # ended yesterday
    ((r.Leave(dt.date(2026, 11, 24), dt.date(2026, 11, 30)),), NOW, None, []),  # starts tomorrow
    ((r.Leave(dt.date(2026, 11, 24), dt.date(2026, 11, 30)),), NOW,
     (local(2026, 11, 24, 9), local(2026, 11, 24, 11)), ["on_leave"]),
    # 00:30 on the 24th in Shanghai is 16:30 UTC on the 23rd: the leave day is the local one.
    ((r.Leave(dt.date(2026, 11, 24), dt.date(2026, 11, 24)),), local(2026, 11, 24, 0, 30), None, ["on_leave"]),
    ((r.Leave(dt.date(2026, 11, 23), dt.date(2026, 11, 23)),), local(2026, 11, 24, 0, 30), None, []),
    ((r.Leave(dt.date(2026, 11, 23), dt.date(2026, 11, 23)),), local(2026, 11, 23, 23, 30), None, ["on_leave"]),
])
def test_leave_in_the_centre_time_zone(leave, now, window, expected):
    hours = {d: ((dt.time(0), dt.time(23, 59)),) for d in range(1, 8)}
    assert codes(eng(leave=leave, working_hours=hours), order(window=window), now=now) == expected


def test_position_last_reported_while_fresh_else_base():
    fresh = eng(km=9.0, last=GeoPoint(1.0, 0.0), last_seen_at=NOW - dt.timedelta(hours=3, minutes=59))
    stale = dataclasses.replace(fresh, last_seen_at=NOW - dt.timedelta(hours=4, minutes=1))
    a = r.evaluate(order(), [fresh], NOW, CFG).candidates[0]
    assert (a.distance_km, a.position_source, a.eligible) == (1.0, "last", True)
    b = r.evaluate(order(), [stale], NOW, CFG).candidates[0]
    assert (b.distance_km, b.position_source, [x.code for x in b.exclusions]) == (9.0, "base", ["too_far"])
    nowhere = r.EngineerFacts(id=3, skills=fresh.skills)
    assert codes(nowhere) == ["no_position"]


def test_inactive_refused_and_every_failure_listed():
    e = eng(km=8, active=False, open_orders=3, skills=())
    assert codes(e, order(refused_by=frozenset({1}))) == ["inactive", "refused", "no_skill", "too_far", "at_capacity"]
    ev = r.evaluate(order(refused_by=frozenset({1})), [e], NOW, CFG)
    reasons = [x.reason for x in ev.candidates[0].exclusions]
    assert reasons == ["已停止派单", "已拒绝过此工单", "无空调维修技能", "距离8.0公里，超出5公里", "未完成工单3单，已达上限3单"]


def test_order_level_blocks():
    ev = r.evaluate(order(category="", location=None), [eng()], NOW, CFG)
    assert [b.code for b in ev.blocked] == ["category_unknown", "order_unlocated"]
    assert ev.winner is None
    assert [x.code for x in ev.candidates[0].exclusions] == ["category_unknown", "order_unlocated"]


# ---- score --------------------------------------------------------------------------------------

def test_score_components_and_formulas():
    e = eng(km=2.0, open_orders=1, load_cap=4, completed=10, first_time_fixed=9, surveyed=4, satisfied=3,
            last_order_at=NOW - dt.timedelta(hours=6))
    s = r.evaluate(order(), [e], NOW, CFG).winner.score  # type: ignore[union-attr]
    c = s.components
    assert c["distance"].score == pytest.approx(1 - 2 / 5)
    assert c["load"].score == pytest.approx(1 - 1 / 4)
    assert c["ftf"].value == pytest.approx(0.9) and c["ftf"].score == pytest.approx((9 + 2.5) / 15)
    assert c["satisfaction"].value == pytest.approx(0.75) and c["satisfaction"].score == pytest.approx((3 + 2.5) / 9)
    assert c["idle"].value == pytest.approx(6) and c["idle"].score == pytest.approx(6 / 24)
    expected = 0.4 * 0.6 + 0.2 * 0.75 + 0.15 * (11.5 / 15) + 0.15 * (5.5 / 9) + 0.1 * 0.25
    assert s.total == pytest.approx(expected, abs=1e-6)
    j = s.to_json()
    assert set(j["components"]) == {"distance", "load", "ftf", "satisfaction", "idle"}
    assert j["components"]["distance"]["label"] == "距离"


@pytest.mark.parametrize("kw, component, score", [
    ({"km": 0.0}, "distance", 1.0), ({"km": 5.0}, "distance", 0.0),
    ({"open_orders": 0}, "load", 1.0), ({"open_orders": 2}, "load", 1 / 3),
    ({}, "ftf", 0.5), ({}, "satisfaction", 0.5),  # no record: neutral
    ({"completed": 1, "first_time_fixed": 1}, "ftf", 3.5 / 6),  # one lucky order barely moves it
    ({"completed": 100, "first_time_fixed": 95}, "ftf", 97.5 / 105),
    ({"surveyed": 20, "satisfied": 0}, "satisfaction", 2.5 / 25),
    ({}, "idle", 1.0),  # never had an order
    ({"last_order_at": NOW}, "idle", 0.0),
    ({"last_order_at": NOW - dt.timedelta(hours=48)}, "idle", 1.0),
])
def test_component_scores_are_normalised(kw, component, score):
    s = r.evaluate(order(), [eng(**kw)], NOW, CFG).winner.score  # type: ignore[union-attr]
    assert s.components[component].score == pytest.approx(score)
    assert all(0.0 <= c.score <= 1.0 for c in s.components.values())


def ids(ev: r.Evaluation) -> list[int]:
    return [a.engineer_id for a in ev.candidates]


def test_ranking_and_deterministic_tie_break():
    only_distance = dataclasses.replace(CFG, weights=r.Weights(1, 0, 0, 0, 0))
    # Equal scores: 2 and 3 tie on distance too; fewer open orders wins; then the lower id.
    es = [eng(5, km=1.0), eng(3, km=1.0, open_orders=1), eng(2, km=1.0, open_orders=1), eng(9, km=0.5)]
    ev = r.evaluate(order(), es, NOW, only_distance)
    assert ids(ev) == [9, 5, 2, 3] and [a.rank for a in ev.candidates] == [1, 2, 3, 4]
    only_load = dataclasses.replace(CFG, weights=r.Weights(0, 1, 0, 0, 0))
    # Equal scores (all idle): the nearer first.
    ev = r.evaluate(order(), [eng(1, km=3.0), eng(2, km=2.0), eng(3, km=2.0)], NOW, only_load)
    assert ids(ev) == [2, 3, 1]
    # Input order never matters.
    assert ids(r.evaluate(order(), list(reversed(es)), NOW, only_distance)) == [9, 5, 2, 3]


def test_excluded_listed_after_the_eligible_nearest_first():
    es = [eng(1, km=7.0), eng(2, km=1.0, open_orders=3), eng(3, km=4.0), r.EngineerFacts(id=4)]
    ev = r.evaluate(order(), es, NOW, CFG)
    assert ids(ev) == [3, 2, 1, 4]
    assert ev.winner is not None and ev.winner.engineer_id == 3
    j = ev.to_json()
    assert j["winner"]["engineer_id"] == 3 and j["rule_version"] == r.RULES_VERSION
    assert j["candidates"][1]["exclusions"] == [{"code": "at_capacity", "reason": "未完成工单3单，已达上限3单"}]


def test_great_circle_default():
    cfg = r.RuleConfig(tz=TZ)
    tiananmen = GeoPoint(39.9087, 116.3975)
    near = r.EngineerFacts(id=1, base=GeoPoint(39.9289, 116.4160), skills=(r.Skill("冰箱"),))  # ~2.8 km
    far = r.EngineerFacts(id=2, base=GeoPoint(39.9600, 116.2981), skills=(r.Skill("冰箱"),))  # ~10 km
    ev = r.evaluate(r.OrderFacts(id=1, category="冰箱", location=tiananmen), [far, near], NOW, cfg)
    assert ev.winner is not None and ev.winner.engineer_id == 1
    assert 2.0 < ev.candidates[0].distance_km < 3.5  # type: ignore[operator]
    assert [x.code for x in ev.candidates[1].exclusions] == ["too_far"]


# ---- widened search -----------------------------------------------------------------------------

def test_widen_rings_other_regions_and_shops():
    es = [eng(1, km=8.0), eng(2, km=15.0), eng(3, km=15.0, skills=()), eng(4, km=40.0, region="廊坊市"),
          eng(5, km=80.0), eng(6, km=9.0, open_orders=3)]
    shops = [r.ShopFacts(1, "东城网点", position=GeoPoint(12.0, 0), categories=("空调",), open_orders=2, capacity=5),
             r.ShopFacts(2, "满员网点", position=GeoPoint(3.0, 0), categories=("空调",), open_orders=5, capacity=5),
             r.ShopFacts(3, "冰箱网点", position=GeoPoint(1.0, 0), categories=("冰箱",)),
             r.ShopFacts(4, "近网点", position=GeoPoint(12.0, 0), categories=("空调",), open_orders=0, capacity=5)]
    o = order(region="北京市")
    cfg = dataclasses.replace(CFG, far_km=50.0)
    assert r.evaluate(o, es, NOW, cfg).winner is None
    tiers = {t.name: t for t in r.widen(o, es, shops, NOW, cfg)}
    assert list(tiers) == ["10km", "20km", "other_regions", "shops"]
    assert [a.engineer_id for a in tiers["10km"].suggestions] == [1]
    assert tiers["10km"].excluded == {"at_capacity": 1}
    assert [a.engineer_id for a in tiers["20km"].suggestions] == [2]
    assert tiers["20km"].excluded == {"at_capacity": 1, "no_skill": 1}
    far = tiers["other_regions"].suggestions
    assert [a.engineer_id for a in far] == [4] and far[0].cross_region  # type: ignore[union-attr]
    # Distance scored against the ring: 8 km in the 10 km ring scores 0.2.
    assert tiers["10km"].suggestions[0].score.components["distance"].score == pytest.approx(0.2)  # type: ignore[union-attr]
    # Shops: equal distance, the emptier first; the full one and the one not serving 空调 left out.
    assert [s.shop_id for s in tiers["shops"].suggestions] == [4, 1]  # type: ignore[union-attr]
    assert tiers["shops"].excluded == {"category_not_served": 1, "shop_full": 1}
    assert tiers["shops"].to_json()["suggestions"][0]["rank"] == 1


# ---- settings and parsing -----------------------------------------------------------------------

@pytest.mark.parametrize("text, weights", [
    ("distance=0.4,load=0.2,ftf=0.15,satisfaction=0.15,idle=0.1", r.Weights()),
    (" distance = 1 ", r.Weights(1, 0, 0, 0, 0)),
    ("load=0.5,idle=0.5,", r.Weights(0, 0.5, 0, 0, 0.5)),
])
def test_parse_weights(text, weights):
    assert r.parse_weights(text) == weights


@pytest.mark.parametrize("text, problem", [
    ("distance=0.5,load=0.4", "add up to 1"),
    ("distance=0.5,lod=0.5", "unknown weight 'lod'"),
    ("distance=0.5,distance=0.5", "given twice"),
    ("distance=half,load=0.5", "must be a number"),
    ("distance=-0.5,load=1.5", "≥ 0"),
    ("distance", "expected name=value"),
    ("distance=nan,load=1", "≥ 0"),
])
def test_weights_setting_is_validated(text, problem):
    with pytest.raises(SettingsError, match=problem) as e:
        Settings.from_env({"CALLCENTER_DISPATCH_WEIGHTS": text})
    assert e.value.variable == "CALLCENTER_DISPATCH_WEIGHTS"


def test_settings_feed_the_rule_config():
    s = Settings.from_env({"CALLCENTER_DISPATCH_WEIGHTS": "distance=0.7,load=0.3",
                           "CALLCENTER_DISPATCH_RADIUS_KM": "3"})
    cfg = r.config_from(s)
    assert cfg.weights == r.Weights(0.7, 0.3, 0, 0, 0) and cfg.radius_km == 3.0
    with pytest.raises(SettingsError, match="DISPATCH_RADIUS_KM"):
        Settings.from_env({"CALLCENTER_DISPATCH_RADIUS_KM": "0"})


@pytest.mark.parametrize("data, problem", [
    ({"8": []}, "weekday"), ({"1": [["18:00", "09:00"]]}, "before the end"),
    ({"1": [["9:00", "18:00"]]}, "HH:MM"), ({"1": [["09:00", "25:00"]]}, "not a time"),
    ({"1": [["09:00", "13:00"], ["12:00", "18:00"]]}, "overlap"), ({"1": "09:00-18:00"}, "list"),
])
def test_working_hours_validation(data, problem):
    with pytest.raises(ValueError, match=problem):
        r.parse_working_hours(data)


def test_working_hours_parse():
    hours = r.parse_working_hours({"1": [["13:00", "17:00"], ["08:00", "12:00"]], "6": []})
    assert hours[1] == ((dt.time(8), dt.time(12)), (dt.time(13), dt.time(17)))
    assert hours[6] == () and hours[7] == ()
