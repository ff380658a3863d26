"""The data side of a dispatch decision: load an order's facts and its candidate engineers (and
partner shops) for the pure rules in :mod:`callcenter.dispatch.rules`, on a Core connection.

Built for one decision among 5,000 engineers and 100,000 open orders in a few milliseconds
(``bench/dispatch.py``; target p99 ≤ 20 ms):

1. the order: one row (work order ⟕ appliance ⟕ intake ⟕ address ⟕ product category) and its
   refusals. Coordinates as stored, else the geocoder's (district centres by default);
2. engineers whose base, or last reported position while fresh, falls in the **bounding box**
   of the radius (``ix_engineer_profiles_base`` / ``_last``), in one query with their skill
   for the order's category (a join on ``uq_engineer_skills_engineer_category``), their open
   orders (a correlated count on ``ix_work_orders_engineer_status``) and the last order
   dispatched to them (a correlated max on ``ix_work_orders_engineer_dispatched``) and the
   first leave overlapping the window (``ix_engineer_leave_engineer_end``);
3. the rules' hard filters run on that; only the engineers left need their **record**
   (``ix_work_orders_engineer_completed``): their last :data:`RECORD_WINDOW` completed orders,
   one ``LIMIT`` per engineer joined by ``UNION ALL``, with each order's number of on-site
   records, counted per engineer in the database.

Rates from the record (documented, used by the score):

* **first-time fix** = completed orders with exactly one on-site record (SA-OS-004) / completed
  orders (已完成, 已回访 and carry-in 已取 — anything with ``completed_at`` that is not 已取消);
* **satisfaction** = surveyed orders (``surveyed_at``) with no dissatisfaction recorded
  (``dissatisfied_at`` empty: no score ≤ 3, no complaint) / surveyed orders. With no survey
  yet the score is the neutral 0.5 (the rules' smoothing).

A shop's open orders are the open orders whose latest dispatch decision chose that shop.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from callcenter.db.models import Address, Appliance, User, WorkOrder
from callcenter.db.records import IntakeRecord, ProductCategory
from callcenter.db.workforce import (
    DispatchDecision,
    DispatchRefusal,
    EngineerLeave,
    EngineerProfile,
    EngineerSkill,
    ServiceShop,
)
from callcenter.dispatch import rules as r
from callcenter.geo.distance import GeoPoint, bounding_box
from callcenter.geo.geocoding import Geocoder, default_geocoder
from callcenter.orders.states import CANCELLED, CLOSED_STATUSES

# The completed orders the rates look at, per engineer (the most recent).
RECORD_WINDOW = 50
# The widened search weighs at most this many eligible engineers, the nearest: a city holds
# hundreds within 100 km, and loading every record took ~1 s; a dispatcher needs the best few.
WIDEN_NEAREST = 40
# What some address forms put in the city field of a municipality.
_MUNICIPALITY_CITY = ("", "市辖区", "县")

_wo, _pr, _us = WorkOrder.__table__, EngineerProfile.__table__, User.__table__

# One engineer's last completed orders with their number of on-site records
# (ix_work_orders_engineer_completed, ix_onsite_records_order_id); see CandidateLoader.records.
_RECORD_ARM = (
    "SELECT * FROM (SELECT w.engineer_id AS engineer_id,"
    " (SELECT count(*) FROM onsite_records o WHERE o.order_id = w.id) AS visits,"
    " CASE WHEN w.surveyed_at IS NOT NULL THEN 1 ELSE 0 END AS surveyed,"
    " CASE WHEN w.surveyed_at IS NOT NULL AND w.dissatisfied_at IS NULL THEN 1 ELSE 0 END AS satisfied"
    " FROM work_orders w WHERE w.engineer_id = :e{i} AND w.completed_at IS NOT NULL"
    " AND w.status != :cancelled ORDER BY w.completed_at DESC LIMIT :n) AS r{i}"
)


def _utc(t: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; they are stored as UTC."""
    return t if t is None or t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def _point(lat: float | None, lon: float | None) -> GeoPoint | None:
    return GeoPoint(lat, lon) if lat is not None and lon is not None else None


