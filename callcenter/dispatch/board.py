"""The dispatcher's board (派单台), read side: what waits for an engineer, what waits for the
engineer's answer, what runs late by the SLA clocks; and refusals counted per engineer.

Core queries on one connection, masked on the way out (names 张*, addresses to the district,
numbers in free text). Built for 100,000 open orders: every section first picks one page of
order ids from ``work_orders`` alone — ``ix_work_orders_status_urgency`` narrows to one status,
the database sorts what is left (urgency, then time) and stops at the page — and only then joins
what the page shows (appliance, intake, address, engineer, the latest dispatch decision) for
those few ids. The open SLA alerts come from ``ix_sla_alerts_open`` (``cleared_at IS NULL``).

Sections:

* **undispatched** — on-site orders (上门维修 / 安装 / 退换货) 待处理 with neither an engineer nor
  a partner shop. ``auto``: automatic dispatch is still due (``auto_dispatch_due_at`` set), else
  the order is in the dispatcher's queue (the rules found nobody, an engineer refused, or it
  predates automatic dispatch). Most urgent first (特急, 紧急, 普通), then the longest waiting.
* **awaiting** — 已派单 to an engineer who has not accepted yet: the earliest acceptance deadline
  first (orders dispatched without one last, oldest first). Orders with a partner shop are not
  waiting for anyone's acceptance here.
* **at_risk** — open SLA alerts of open orders, one row per order and clock at its highest level
  (a breached clock's warning is not repeated): most urgent first, then the earliest deadline.
  Read from the open alerts, then their orders by primary key, and sorted here: it costs what
  the open alerts number, whatever the number of orders.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from callcenter.db.models import Address, Appliance, User, WorkOrder
from callcenter.db.oversight import SlaAlert
from callcenter.db.records import IntakeRecord
from callcenter.db.workforce import DispatchDecision, DispatchRefusal, ServiceShop
from callcenter.dispatch.engine import EXCLUSION_LABELS
from callcenter.dispatch.rules import REFUSAL_REASONS
from callcenter.orders.states import CLOSED_STATUSES, DISPATCHED, ONSITE_KINDS, PENDING
from callcenter.privacy import mask_address, mask_name, mask_numbers_in_text
from callcenter.sla.rules import LABELS, aware, seconds_overdue

SECTIONS = ("undispatched", "awaiting", "at_risk")
URGENCIES = ("特急", "紧急", "普通")
# How many exclusion reasons a decision's summary names.
TOP_REASONS = 3

# Exclusion codes → a short label for counting: the engine's (its queue reason counts the same
# way), and the two that block an order whatever the engineer.
REASON_LABELS = {**EXCLUSION_LABELS, "category_unknown": "未注明产品品类", "order_unlocated": "客户地址未定位"}

_wo, _us = WorkOrder.__table__, User.__table__
_dd, _rf, _al = DispatchDecision.__table__, DispatchRefusal.__table__, SlaAlert.__table__


def _urgency_rank(column: Any) -> Any:
    """特急 0, 紧急 1, anything else (普通) 2."""
    return case((column == "特急", 0), (column == "紧急", 1), else_=2)


# ---- pure helpers -----------------------------------------------------------------------------

def reason_counts(candidates: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Exclusion codes over a decision's candidates, commonest first (ties: the code), each
    ``{"code", "label", "count"}``. A candidate counts once per code."""
    c: Counter[str] = Counter()
    for cand in candidates:
        c.update({e.get("code", "") for e in cand.get("exclusions") or () if e.get("code")})
    ordered = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"code": code, "label": REASON_LABELS.get(code, code), "count": n} for code, n in ordered]


