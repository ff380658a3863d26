"""Who should take a work order: the centre's dispatch rules as pure functions (no I/O; ``now``
is an argument, aware UTC).

**Hard filters** (domain stage 2); every failing one is listed with a machine code and a Chinese
reason (:data:`REASONS`):

* ``inactive`` — the profile is switched off for dispatch;
* ``refused`` — the engineer already refused this order (or let it time out);
* ``category_unknown`` / ``no_skill`` / ``no_certificate`` / ``certificate_expired`` — a skill
  for the order's product category, and where the category needs a certificate
  (``product_categories.certificate``, 制冷作业证 for 空调) that certificate, valid on the service
  day (the expiry date is the last valid day: a certificate expiring today still counts today);
* ``no_position`` / ``order_unlocated`` / ``too_far`` — distance ≤ the radius (5 km; metres
  precision: the distance is rounded to 0.001 km, so exactly 5.000 km passes). The engineer's
  position is the last one their phone reported if it is at most ``position_max_age`` old, else
  their base;
* ``at_capacity`` — open orders < load cap (a cap of 3 means a 4th order is never added);
* ``on_leave`` / ``off_duty`` — on duty in the requested window, in the centre's time zone: not on
  a day off or leave on any day the window touches, and the whole window inside one working
  interval of that weekday (a window ending after the interval ends fails). An order without a
  requested window asks for someone on duty *now* (able to confirm within 15 minutes).

**Score** of those left, each component normalised to 0..1 (1 is best), weighted by
``CALLCENTER_DISPATCH_WEIGHTS`` (they add up to 1, so the total is 0..1):

* distance: ``1 - d / radius`` (0 km → 1, at the radius → 0);
* load: ``1 - open / cap`` (idle → 1, one below the cap → ``1/cap``);
* ftf (first-time fix): ``(fixed + K/2) / (completed + K)`` with ``K`` = ``prior_orders``
  (5): the engineer's rate pulled toward a neutral 0.5 by five imaginary orders, so one lucky
  order does not beat a long record, and a newcomer starts at 0.5;
* satisfaction: ``(satisfied + K/2) / (surveyed + K)``, the same smoothing; no surveys → 0.5;
* idle: ``min(1, hours since the last order dispatched to them / idle_full_hours)`` (24 h);
  never had one → 1. Spreads the work.

**Tie-break**, deterministic: higher total (rounded to 6 decimals), then shorter distance, then
fewer open orders, then the lower engineer id.

**Nobody matches** → :func:`widen`: the same rules at 10 km and 20 km, then engineers of any
region up to ``far_km``, then partner shops; suggestions for the dispatcher, each explained the
same way.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from callcenter.geo.distance import GREAT_CIRCLE, DistanceModel, GeoPoint
from callcenter.geo.geocoding import place_key

# Stored with every decision: which rules and formulas produced it.
RULES_VERSION = "dispatch-rules/1"

COMPONENTS = ("distance", "load", "ftf", "satisfaction", "idle")
COMPONENT_LABELS = {"distance": "距离", "load": "负载", "ftf": "一次修复率", "satisfaction": "满意度",
                    "idle": "距上次派单"}
REFUSAL_REASONS = ("技能不符", "时间冲突", "其他")
LEAVE_KINDS = ("休息", "请假", "培训")

# Exclusion codes → the reason's template (Chinese; shown to dispatchers).
REASONS = {
    "inactive": "已停止派单",
    "refused": "已拒绝过此工单",
    "category_unknown": "工单未注明产品品类",
    "no_skill": "无{category}维修技能",
    "no_certificate": "缺少{certificate}",
    "certificate_expired": "{certificate}已于{expires}过期",
    "order_unlocated": "客户地址未定位",
    "no_position": "工程师位置未知",
    "too_far": "距离{distance:.1f}公里，超出{radius:g}公里",
    "at_capacity": "未完成工单{open}单，已达上限{cap}单",
    "on_leave": "{day}{kind}",
    "off_duty": "不在工作时间（{window}；当日工作时间{hours}）",
    "category_not_served": "不承接{category}",
    "shop_full": "在修工单{open}单，已达容量{cap}单",
}


class WeightsError(ValueError):
    """``CALLCENTER_DISPATCH_WEIGHTS`` cannot be used (the message says why)."""


@dataclass(frozen=True, slots=True)
class Weights:
    distance: float = 0.4
    load: float = 0.2
    ftf: float = 0.15
    satisfaction: float = 0.15
    idle: float = 0.1

    def as_dict(self) -> dict[str, float]:
        return {c: getattr(self, c) for c in COMPONENTS}

    def as_text(self) -> str:
        return ",".join(f"{c}={getattr(self, c):g}" for c in COMPONENTS)


DEFAULT_WEIGHTS = Weights()


def parse_weights(text: str) -> Weights:
    """``"distance=0.4,load=0.2,ftf=0.15,satisfaction=0.15,idle=0.1"`` → :class:`Weights`.
    Names from :data:`COMPONENTS` (a missing one weighs 0), each once, numbers ≥ 0 adding up to
    1 (±0.001). Raises :class:`WeightsError`."""
    values: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, raw = part.partition("=")
        name = name.strip().lower()
        if not sep:
            raise WeightsError(f"expected name=value, got {part.strip()!r}")
        if name not in COMPONENTS:
            raise WeightsError(f"unknown weight {name!r} (known: {', '.join(COMPONENTS)})")
        if name in values:
            raise WeightsError(f"{name} is given twice")
        try:
            value = float(raw)
        except ValueError:
            raise WeightsError(f"{name} must be a number, got {raw.strip()!r}") from None
        if not math.isfinite(value) or value < 0:
            raise WeightsError(f"{name} must be a number ≥ 0, got {raw.strip()!r}")
        values[name] = value
    if not values:
        raise WeightsError("no weights given")
    total = sum(values.values())
    if abs(total - 1.0) > 0.001:
        raise WeightsError(f"the weights must add up to 1, they add up to {total:g}")
    return Weights(**{c: values.get(c, 0.0) for c in COMPONENTS})


# ---- working hours ----------------------------------------------------------------------------

Interval = tuple[dt.time, dt.time]
# ISO weekday (1 = Monday) → working intervals that day, centre's time zone.
WorkingHours = Mapping[int, tuple[Interval, ...]]
EVERY_DAY_9_TO_6: WorkingHours = {d: ((dt.time(9), dt.time(18)),) for d in range(1, 8)}


def _hhmm(text: object, where: str) -> dt.time:
    if not isinstance(text, str) or len(text) != 5 or text[2] != ":":
        raise ValueError(f"{where}: expected HH:MM, got {text!r}")
    try:
        return dt.time(int(text[:2]), int(text[3:]))
    except ValueError:
        raise ValueError(f"{where}: not a time of day: {text!r}") from None


def parse_working_hours(data: Mapping[str, Any]) -> dict[int, tuple[Interval, ...]]:
    """``{"1": [["09:00", "18:00"]], …}`` (ISO weekday → intervals) → :data:`WorkingHours`.
    A missing weekday is a day off. Intervals must be start < end within one day and must not
    overlap. Raises ValueError naming the weekday."""
    out: dict[int, tuple[Interval, ...]] = {d: () for d in range(1, 8)}
    for key, intervals in data.items():
        if str(key) not in {str(d) for d in range(1, 8)}:
            raise ValueError(f"{key}: weekday must be 1 (Monday) … 7 (Sunday)")
        if not isinstance(intervals, list):
            raise ValueError(f"{key}: expected a list of [start, end]")  # noqa: TRY004 (pydantic reports ValueError)
        parsed: list[Interval] = []
        for i, pair in enumerate(intervals):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValueError(f"{key}[{i}]: expected [start, end]")
            start, end = _hhmm(pair[0], f"{key}[{i}]"), _hhmm(pair[1], f"{key}[{i}]")
            if not start < end:
                raise ValueError(f"{key}[{i}]: the start must be before the end")
            parsed.append((start, end))
        parsed.sort()
        for (_, e1), (s2, _) in itertools.pairwise(parsed):
            if s2 < e1:
                raise ValueError(f"{key}: intervals overlap")
        out[int(key)] = tuple(parsed)
    return out


def hours_text(intervals: Iterable[Interval]) -> str:
    parts = [f"{a:%H:%M}–{b:%H:%M}" for a, b in intervals]
    return "、".join(parts) if parts else "休息"


# ---- facts ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Skill:
    category: str
    certificate: str = ""
    certificate_no: str = ""
    # The last day the certificate is valid (centre's calendar); None: no expiry recorded.
    expires: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Leave:
    start: dt.date
    end: dt.date  # inclusive
    kind: str = "请假"


@dataclass(frozen=True, slots=True)
class EngineerFacts:
    """What the rules know about one engineer (``callcenter.dispatch.candidates`` loads it)."""

    id: int
    region: str = ""
    base: GeoPoint | None = None
    last: GeoPoint | None = None
    last_seen_at: dt.datetime | None = None
    load_cap: int = 3
    open_orders: int = 0
    working_hours: WorkingHours = field(default_factory=lambda: EVERY_DAY_9_TO_6)
    leave: tuple[Leave, ...] = ()
    # Skills for the order's category (others may be left out).
    skills: tuple[Skill, ...] = ()
    active: bool = True
    # From the engineer's last completed orders (the loader's window): completed, fixed on the
    # first visit, surveyed, surveyed without complaint; and the last order dispatched to them.
    completed: int = 0
    first_time_fixed: int = 0
    surveyed: int = 0
    satisfied: int = 0
    last_order_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class ShopFacts:
    id: int
    name: str
    region: str = ""
    position: GeoPoint | None = None
    categories: tuple[str, ...] = ()
    capacity: int = 10
    open_orders: int = 0
    active: bool = True


@dataclass(frozen=True, slots=True)
class OrderFacts:
    id: int
    # The product category ("" unknown) and the certificate it needs ("" none).
    category: str
    certificate: str = ""
    location: GeoPoint | None = None
    # The customer's city, for "cross-region" (compared with place_key).
    region: str = ""
    # The requested visit window (aware); None → someone on duty now.
    window: tuple[dt.datetime, dt.datetime] | None = None
    # Engineers who refused it (or let it time out): never asked again.
    refused_by: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class RuleConfig:
    tz: dt.tzinfo
    weights: Weights = DEFAULT_WEIGHTS
    radius_km: float = 5.0
    # The widened search's rings (km), then everyone up to far_km (other regions, shops).
    widen_km: tuple[float, ...] = (10.0, 20.0)
    far_km: float = 100.0
    # A reported position older than this is ignored (the base is used).
    position_max_age: dt.timedelta = dt.timedelta(hours=4)
    # Idle this long (or longer) scores 1.
    idle_full_hours: float = 24.0
    # Imaginary orders at a 0.5 rate that smooth first-time-fix and satisfaction.
    prior_orders: float = 5.0
    distance: DistanceModel = GREAT_CIRCLE

    @property
    def search_km(self) -> float:
        """The widest radius any search of these rules looks at (the loader's bounding box)."""
        return max(self.far_km, self.radius_km, *self.widen_km)


def config_from(settings: Any, **changes: Any) -> RuleConfig:
    """The rule configuration of a ``callcenter.settings.Settings``."""
    return RuleConfig(tz=settings.tz, weights=Weights(**dict(settings.dispatch_weights)),
                      radius_km=settings.dispatch_radius_km, **changes)


# ---- results ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Exclusion:
    code: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "reason": self.reason}