@dataclass(frozen=True, slots=True)
class Person:
    """Who a candidate is, for screens (names are masked at the edge)."""

    display_name: str
    staff_no: str | None


@dataclass(frozen=True, slots=True)
class Preview:
    """The rules' evaluation of one order now, without assigning."""

    order: r.OrderFacts
    status: str
    evaluation: r.Evaluation
    # The widened search, when nobody matched (else None).
    tiers: tuple[r.Tier, ...] | None
    people: dict[int, Person]


class CandidateLoader:
    """Loads what :mod:`callcenter.dispatch.rules` needs, for one order at a time."""

    def __init__(self, cfg: r.RuleConfig, geocoder: Geocoder | None = None) -> None:
        self.cfg = cfg
        self.geocoder = geocoder if geocoder is not None else default_geocoder()

    # ---- the order ------------------------------------------------------------------------------

    async def order_facts(self, conn: AsyncConnection, order_id: int) -> tuple[r.OrderFacts, str] | None:
        """The order's facts and status; None if there is no such order."""
        ap, it, ad, pc = Appliance.__table__, IntakeRecord.__table__, Address.__table__, ProductCategory.__table__
        category = func.coalesce(func.nullif(ap.c.category, ""), it.c.category, "")
        first_address = (select(func.min(ad.c.id)).where(ad.c.customer_id == _wo.c.customer_id)
                         .correlate(_wo).scalar_subquery())
        q = (select(_wo.c.id, _wo.c.status, _wo.c.appointment_start, _wo.c.appointment_end,
                    category.label("category"), ad.c.province, ad.c.city, ad.c.district, ad.c.detail,
                    ad.c.lat, ad.c.lon, pc.c.certificate)
             .select_from(_wo)
             .outerjoin(ap, ap.c.id == _wo.c.appliance_id)
             .outerjoin(it, it.c.id == _wo.c.intake_id)
             .outerjoin(ad, ad.c.id == func.coalesce(_wo.c.address_id, first_address))
             .outerjoin(pc, pc.c.name == category)
             .where(_wo.c.id == order_id))
        row = (await conn.execute(q)).first()
        if row is None:
            return None
        refused = frozenset((await conn.execute(
            select(DispatchRefusal.engineer_id).where(DispatchRefusal.order_id == order_id))).scalars())
        location = None
        if row.lat is not None and row.lon is not None:
            location = GeoPoint(row.lat, row.lon)
        elif row.province is not None:
            location = await self.geocoder.geocode(row.province, row.city, row.district, row.detail)
        city = (row.city or "").strip()
        region = (row.province or "") if city in _MUNICIPALITY_CITY else city
        window = None
        if row.appointment_start is not None and row.appointment_end is not None:
            window = (_utc(row.appointment_start), _utc(row.appointment_end))
        facts = r.OrderFacts(id=row.id, category=row.category or "", certificate=row.certificate or "",
                             location=location, region=region, window=window, refused_by=refused)  # type: ignore[arg-type]
        return facts, row.status

    # ---- engineers ------------------------------------------------------------------------------

    async def engineers(self, conn: AsyncConnection, order: r.OrderFacts, now: dt.datetime,
                        radius_km: float, people: dict[int, Person] | None = None,
                        nearest: int | None = None) -> list[r.EngineerFacts]:
        """Engineers positioned within the bounding box of ``radius_km`` around the customer, with
        the record of those who pass every hard filter at that radius. Empty when the order has
        no location. ``people`` (optional) collects their names and staff numbers. ``nearest``:
        of those who pass, only that many (the nearest) are returned; the excluded all are."""
        if order.location is None:
            return []
        lat0, lat1, lon0, lon1 = bounding_box(order.location, radius_km)
        fresh_since = now - self.cfg.position_max_age
        open_count = (select(func.count()).select_from(_wo)
                      .where(_wo.c.engineer_id == _pr.c.user_id, _wo.c.status.not_in(CLOSED_STATUSES))
                      .correlate(_pr).scalar_subquery())
        last_order = (select(func.max(_wo.c.dispatched_at)).where(_wo.c.engineer_id == _pr.c.user_id)
                      .correlate(_pr).scalar_subquery())
        # The first leave overlapping the window (the rules report one).
        _, _, first_day, last_day = r.service_days(order, now, self.cfg.tz)
        lv = EngineerLeave.__table__
        leave_id = (select(lv.c.id).where(lv.c.engineer_id == _pr.c.user_id, lv.c.end_date >= first_day,
                                          lv.c.start_date <= last_day)
                    .order_by(lv.c.start_date).limit(1).correlate(_pr).scalar_subquery())
        # At most one skill row per engineer and category (uq_engineer_skills_engineer_category).
        sk = EngineerSkill.__table__
        q = (select(_pr, _us.c.display_name, _us.c.staff_no, open_count.label("open_orders"),
                    last_order.label("last_order_at"), sk.c.category.label("skill_category"), sk.c.certificate,
                    sk.c.certificate_no, sk.c.certificate_expires, lv.c.start_date.label("leave_start"),
                    lv.c.end_date.label("leave_end"), lv.c.kind.label("leave_kind"))
             .select_from(_pr.join(_us, _us.c.id == _pr.c.user_id)
                          .outerjoin(sk, and_(sk.c.engineer_id == _pr.c.user_id, sk.c.category == order.category))
                          .outerjoin(lv, lv.c.id == leave_id))
             .where(_us.c.active.is_(True), _us.c.role == "engineer",
                    or_(and_(_pr.c.base_lat.between(lat0, lat1), _pr.c.base_lon.between(lon0, lon1)),
                        and_(_pr.c.last_lat.between(lat0, lat1), _pr.c.last_lon.between(lon0, lon1),
                             _pr.c.last_seen_at >= fresh_since))))
        rows = (await conn.execute(q)).all()
        if not rows:
            return []
        out = []
        for row in rows:
            if people is not None:
                people[row.user_id] = Person(row.display_name, row.staff_no)
            try:
                hours = r.parse_working_hours(row.working_hours or {})
            except ValueError:
                hours = {}  # unreadable hours (edited outside the API): never on duty
            out.append(r.EngineerFacts(
                id=row.user_id, region=row.region, base=_point(row.base_lat, row.base_lon),
                last=_point(row.last_lat, row.last_lon), last_seen_at=_utc(row.last_seen_at),
                load_cap=row.load_cap, open_orders=row.open_orders, working_hours=hours,
                leave=(r.Leave(row.leave_start, row.leave_end, row.leave_kind),) if row.leave_start else (),
                active=row.active,
                skills=(r.Skill(row.skill_category, row.certificate, row.certificate_no, row.certificate_expires),)
                if row.skill_category is not None else (),
                last_order_at=_utc(row.last_order_at)))
        distance = {e.id: r.distance_to(e, order, now, self.cfg)[0] for e in out}
        eligible = [e.id for e in out
                    if not r.exclusions(e, order, now, self.cfg, distance[e.id], radius_km=radius_km)]
        if nearest is not None and len(eligible) > nearest:
            eligible.sort(key=lambda i: (distance[i], i))
            dropped = set(eligible[nearest:])
            eligible = eligible[:nearest]
            out = [e for e in out if e.id not in dropped]
        if not eligible:
            return out
        record = await self.records(conn, eligible)
        return [replace(e, **record[e.id]) if e.id in record else e for e in out]

    async def records(self, conn: AsyncConnection, ids: list[int]) -> dict[int, dict[str, Any]]:
        """Per engineer: ``completed``, ``first_time_fixed``, ``surveyed``, ``satisfied`` over their
        last :data:`RECORD_WINDOW` completed orders (counted in the database: one row each).

        Plain SQL text on purpose: the statement's shape depends on the number of engineers, and
        compiling it through the expression language cost ~4 ms per decision (more than running
        it); the text is the same for both databases."""
        arms = " UNION ALL ".join(_RECORD_ARM.format(i=i) for i in range(len(ids)))
        q = text(f"SELECT engineer_id, count(*), sum(CASE WHEN visits = 1 THEN 1 ELSE 0 END), sum(surveyed), "
                 f"sum(satisfied) FROM ({arms}) AS recent GROUP BY engineer_id")
        params: dict[str, Any] = {f"e{i}": eid for i, eid in enumerate(ids)}
        params.update(cancelled=CANCELLED, n=RECORD_WINDOW)
        out: dict[int, dict[str, Any]] = {eid: {"completed": 0, "first_time_fixed": 0, "surveyed": 0,
                                                "satisfied": 0} for eid in ids}
        for eid, completed, fixed, n_surveyed, satisfied in await conn.execute(q, params):
            out[eid] = {"completed": int(completed), "first_time_fixed": int(fixed or 0),
                        "surveyed": int(n_surveyed or 0), "satisfied": int(satisfied or 0)}
        return out

    # ---- shops ----------------------------------------------------------------------------------

    async def shops(self, conn: AsyncConnection, order: r.OrderFacts, radius_km: float) -> list[r.ShopFacts]:
        """Active shops within the bounding box of ``radius_km`` with their open orders."""
        if order.location is None:
            return []
        sh, dd = ServiceShop.__table__, DispatchDecision.__table__
        lat0, lat1, lon0, lon1 = bounding_box(order.location, radius_km)
        rows = (await conn.execute(select(sh).where(sh.c.active.is_(True), sh.c.lat.between(lat0, lat1),
                                                    sh.c.lon.between(lon0, lon1)))).all()
        if not rows:
            return []
        later = dd.alias("later")
        latest = (select(func.max(later.c.id)).where(later.c.order_id == dd.c.order_id)
                  .correlate(dd).scalar_subquery())
        counts = dict((await conn.execute(
            select(dd.c.shop_id, func.count()).select_from(dd.join(_wo, _wo.c.id == dd.c.order_id))
            .where(dd.c.shop_id.in_([row.id for row in rows]), _wo.c.status.not_in(CLOSED_STATUSES),
                   dd.c.id == latest)
            .group_by(dd.c.shop_id))).all())
        return [r.ShopFacts(id=row.id, name=row.name, region=row.region, position=_point(row.lat, row.lon),
                            categories=tuple(row.categories or ()), capacity=row.capacity,
                            open_orders=counts.get(row.id, 0), active=row.active) for row in rows]

    # ---- the whole preview ----------------------------------------------------------------------

    async def preview(self, conn: AsyncConnection, order_id: int, now: dt.datetime,
                      *, widen: bool = True) -> Preview | None:
        """The rules' evaluation of ``order_id`` at ``now`` (and, when nobody matches and
        ``widen``, the widened search). None if there is no such order. Reads only."""
        found = await self.order_facts(conn, order_id)
        if found is None:
            return None
        order, status = found
        people: dict[int, Person] = {}
        evaluation = r.evaluate(order, await self.engineers(conn, order, now, self.cfg.radius_km, people),
                                now, self.cfg)
        tiers = None
        if widen and evaluation.winner is None and not evaluation.blocked:
            far = await self.engineers(conn, order, now, self.cfg.search_km, people, nearest=WIDEN_NEAREST)
            tiers = r.widen(order, far, await self.shops(conn, order, self.cfg.search_km), now, self.cfg)
        return Preview(order, status, evaluation, tiers, people)