def decision_summary(d: Mapping[str, Any], people: Mapping[int, tuple[str, str | None]],
                     shops: Mapping[int, str], radius_km: float) -> dict[str, Any]:
    """What the board says of a dispatch decision row (``dispatch_decisions``): who was chosen,
    or that nobody was within ``radius_km`` and the commonest reasons why. Pure; names masked."""
    candidates = d.get("candidates") or []
    counts = reason_counts(candidates)
    engineer_id, shop_id = d.get("engineer_id"), d.get("shop_id")
    engineer = None
    if engineer_id is not None:
        name, staff_no = people.get(engineer_id, ("", None))
        engineer = {"id": engineer_id, "name": mask_name(name), "staff_no": staff_no}
    if engineer is not None:
        text = "派给 " + " · ".join(x for x in (engineer["name"], engineer["staff_no"]) if x)
    elif shop_id is not None:
        text = f"派给合作网点 {shops.get(shop_id, '')}".rstrip()
    elif not candidates:
        text = f"{radius_km:g}公里内没有工程师"
    else:
        eligible = sum(1 for c in candidates if c.get("eligible"))
        text = (f"{radius_km:g}公里内无可派工程师（{len(candidates)}人均不符合）" if not eligible
                else f"{radius_km:g}公里内无人被选中")
    if counts and engineer is None and shop_id is None:
        text += "：" + "，".join(f"{r['label']} {r['count']}人" for r in counts[:TOP_REASONS])
    return {"id": d["id"], "at": aware(d["at"]), "mode": d["mode"], "matched": engineer is not None or shop_id is not None,
            "engineer": engineer, "shop_id": shop_id, "shop_name": shops.get(shop_id) if shop_id is not None else None,
            "reason": mask_numbers_in_text(d.get("reason") or ""), "candidates": len(candidates),
            "reasons": counts[:TOP_REASONS], "summary": text}


# ---- queries ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BoardPage:
    section: str | None  # only this section's items (None: every section, first page)
    page: int = 1
    page_size: int = 50
    urgency: str | None = None


def _undispatched_where(urgency: str | None) -> list[Any]:
    w = [_wo.c.status == PENDING, _wo.c.engineer_id.is_(None), _wo.c.shop_id.is_(None),
         _wo.c.service_type.in_(ONSITE_KINDS)]
    return w + ([_wo.c.urgency == urgency] if urgency else [])


def _awaiting_where(urgency: str | None) -> list[Any]:
    w = [_wo.c.status == DISPATCHED, _wo.c.accepted_at.is_(None), _wo.c.engineer_id.is_not(None)]
    return w + ([_wo.c.urgency == urgency] if urgency else [])


@dataclass(frozen=True, slots=True)
class RiskRow:
    """One clock of one open order with open alerts, at its highest level."""

    order_id: int
    clock: str
    level: str
    alert_id: int
    deadline: dt.datetime
    raised_at: dt.datetime
    urgency: str


# Open alerts, one row per order and clock: "breach" sorts before "warning", so min() is the
# highest level; both levels of a clock share its deadline.
_OPEN_RISKS = (select(_al.c.order_id, _al.c.clock, func.min(_al.c.level), func.max(_al.c.id),
                      func.min(_al.c.deadline), func.max(_al.c.raised_at))
               .where(_al.c.cleared_at.is_(None)).group_by(_al.c.order_id, _al.c.clock))
# Orders looked up per statement (SQLite's limit on parameters is far above).
_CHUNK = 1000