def excluded(code: str, **values: Any) -> Exclusion:
    return Exclusion(code, REASONS[code].format(**values))


@dataclass(frozen=True, slots=True)
class Component:
    # The measured value (km, open orders, rate, hours; None: no data) and its 0..1 score.
    value: float | None
    score: float
    weight: float

    @property
    def weighted(self) -> float:
        return self.weight * self.score


@dataclass(frozen=True, slots=True)
class Score:
    total: float
    components: Mapping[str, Component]

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "components": {
            name: {"label": COMPONENT_LABELS[name],
                   "value": None if c.value is None else round(c.value, 4),
                   "score": round(c.score, 4), "weight": c.weight, "weighted": round(c.weighted, 4)}
            for name, c in self.components.items()}}


@dataclass(frozen=True, slots=True)
class Assessment:
    """One engineer weighed for one order."""

    engineer_id: int
    region: str
    distance_km: float | None
    # "last" (reported position) | "base" | None
    position_source: str | None
    open_orders: int
    load_cap: int
    exclusions: tuple[Exclusion, ...]
    score: Score | None
    # The engineer's region differs from the customer's city (a cross-region dispatch).
    cross_region: bool = False
    # 1 = the winner; None for the excluded.
    rank: int | None = None

    @property
    def eligible(self) -> bool:
        return not self.exclusions

    def to_json(self) -> dict[str, Any]:
        return {"engineer_id": self.engineer_id, "region": self.region, "cross_region": self.cross_region,
                "distance_km": self.distance_km,
                "position_source": self.position_source, "open_orders": self.open_orders,
                "load_cap": self.load_cap, "eligible": self.eligible, "rank": self.rank,
                "exclusions": [e.to_json() for e in self.exclusions],
                "score": None if self.score is None else self.score.to_json()}


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The rules applied to one order at ``at``: the winner (or None) and every candidate."""

    order_id: int
    at: dt.datetime
    radius_km: float
    weights: Weights
    # Reasons nobody can match, whoever the candidates (no category, no location).
    blocked: tuple[Exclusion, ...]
    # Eligible by rank, then the excluded by distance.
    candidates: tuple[Assessment, ...]
    rule_version: str = RULES_VERSION

    @property
    def winner(self) -> Assessment | None:
        first = self.candidates[0] if self.candidates else None
        return first if first is not None and first.eligible else None

    @property
    def eligible(self) -> tuple[Assessment, ...]:
        return tuple(a for a in self.candidates if a.eligible)

    def to_json(self) -> dict[str, Any]:
        w = self.winner
        return {"order_id": self.order_id, "at": self.at.isoformat(), "rule_version": self.rule_version,
                "weights": self.weights.as_dict(), "radius_km": self.radius_km,
                "blocked": [e.to_json() for e in self.blocked],
                "winner": None if w is None else {"engineer_id": w.engineer_id, "distance_km": w.distance_km,
                                                  "score": w.score.to_json() if w.score else None},
                "candidates": [a.to_json() for a in self.candidates]}


# ---- the filters ------------------------------------------------------------------------------

def position_of(e: EngineerFacts, now: dt.datetime, cfg: RuleConfig) -> tuple[GeoPoint | None, str | None]:
    """The position dispatch uses: the last reported one while fresh, else the base."""
    if e.last is not None and e.last_seen_at is not None and now - e.last_seen_at <= cfg.position_max_age:
        return e.last, "last"
    if e.base is not None:
        return e.base, "base"
    return None, None


def service_days(order: OrderFacts, now: dt.datetime, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime, dt.date, dt.date]:
    """The window in local time and the first and last calendar day it touches (an instant
    ``now`` when the order asks for no window)."""
    start, end = order.window if order.window is not None else (now, now)
    ls, le = start.astimezone(tz), end.astimezone(tz)
    last = (le - dt.timedelta(microseconds=1)).date() if le > ls else ls.date()
    return ls, le, ls.date(), max(last, ls.date())


def _skill_exclusions(e: EngineerFacts, order: OrderFacts, service_day: dt.date) -> list[Exclusion]:
    if not order.category:
        return []  # reported once for the order (``blocked``)
    skill = next((s for s in e.skills if s.category == order.category), None)
    if skill is None:
        return [excluded("no_skill", category=order.category)]
    if not order.certificate:
        return []
    if skill.certificate != order.certificate:
        return [excluded("no_certificate", certificate=order.certificate)]
    if skill.expires is not None and skill.expires < service_day:
        return [excluded("certificate_expired", certificate=order.certificate, expires=skill.expires.isoformat())]
    return []


def duty_exclusions(e: EngineerFacts, order: OrderFacts, now: dt.datetime, tz: dt.tzinfo) -> list[Exclusion]:
    """Leave on any day the window touches; the window inside one working interval."""
    ls, le, first, last = service_days(order, now, tz)
    out = []
    for lv in e.leave:
        if lv.start <= last and lv.end >= first:
            day = max(lv.start, first)
            out.append(excluded("on_leave", day=day.isoformat(), kind=lv.kind))
            break
    intervals = e.working_hours.get(ls.isoweekday(), ())
    t0 = ls.time()
    if le == ls:
        on = any(a <= t0 < b for a, b in intervals)
        window_text = f"{ls:%m-%d %H:%M}"
    else:
        same_day = le.date() == ls.date()
        on = same_day and any(a <= t0 and le.time() <= b for a, b in intervals)
        window_text = f"{ls:%m-%d %H:%M}–{le:%H:%M}" if same_day else f"{ls:%m-%d %H:%M}–{le:%m-%d %H:%M}"
    if not on:
        out.append(excluded("off_duty", window=window_text, hours=hours_text(intervals)))
    return out


def order_blocks(order: OrderFacts) -> tuple[Exclusion, ...]:
    """What keeps every engineer from this order, whoever they are."""
    out = []
    if not order.category:
        out.append(excluded("category_unknown"))
    if order.location is None:
        out.append(excluded("order_unlocated"))
    return tuple(out)


def distance_to(e: EngineerFacts, order: OrderFacts, now: dt.datetime, cfg: RuleConfig) -> tuple[float | None, str | None]:
    """km (rounded to metres) from the engineer's position to the customer, and the position's source."""
    pos, source = position_of(e, now, cfg)
    if pos is None or order.location is None:
        return None, source
    return round(cfg.distance.km(pos, order.location), 3), source


def exclusions(e: EngineerFacts, order: OrderFacts, now: dt.datetime, cfg: RuleConfig,
               distance_km: float | None, *, radius_km: float | None = None) -> list[Exclusion]:
    """Every hard filter ``e`` fails for ``order`` (empty: eligible); order-level blocks excepted."""
    radius = cfg.radius_km if radius_km is None else radius_km
    _, _, _, last_day = service_days(order, now, cfg.tz)
    out: list[Exclusion] = []
    if not e.active:
        out.append(excluded("inactive"))
    if e.id in order.refused_by:
        out.append(excluded("refused"))
    out += _skill_exclusions(e, order, last_day)
    if order.location is not None:
        if distance_km is None:
            out.append(excluded("no_position"))
        elif distance_km > radius:
            out.append(excluded("too_far", distance=distance_km, radius=radius))
    if e.open_orders >= e.load_cap:
        out.append(excluded("at_capacity", open=e.open_orders, cap=e.load_cap))
    out += duty_exclusions(e, order, now, cfg.tz)
    return out


# ---- the score --------------------------------------------------------------------------------

def smoothed_rate(hits: int, total: int, prior: float) -> float:
    """``(hits + prior/2) / (total + prior)``: the rate pulled toward 0.5 by ``prior`` orders."""
    if total + prior <= 0:
        return 0.5
    return min(1.0, max(0.0, (hits + prior / 2) / (total + prior)))


def score(e: EngineerFacts, distance_km: float, now: dt.datetime, cfg: RuleConfig,
          *, radius_km: float | None = None) -> Score:
    """The weighted score of an eligible engineer (formulas in the module docstring)."""
    radius = cfg.radius_km if radius_km is None else radius_km
    w = cfg.weights
    idle_h = None if e.last_order_at is None else max(0.0, (now - e.last_order_at).total_seconds() / 3600)
    parts = {
        "distance": Component(distance_km, _unit(1 - distance_km / radius) if radius > 0 else 0.0, w.distance),
        "load": Component(float(e.open_orders), _unit(1 - e.open_orders / max(1, e.load_cap)), w.load),
        "ftf": Component(e.first_time_fixed / e.completed if e.completed else None,
                         smoothed_rate(e.first_time_fixed, e.completed, cfg.prior_orders), w.ftf),
        "satisfaction": Component(e.satisfied / e.surveyed if e.surveyed else None,
                                  smoothed_rate(e.satisfied, e.surveyed, cfg.prior_orders), w.satisfaction),
        "idle": Component(idle_h, 1.0 if idle_h is None else _unit(idle_h / cfg.idle_full_hours), w.idle),
    }
    return Score(round(sum(c.weighted for c in parts.values()), 6), parts)


def _unit(x: float) -> float:
    return min(1.0, max(0.0, x))


# ---- the decision -----------------------------------------------------------------------------

def assess(e: EngineerFacts, order: OrderFacts, now: dt.datetime, cfg: RuleConfig, blocked: Sequence[Exclusion],
           *, radius_km: float | None = None) -> Assessment:
    d, source = distance_to(e, order, now, cfg)
    ex = tuple(blocked) + tuple(exclusions(e, order, now, cfg, d, radius_km=radius_km))
    sc = score(e, d, now, cfg, radius_km=radius_km) if not ex and d is not None else None
    return Assessment(e.id, e.region, d, source, e.open_orders, e.load_cap, ex, sc,
                      cross_region=cross_region(e.region, order.region))


def rank_key(a: Assessment) -> tuple[float, float, int, int]:
    """Best first: score, then distance, then fewer open orders, then the lower id."""
    assert a.score is not None and a.distance_km is not None
    return (-a.score.total, a.distance_km, a.open_orders, a.engineer_id)


def _ordered(assessed: Iterable[Assessment]) -> tuple[Assessment, ...]:
    items = list(assessed)
    ok = sorted((a for a in items if a.eligible), key=rank_key)
    out = [replace(a, rank=i) for i, a in enumerate(ok, 1)]
    out += sorted((a for a in items if not a.eligible),
                  key=lambda a: (a.distance_km is None, a.distance_km or 0.0, a.engineer_id))
    return tuple(out)


def evaluate(order: OrderFacts, engineers: Iterable[EngineerFacts], now: dt.datetime, cfg: RuleConfig,
             *, radius_km: float | None = None) -> Evaluation:
    """Apply every filter and score to each engineer; the winner is ``candidates[0]`` if eligible."""
    blocked = order_blocks(order)
    radius = cfg.radius_km if radius_km is None else radius_km
    assessed = [assess(e, order, now, cfg, blocked, radius_km=radius) for e in engineers]
    return Evaluation(order.id, now, radius, cfg.weights, blocked, _ordered(assessed))


# ---- widened search ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ShopAssessment:
    shop_id: int
    name: str
    region: str
    distance_km: float | None
    open_orders: int
    capacity: int
    exclusions: tuple[Exclusion, ...]
    rank: int | None = None

    @property
    def eligible(self) -> bool:
        return not self.exclusions

    def to_json(self) -> dict[str, Any]:
        return {"shop_id": self.shop_id, "name": self.name, "region": self.region,
                "distance_km": self.distance_km, "open_orders": self.open_orders, "capacity": self.capacity,
                "eligible": self.eligible, "rank": self.rank, "exclusions": [e.to_json() for e in self.exclusions]}


@dataclass(frozen=True, slots=True)
class Tier:
    """One step of the widened search: the engineers (or shops) it adds, best first, and how many
    others it looked at and why they were left out (``excluded``: code → count)."""

    name: str  # "10km" | "20km" | "other_regions" | "shops"
    label: str
    radius_km: float
    suggestions: tuple[Assessment, ...] | tuple[ShopAssessment, ...]
    excluded: Mapping[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "radius_km": self.radius_km,
                "suggestions": [s.to_json() for s in self.suggestions], "excluded": dict(self.excluded)}


def assess_shop(shop: ShopFacts, order: OrderFacts, cfg: RuleConfig, radius_km: float) -> ShopAssessment:
    d = None
    if shop.position is not None and order.location is not None:
        d = round(cfg.distance.km(shop.position, order.location), 3)
    out = []
    if not shop.active:
        out.append(excluded("inactive"))
    if order.category and order.category not in shop.categories:
        out.append(excluded("category_not_served", category=order.category))
    if order.location is not None:
        if d is None:
            out.append(excluded("no_position"))
        elif d > radius_km:
            out.append(excluded("too_far", distance=d, radius=radius_km))
    if shop.open_orders >= shop.capacity:
        out.append(excluded("shop_full", open=shop.open_orders, cap=shop.capacity))
    return ShopAssessment(shop.id, shop.name, shop.region, d, shop.open_orders, shop.capacity, tuple(out))


def _counts(items: Iterable[Assessment | ShopAssessment]) -> dict[str, int]:
    c: Counter[str] = Counter()
    for a in items:
        if not a.eligible:
            c.update({e.code for e in a.exclusions})
    return dict(sorted(c.items()))


def widen(order: OrderFacts, engineers: Sequence[EngineerFacts], shops: Sequence[ShopFacts],
          now: dt.datetime, cfg: RuleConfig) -> tuple[Tier, ...]:
    """The dispatcher's suggestions when nobody matches within the radius: each ring of
    ``cfg.widen_km`` (same rules, the distance scored against that ring), then everyone up to
    ``far_km`` (other regions), then partner shops up to ``far_km`` that serve the category and
    have room (nearest first, then the emptier, then the lower id). An engineer appears in the
    first tier that finds them eligible; ``excluded`` counts the rest by reason."""
    tiers: list[Tier] = []
    seen: set[int] = set()
    rings = [(f"{r:g}km", f"扩大到{r:g}公里", r) for r in cfg.widen_km]
    rings.append(("other_regions", f"跨区域（{cfg.far_km:g}公里内）", cfg.far_km))
    for name, label, radius in rings:
        ev = evaluate(order, [e for e in engineers if e.id not in seen], now, cfg, radius_km=radius)
        in_ring = [a for a in ev.candidates if a.distance_km is None or a.distance_km <= radius]
        found = tuple(a for a in in_ring if a.eligible)
        seen.update(a.engineer_id for a in found)
        tiers.append(Tier(name, label, radius, found, _counts(in_ring)))
    shop_results = [assess_shop(s, order, cfg, cfg.far_km) for s in shops]
    ok = sorted((s for s in shop_results if s.eligible),
                key=lambda s: (s.distance_km if s.distance_km is not None else math.inf,
                               s.open_orders / max(1, s.capacity), s.shop_id))
    ranked = tuple(replace(s, rank=i) for i, s in enumerate(ok, 1))
    tiers.append(Tier("shops", "合作网点", cfg.far_km, ranked, _counts(shop_results)))
    return tuple(tiers)


def cross_region(engineer_region: str, order_region: str) -> bool:
    """True when both regions are known and differ (北京 ~ 北京市)."""
    a, b = place_key(engineer_region), place_key(order_region)
    return bool(a and b and a != b)