class DispatchBoard:
    """Reads the board and the refusal figures (``engine``: the app's AsyncEngine)."""

    def __init__(self, engine: AsyncEngine, radius_km: float) -> None:
        self.engine = engine
        self.radius_km = radius_km

    async def board(self, want: BoardPage, now: dt.datetime) -> dict[str, Any]:
        """The counts of every section and the items of ``want.section`` (or the first page of
        each). ``now``: aware UTC, for waiting times and minutes left."""
        sections = (want.section,) if want.section else SECTIONS
        page = want.page if want.section else 1
        offset = (page - 1) * want.page_size
        async with self.engine.connect() as conn:
            risks = await self._risks(conn, want.urgency)
            counts = await self._counts(conn, want.urgency, now, risks)
            out: dict[str, Any] = {"now": now, "radius_km": self.radius_km, "counts": counts, "urgency": want.urgency}
            for name in SECTIONS:
                if name not in sections:
                    out[name] = None
                    continue
                if name == "at_risk":
                    items = await self._at_risk(conn, risks[offset:offset + want.page_size], now)
                elif name == "awaiting":
                    items = await self._awaiting(conn, want.urgency, offset, want.page_size, now)
                else:
                    items = await self._undispatched(conn, want.urgency, offset, want.page_size, now)
                out[name] = {"items": items, "total": counts[name], "page": page, "page_size": want.page_size}
        return out

    async def _counts(self, conn: AsyncConnection, urgency: str | None, now: dt.datetime,
                      risks: Sequence[RiskRow]) -> dict[str, int]:
        auto = func.count().filter(_wo.c.auto_dispatch_due_at.is_not(None))
        undispatched, auto_pending = (await conn.execute(select(func.count(), auto).select_from(_wo)
                                                         .where(*_undispatched_where(urgency)))).one()
        overdue = func.count().filter(_wo.c.accept_due_at <= now)
        awaiting, late = (await conn.execute(select(func.count(), overdue).select_from(_wo)
                                             .where(*_awaiting_where(urgency)))).one()
        return {"undispatched": undispatched, "auto_pending": auto_pending, "queued": undispatched - auto_pending,
                "awaiting": awaiting, "awaiting_overdue": late,
                "at_risk": len(risks), "breached": sum(1 for x in risks if x.level == "breach")}

    async def _risks(self, conn: AsyncConnection, urgency: str | None) -> list[RiskRow]:
        """Every open order's clocks with open alerts, most urgent first, then the earliest
        deadline. Read from the open alerts (``ix_sla_alerts_open``), then their orders by primary
        key: bounded by the alerts open, not by the orders."""
        alerts = (await conn.execute(_OPEN_RISKS)).all()
        ids = sorted({a[0] for a in alerts})
        orders: dict[int, tuple[str, str]] = {}
        for i in range(0, len(ids), _CHUNK):
            q = select(_wo.c.id, _wo.c.urgency, _wo.c.status).where(_wo.c.id.in_(ids[i:i + _CHUNK]))
            orders.update((oid, (u, st)) for oid, u, st in await conn.execute(q))
        out = []
        for order_id, clock, level, alert_id, deadline, raised_at in alerts:
            o = orders.get(order_id)
            if o is None or o[1] in CLOSED_STATUSES or (urgency and o[0] != urgency):
                continue
            out.append(RiskRow(order_id, clock, level, alert_id, aware(deadline), aware(raised_at), o[0]))  # type: ignore[arg-type]
        rank = {u: i for i, u in enumerate(URGENCIES)}
        out.sort(key=lambda x: (rank.get(x.urgency, len(URGENCIES) - 1), x.deadline, x.alert_id))
        return out

    # ---- sections -------------------------------------------------------------------------------

    async def _undispatched(self, conn: AsyncConnection, urgency: str | None, offset: int, limit: int,
                            now: dt.datetime) -> list[dict[str, Any]]:
        ids = list((await conn.execute(
            select(_wo.c.id).where(*_undispatched_where(urgency))
            .order_by(_urgency_rank(_wo.c.urgency), _wo.c.created_at, _wo.c.id)
            .limit(limit).offset(offset))).scalars())
        if not ids:
            return []
        rows = await self._orders(conn, ids)
        decisions = await self._latest_decisions(conn, ids)
        refusals = await self._refusals_of(conn, ids)
        people, shops = await self._names(conn, {d["engineer_id"] for d in decisions.values() if d["engineer_id"]}
                                          | {r["engineer_id"] for rs in refusals.values() for r in rs},
                                          {d["shop_id"] for d in decisions.values() if d["shop_id"]})
        out = []
        for oid in ids:
            o = rows[oid]
            created = aware(o.created_at)
            d = decisions.get(oid)
            refused = refusals.get(oid, [])
            last_refusal = refused[-1] if refused else None
            out.append({
                **_order_json(o), "created_at": created,
                "waiting_s": max(0, int((now - created).total_seconds())) if created else None,
                "auto": o.auto_dispatch_due_at is not None, "auto_dispatch_due_at": aware(o.auto_dispatch_due_at),
                "last_decision": decision_summary(d, people, shops, self.radius_km) if d else None,
                "refusals": len(refused),
                "last_refusal": None if last_refusal is None else {
                    "engineer": _person(people, last_refusal["engineer_id"]), "at": aware(last_refusal["at"]),
                    "reason": last_refusal["reason"], "timed_out": bool(last_refusal["timed_out"])},
            })
        return out

    async def _awaiting(self, conn: AsyncConnection, urgency: str | None, offset: int, limit: int,
                        now: dt.datetime) -> list[dict[str, Any]]:
        ids = list((await conn.execute(
            select(_wo.c.id).where(*_awaiting_where(urgency))
            .order_by(_wo.c.accept_due_at.is_(None), _wo.c.accept_due_at, _wo.c.dispatched_at, _wo.c.id)
            .limit(limit).offset(offset))).scalars())
        if not ids:
            return []
        rows = await self._orders(conn, ids)
        people, shops = await self._names(conn, {r.engineer_id for r in rows.values() if r.engineer_id},
                                          {r.shop_id for r in rows.values() if r.shop_id})
        out = []
        for oid in ids:
            o = rows[oid]
            due = aware(o.accept_due_at)
            out.append({
                **_order_json(o), "created_at": aware(o.created_at),
                "engineer": _person(people, o.engineer_id) if o.engineer_id else None,
                "shop_id": o.shop_id, "shop_name": shops.get(o.shop_id) if o.shop_id else None,
                "dispatched_at": aware(o.dispatched_at), "accept_due_at": due,
                "seconds_left": None if due is None else int((due - now).total_seconds()),
            })
        return out

    async def _at_risk(self, conn: AsyncConnection, page: Sequence[RiskRow], now: dt.datetime) -> list[dict[str, Any]]:
        if not page:
            return []
        rows = await self._orders(conn, sorted({x.order_id for x in page}))
        people, _ = await self._names(conn, {r.engineer_id for r in rows.values() if r.engineer_id}, set())
        out = []
        for x in page:
            o = rows[x.order_id]
            out.append({
                **_order_json(o), "alert_id": x.alert_id, "clock": x.clock, "label": LABELS.get(x.clock, x.clock),
                "level": x.level, "deadline": x.deadline, "raised_at": x.raised_at,
                "seconds_overdue": seconds_overdue(x.deadline, now),
                "engineer": _person(people, o.engineer_id) if o.engineer_id else None,
            })
        return out

    # ---- what a page of orders shows --------------------------------------------------------

    async def _orders(self, conn: AsyncConnection, ids: Sequence[int]) -> dict[int, Any]:
        """The page's orders with their category and district (one query, by primary key)."""
        ap, it, ad = Appliance.__table__, IntakeRecord.__table__, Address.__table__
        first_address = (select(func.min(ad.c.id)).where(ad.c.customer_id == _wo.c.customer_id)
                         .correlate(_wo).scalar_subquery())
        q = (select(_wo.c.id, _wo.c.number, _wo.c.status, _wo.c.urgency, _wo.c.service_type, _wo.c.created_at,
                    _wo.c.engineer_id, _wo.c.shop_id, _wo.c.dispatched_at, _wo.c.accept_due_at,
                    _wo.c.auto_dispatch_due_at, _wo.c.appointment_start, _wo.c.appointment_end,
                    func.coalesce(func.nullif(ap.c.category, ""), it.c.category, "").label("category"),
                    ad.c.province, ad.c.city, ad.c.district)
             .select_from(_wo.outerjoin(ap, ap.c.id == _wo.c.appliance_id)
                          .outerjoin(it, it.c.id == _wo.c.intake_id)
                          .outerjoin(ad, ad.c.id == func.coalesce(_wo.c.address_id, first_address)))
             .where(_wo.c.id.in_(list(ids))))
        return {r.id: r for r in await conn.execute(q)}

    async def _latest_decisions(self, conn: AsyncConnection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The latest dispatch decision of each order (``ix_dispatch_decisions_order_at``)."""
        latest = (select(func.max(_dd.c.id)).where(_dd.c.order_id.in_(list(ids))).group_by(_dd.c.order_id)
                  .scalar_subquery())
        rows = await conn.execute(select(_dd).where(_dd.c.id.in_(latest)))
        return {r.order_id: dict(r._mapping) for r in rows}

    async def _refusals_of(self, conn: AsyncConnection, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        rows = await conn.execute(select(_rf.c.order_id, _rf.c.engineer_id, _rf.c.at, _rf.c.reason, _rf.c.timed_out)
                                  .where(_rf.c.order_id.in_(list(ids))).order_by(_rf.c.at, _rf.c.id))
        for r in rows:
            out.setdefault(r.order_id, []).append(dict(r._mapping))
        return out

    async def _names(self, conn: AsyncConnection, user_ids: set[int],
                     shop_ids: set[int]) -> tuple[dict[int, tuple[str, str | None]], dict[int, str]]:
        people: dict[int, tuple[str, str | None]] = {}
        if user_ids:
            for r in await conn.execute(select(_us.c.id, _us.c.display_name, _us.c.staff_no)
                                        .where(_us.c.id.in_(sorted(user_ids)))):
                people[r.id] = (r.display_name or "", r.staff_no)
        shops: dict[int, str] = {}
        if shop_ids:
            sh = ServiceShop.__table__
            shops = {r.id: r.name for r in await conn.execute(select(sh.c.id, sh.c.name)
                                                               .where(sh.c.id.in_(sorted(shop_ids))))}
        return people, shops

    # ---- refusals -------------------------------------------------------------------------------

    async def refusals(self, since: dt.datetime, until: dt.datetime) -> dict[str, Any]:
        """Refusals and timeouts per engineer in ``[since, until)``, most first, with their reasons."""
        q = (select(_rf.c.engineer_id, _rf.c.reason, _rf.c.timed_out, func.count(), func.max(_rf.c.at))
             .where(_rf.c.at >= since, _rf.c.at < until)
             .group_by(_rf.c.engineer_id, _rf.c.reason, _rf.c.timed_out))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
            people, _ = await self._names(conn, {r[0] for r in rows}, set())
        per: dict[int, dict[str, Any]] = {}
        for engineer_id, reason, timed_out, n, last in rows:
            e = per.setdefault(engineer_id, {
                **_person(people, engineer_id), "engineer_id": engineer_id, "refused": 0, "timed_out": 0, "total": 0,
                "reasons": {k: 0 for k in REFUSAL_REASONS}, "last_at": None})
            e["timed_out" if timed_out else "refused"] += n
            e["total"] += n
            if not timed_out:
                e["reasons"][reason] = e["reasons"].get(reason, 0) + n
            last = aware(last)
            if e["last_at"] is None or (last is not None and last > e["last_at"]):
                e["last_at"] = last
        items = sorted(per.values(), key=lambda e: (-e["total"], -e["timed_out"], e["engineer_id"]))
        return {"since": since, "until": until, "engineers": items,
                "total": sum(e["total"] for e in items), "timed_out": sum(e["timed_out"] for e in items)}


def _person(people: Mapping[int, tuple[str, str | None]], user_id: int) -> dict[str, Any]:
    name, staff_no = people.get(user_id, ("", None))
    return {"id": user_id, "name": mask_name(name), "staff_no": staff_no}


def _order_json(o: Any) -> dict[str, Any]:
    return {"order_id": o.id, "number": o.number, "status": o.status, "urgency": o.urgency,
            "service_type": o.service_type, "category": o.category or "",
            "address": mask_address(o.province or "", o.city or "", o.district or ""),
            "window": [aware(o.appointment_start), aware(o.appointment_end)] if o.appointment_start else None}
