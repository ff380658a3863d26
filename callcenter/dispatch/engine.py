"""Dispatch in motion: the automatic dispatch of new orders, manual dispatch and re-dispatch,
refusals and the 15-minute acceptance timeout — never assigning an order twice and never pushing
an engineer over their cap.

**Locks.** Every assignment runs in one transaction that writes before it decides:

1. the order's row is claimed with a conditional ``UPDATE … RETURNING`` (automatic dispatch:
   still 待处理, no engineer, no shop, still queued for dispatch) or read ``FOR UPDATE`` (manual,
   with the version the dispatcher read): a second dispatcher or instance waits, then finds the
   order taken (nothing written, 409 for a person);
2. the engineer's profile row is locked by bumping its version (``UPDATE engineer_profiles …``,
   created with the defaults if the engineer has none), so assignments to one engineer run one
   after another;
3. only then are their open orders counted: under that lock the count is exact, and an engineer
   at the cap is refused (automatic dispatch evaluates again without them; a dispatcher gets 409
   ``at_capacity``).

Locks are always taken in that order (order, then engineer), so two transactions cannot wait
for each other. On SQLite the first write takes the database's write lock, which serialises the
same steps.

**The rules run outside the transaction** (``CandidateLoader.preview`` on its own connection, a
few milliseconds): the write transaction holds its locks only for the claim, the recount and the
inserts. The price is that the evaluation may be a moment old; step 3 catches the one thing that
matters (the winner filled up meanwhile), anything else is what a dispatcher reading the same
screen would have seen.

**The loop** (:meth:`DispatchEngine.run`): every ``CALLCENTER_DISPATCH_INTERVAL`` seconds, or at
once when woken (:meth:`DispatchEngine.nudge`, on a new order or a refusal), it times out the
orders whose engineer did not answer within 15 minutes and dispatches every order due. Several
instances may run it: the conditional claims make a second attempt a no-op.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.audit import audit
from callcenter.auth.identity import CurrentUser
from callcenter.clock import Clock, utcnow
from callcenter.db.models import User, WorkOrder
from callcenter.db.rows import insert_row
from callcenter.db.workforce import DispatchDecision, DispatchRefusal, EngineerProfile, ServiceShop
from callcenter.dispatch import rules as r
from callcenter.dispatch.candidates import CandidateLoader, Preview
from callcenter.dispatch.timing import TIMEOUT_NOTE, TIMEOUT_REASON, accept_deadline
from callcenter.errors import Conflict, ValidationFailed
from callcenter.geo.geocoding import Geocoder
from callcenter.orders import states
from callcenter.orders.services import actor_of
from callcenter.orders.store import add_event, apply, check_version, facts_for, load_order, supersede_open

log = logging.getLogger("callcenter.dispatch")

_wo, _pr = WorkOrder.__table__, EngineerProfile.__table__
# Who hears of every dispatch change (the board and the alerts list).
WATCHERS = ("dispatcher", "supervisor")
# Orders handled per loop tick (each queue); the rest wait for the next tick, which follows at
# once when a tick was full.
BATCH = 200
# Automatic dispatch re-evaluates this many times when its winner fills up meanwhile.
ATTEMPTS = 3
# On PostgreSQL a loop claims its batch of due orders for this long (their due time moves
# ahead), so the loops of several instances share a burst instead of racing for the same orders;
# orders a loop could not finish (its instance died) are due again after it.
LEASE = dt.timedelta(seconds=60)


# Short labels of the exclusion codes (callcenter.dispatch.rules.REASONS) for one-line summaries.
EXCLUSION_LABELS = {
    "inactive": "停止派单", "refused": "已拒单", "no_skill": "无此品类技能", "no_certificate": "缺少证书",
    "certificate_expired": "证书过期", "no_position": "位置未知", "too_far": "距离过远",
    "at_capacity": "工单已满", "on_leave": "休假", "off_duty": "不在工作时间",
}


class Mailbox(Protocol):
    async def post(self, user_id: int, message: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a dispatch did to the order."""

    order_id: int
    number: str
    status: str
    version: int
    engineer_id: int | None = None
    shop_id: int | None = None
    decision_id: int | None = None
    accept_due_at: dt.datetime | None = None

    @property
    def queued(self) -> bool:
        """Nobody was chosen: the order waits in the dispatcher's queue."""
        return self.engineer_id is None and self.shop_id is None and self.status == states.PENDING

    def to_json(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "number": self.number, "decision_id": self.decision_id,
                "status": self.status, "engineer_id": self.engineer_id, "shop_id": self.shop_id,
                "version": self.version, "queued": self.queued,
                "accept_due_at": self.accept_due_at.isoformat() if self.accept_due_at else None}


@dataclass(frozen=True, slots=True)
class PassResult:
    dispatched: int = 0
    queued: int = 0
    timed_out: int = 0
    # Orders another instance or person had already handled.
    skipped: int = 0


class _Full(Exception):
    """The chosen engineer reached their cap while we evaluated (re-evaluate)."""

    def __init__(self, open_orders: int, cap: int) -> None:
        super().__init__(open_orders, cap)
        self.open_orders, self.cap = open_orders, cap


def queue_reason(evaluation: r.Evaluation) -> str:
    """Why nobody was chosen, in one line for the dispatcher (the commonest exclusions)."""
    if evaluation.blocked:
        return "；".join(e.reason for e in evaluation.blocked)
    if not evaluation.candidates:
        return f"{evaluation.radius_km:g}公里内没有工程师"
    counts = Counter(e.code for a in evaluation.candidates for e in a.exclusions)
    top = "、".join(f"{EXCLUSION_LABELS.get(code, code)}{n}人" for code, n in counts.most_common(3))
    return f"{evaluation.radius_km:g}公里内{len(evaluation.candidates)}名工程师均不符合（{top}）"


def _decision_row(order_id: int, evaluation: r.Evaluation, now: dt.datetime, *, mode: str,
                  engineer_id: int | None = None, shop_id: int | None = None,
                  decided_by: int | None = None, reason: str = "") -> DispatchDecision:
    chosen = next((a for a in evaluation.candidates if a.engineer_id == engineer_id), None) if engineer_id else None
    return DispatchDecision(
        order_id=order_id, at=now, mode=mode, engineer_id=engineer_id, shop_id=shop_id,
        candidates=[a.to_json() for a in evaluation.candidates],
        score=chosen.score.to_json() if chosen is not None and chosen.score is not None else {},
        rule_version=evaluation.rule_version, weights=evaluation.weights.as_dict(),
        decided_by=decided_by, reason=reason)


class DispatchEngine:
    """Dispatches orders through :mod:`callcenter.dispatch.rules` and records every decision.

    ``clock`` is read when a method is not given ``now`` (tests pass ``now`` to move time)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], loader: CandidateLoader,
                 mailbox: Mailbox | None = None, *, clock: Clock = utcnow) -> None:
        self.sessionmaker = sessionmaker
        self.loader = loader
        self.mailbox = mailbox
        self.clock = clock
        self._wake = asyncio.Event()
        # Wakes the loops of the other instances (set by the app when it has Redis).
        self.publish: Callable[[], None] | None = None

    # ---- reading --------------------------------------------------------------------------------

    async def _preview(self, order_id: int, now: dt.datetime) -> Preview | None:
        async with self.sessionmaker() as s:
            return await self.loader.preview(await s.connection(), order_id, now, widen=False)

    # ---- the engineer's capacity ----------------------------------------------------------------

    @staticmethod
    async def _reserve(s: AsyncSession, engineer_id: int, order_id: int) -> None:
        """Lock the engineer's profile row and check they can take one more order (raises
        :class:`_Full`). An engineer without a profile gets the default one."""
        lock = update(_pr).where(_pr.c.user_id == engineer_id).values(version=_pr.c.version + 1).returning(_pr.c.load_cap)
        cap = (await s.execute(lock)).scalar_one_or_none()
        if cap is None:
            s.add(EngineerProfile(user_id=engineer_id))
            await s.flush()
            cap = (await s.execute(lock)).scalar_one()
        open_orders = (await s.execute(
            select(func.count()).select_from(_wo)
            .where(_wo.c.engineer_id == engineer_id, _wo.c.id != order_id,
                   _wo.c.status.not_in(states.CLOSED_STATUSES)))).scalar_one()
        if open_orders >= cap:
            raise _Full(open_orders, cap)

    # ---- automatic dispatch ---------------------------------------------------------------------

    async def auto(self, order_id: int, now: dt.datetime | None = None, *, actor: CurrentUser | None = None,
                   queued_only: bool = True) -> Outcome | None:
        """Let the rules dispatch ``order_id``: to the winner, or to the dispatcher's queue when
        nobody matches. ``queued_only``: only while the order is due for automatic dispatch (the
        loop); a dispatcher asking for it (``actor``) may run it on any undispatched order.
        None when the order is not (or no longer) undispatched."""
        now = now or self.clock()
        for _ in range(ATTEMPTS):
            preview = await self._preview(order_id, now)
            if preview is None:
                return None
            try:
                outcome = await self._auto_once(preview, now, actor, queued_only)
            except _Full:
                continue  # the winner filled up meanwhile: evaluate again
            if outcome is not None:
                await self._announce(outcome)
            return outcome
        log.warning("dispatch: order %d: the winner filled up %d times; left for the next tick", order_id, ATTEMPTS)
        return None

    async def _auto_once(self, p: Preview, now: dt.datetime, actor: CurrentUser | None,
                         queued_only: bool) -> Outcome | None:
        evaluation, winner = p.evaluation, p.evaluation.winner
        conditions = [_wo.c.id == p.order.id, _wo.c.status == states.PENDING, _wo.c.engineer_id.is_(None),
                      _wo.c.shop_id.is_(None), _wo.c.service_type.in_(states.ONSITE_KINDS)]
        if queued_only:
            conditions.append(_wo.c.auto_dispatch_due_at.is_not(None))
        async with self.sessionmaker() as s, s.begin():
            claimed = (await s.execute(
                update(_wo).where(*conditions)
                .values(version=_wo.c.version + 1, updated_at=now, auto_dispatch_due_at=None)
                .returning(_wo.c.version, _wo.c.number))).first()
            if claimed is None:
                # Not (or no longer) undispatched: out of the automatic queue, so the loop stops
                # looking at it (a no-op when another instance just dispatched it).
                await s.execute(update(_wo).where(_wo.c.id == p.order.id, _wo.c.auto_dispatch_due_at.is_not(None),
                                                  _wo.c.status != states.PENDING)
                                .values(auto_dispatch_due_at=None))
                return None
            version, number = claimed
            actor_id = actor.id if actor is not None else None
            if winner is None:
                reason = queue_reason(evaluation)
                decision = _decision_row(p.order.id, evaluation, now, mode="auto", decided_by=actor_id,
                                         reason=reason)
                await insert_row(s, decision)
                add_event(s, p.order.id, at=now, user_id=actor_id, action="dispatch_queued",
                          note=f"自动派单未找到工程师，转人工派单：{reason}")
                audit(s, user_id=actor_id, action="dispatch", entity="work_order", entity_id=p.order.id, now=now,
                      detail={"mode": "auto", "decision_id": decision.id, "engineer_id": None, "queued": True})
                return Outcome(p.order.id, number, states.PENDING, version, decision_id=decision.id)
            await self._reserve(s, winner.engineer_id, p.order.id)
            due = accept_deadline(now)
            await s.execute(update(_wo).where(_wo.c.id == p.order.id).values(
                status=states.DISPATCHED, engineer_id=winner.engineer_id, dispatched_at=now,
                accepted_at=None, contacted_at=None, accept_due_at=due))
            decision = _decision_row(p.order.id, evaluation, now, mode="auto", engineer_id=winner.engineer_id,
                                     decided_by=actor_id)
            await insert_row(s, decision)
            total = winner.score.total if winner.score is not None else 0.0
            add_event(s, p.order.id, at=now, user_id=actor_id, action="assigned", frm=states.PENDING,
                      to=states.DISPATCHED,
                      note=f"自动派单：{winner.distance_km:.1f}公里，综合得分{total:.3f}")
            audit(s, user_id=actor_id, action="dispatch", entity="work_order", entity_id=p.order.id, now=now,
                  detail={"mode": "auto", "decision_id": decision.id, "engineer_id": winner.engineer_id})
            return Outcome(p.order.id, number, states.DISPATCHED, version, engineer_id=winner.engineer_id,
                           decision_id=decision.id, accept_due_at=due)

    # ---- manual dispatch ------------------------------------------------------------------------

    async def manual(self, order_id: int, actor: CurrentUser, *, engineer_id: int | None = None,
                     shop_id: int | None = None, reason: str, version: int | None = None,
                     now: dt.datetime | None = None) -> Outcome:
        """A dispatcher dispatches (or re-dispatches) the order to an engineer or a partner shop,
        with a reason. 409 at the engineer's cap, on a stale version or a state that takes no
        dispatch; 422 for an engineer or shop that cannot take orders."""
        if (engineer_id is None) == (shop_id is None):
            raise ValidationFailed("engineer_id", "须指定工程师或合作网点之一 (give exactly one of engineer_id, shop_id)")
        now = now or self.clock()
        preview = await self._preview(order_id, now)
        async with self.sessionmaker() as s, s.begin():
            order = await load_order(s, order_id, actor, "order.assign", lock=True)
            version = check_version(order, version)
            if engineer_id is not None:
                engineer = await s.get(User, engineer_id)
                if engineer is None or engineer.role != "engineer" or not engineer.active:
                    raise ValidationFailed("engineer_id", "不是在岗的服务工程师 (not an active engineer)")
                if engineer_id == order.engineer_id:
                    raise Conflict("工单已派给该工程师 (the order is already with this engineer)",
                                   code="already_assigned", engineer_id=engineer_id)
            else:
                shop = await s.get(ServiceShop, shop_id)
                if shop is None or not shop.active:
                    raise ValidationFailed("shop_id", "不是合作中的服务网点 (not an active partner shop)")
                if order.service_type not in states.ONSITE_KINDS:
                    raise Conflict(f"{order.service_type}工单不能派给网点 (a {order.service_type} order "
                                   f"cannot go to a shop)", code="illegal_transition", frm=order.status)
            to = states.DISPATCHED if order.service_type != states.CARRY_IN else order.status
            rule = states.find_rule(order, to)
            if not rule.assigns:
                raise Conflict(f"{order.status}状态不能派单 (an order that is {order.status} cannot be dispatched)",
                               code="illegal_transition", frm=order.status, to=to)
            # The state machine asks for someone to send: a partner shop counts (its engineers
            # are not ours, so there is no engineer id to give).
            facts = await facts_for(s, order, reason=reason, engineer_id=engineer_id or -1)
            decision = states.check_transition(order, to, actor_of(actor), facts, now)
            if engineer_id is not None:
                try:
                    await self._reserve(s, engineer_id, order.id)
                except _Full as full:
                    raise Conflict(f"该工程师未完成工单{full.open_orders}单，已达上限{full.cap}单 "
                                   f"(the engineer already holds {full.open_orders} open orders, the cap is {full.cap})",
                                   code="at_capacity", engineer_id=engineer_id, open_orders=full.open_orders,
                                   cap=full.cap) from None
            due = accept_deadline(now) if engineer_id is not None and to == states.DISPATCHED else None
            values = decision.values({})
            values.update(engineer_id=engineer_id, shop_id=shop_id, dispatched_at=now, accepted_at=None,
                          contacted_at=None, accept_due_at=due, auto_dispatch_due_at=None)
            if order.status == states.BOOKED:
                values.update(appointment_start=None, appointment_end=None)
                await supersede_open(s, order.id)
            frm, previous, previous_shop = order.status, order.engineer_id, order.shop_id
            new_version = await apply(s, order, version, values, now)
            evaluation = preview.evaluation if preview is not None else r.Evaluation(
                order.id, now, 0.0, r.DEFAULT_WEIGHTS, (), ())
            row = _decision_row(order.id, evaluation, now, mode="manual", engineer_id=engineer_id,
                                shop_id=shop_id, decided_by=actor.id, reason=reason)
            await insert_row(s, row)
            note = f"派给合作网点{shop.name}：{reason}" if shop_id is not None else reason
            add_event(s, order.id, at=now, user_id=actor.id,
                      action="reassigned" if previous or previous_shop else "assigned",
                      frm=frm, to=to, note=note)
            audit(s, user_id=actor.id, action="assign", entity="work_order", entity_id=order.id, now=now,
                  reason=reason, detail={"mode": "manual", "decision_id": row.id, "engineer_id": engineer_id,
                                         "shop_id": shop_id, "previous_engineer_id": previous,
                                         "previous_shop_id": previous_shop, "from": frm, "to": to})
            outcome = Outcome(order.id, order.number, to, new_version, engineer_id=engineer_id, shop_id=shop_id,
                              decision_id=row.id, accept_due_at=due)
        await self._announce(outcome)
        return outcome

    # ---- refusals and timeouts ------------------------------------------------------------------

    async def refuse(self, order_id: int, actor: CurrentUser, *, reason: str, note: str = "",
                     version: int | None = None, now: dt.datetime | None = None) -> Outcome:
        """The engineer refuses the order dispatched to them (a dispatcher may record it for
        them): kept with its reason, the order back to 待处理 and matched again at once without
        them. Only before accepting (after that, a dispatcher re-dispatches)."""
        if reason not in r.REFUSAL_REASONS:
            raise ValidationFailed("reason", f"须为{'/'.join(r.REFUSAL_REASONS)}之一")
        if reason == "其他" and not note.strip():
            raise ValidationFailed("note", "选择“其他”时须说明原因 (say why)")
        now = now or self.clock()
        async with self.sessionmaker() as s, s.begin():
            order = await load_order(s, order_id, actor, "order.accept", lock=True)
            version = check_version(order, version)
            if order.status != states.DISPATCHED or order.engineer_id is None:
                raise Conflict(f"工单{order.status}，没有待接的派单 (the order is {order.status}: nothing to refuse)",
                               code="illegal_transition", frm=order.status, to=states.PENDING)
            if order.accepted_at is not None:
                raise Conflict("已接单，请联系调度改派 (already accepted: ask a dispatcher to re-dispatch)",
                               code="already_accepted", frm=order.status)
            text = f"{reason}：{note}" if note.strip() else reason
            decision = states.check_transition(order, states.PENDING, actor_of(actor),
                                               states.Facts(reason=text), now)
            values = decision.values({})
            values.update(accept_due_at=None, auto_dispatch_due_at=now)
            engineer_id = order.engineer_id
            new_version = await apply(s, order, version, values, now)
            s.add(DispatchRefusal(order_id=order.id, engineer_id=engineer_id, at=now, reason=reason,
                                  note=note.strip(), timed_out=False))
            add_event(s, order.id, at=now, user_id=actor.id, action="refused", frm=states.DISPATCHED,
                      to=states.PENDING, note=text)
            audit(s, user_id=actor.id, action="refuse", entity="work_order", entity_id=order.id, now=now,
                  reason=reason, detail={"engineer_id": engineer_id, "from": states.DISPATCHED, "to": states.PENDING})
            outcome = Outcome(order.id, order.number, states.PENDING, new_version)
        await self._announce(outcome, refused_by=engineer_id)
        self.nudge()
        return outcome

    async def time_out(self, order_id: int, now: dt.datetime | None = None) -> Outcome | None:
        """The engineer let :data:`~callcenter.dispatch.timing.ACCEPT_WINDOW` pass: recorded as a
        refusal (``timed_out``), the order back to 待处理 and due for automatic dispatch now.
        None unless the order is still dispatched, unanswered and past its deadline."""
        now = now or self.clock()
        async with self.sessionmaker() as s, s.begin():
            row = (await s.execute(select(_wo.c.engineer_id).where(_wo.c.id == order_id))).first()
            if row is None or row.engineer_id is None:
                return None
            changed = (await s.execute(
                update(_wo).where(_wo.c.id == order_id, _wo.c.engineer_id == row.engineer_id,
                                  _wo.c.status == states.DISPATCHED, _wo.c.accepted_at.is_(None),
                                  _wo.c.accept_due_at <= now)
                .values(status=states.PENDING, engineer_id=None, dispatched_at=None, accepted_at=None,
                        contacted_at=None, accept_due_at=None, auto_dispatch_due_at=now,
                        version=_wo.c.version + 1, updated_at=now)
                .returning(_wo.c.version, _wo.c.number))).first()
            if changed is None:
                return None
            s.add(DispatchRefusal(order_id=order_id, engineer_id=row.engineer_id, at=now, reason=TIMEOUT_REASON,
                                  note=TIMEOUT_NOTE, timed_out=True))
            add_event(s, order_id, at=now, user_id=None, action="accept_timeout", frm=states.DISPATCHED,
                      to=states.PENDING, note=f"{TIMEOUT_NOTE}，重新派单")
            audit(s, user_id=None, action="accept_timeout", entity="work_order", entity_id=order_id, now=now,
                  detail={"engineer_id": row.engineer_id})
            outcome = Outcome(order_id, changed.number, states.PENDING, changed.version)
        await self._announce(outcome, refused_by=row.engineer_id)
        return outcome

    # ---- the loop -------------------------------------------------------------------------------

    async def _due(self, column: Any, now: dt.datetime) -> list[int]:
        async with self.sessionmaker() as s:
            return list((await s.execute(
                select(_wo.c.id).where(column.is_not(None), column <= now).order_by(column, _wo.c.id)
                .limit(BATCH))).scalars())

    async def _claim_due(self, now: dt.datetime) -> list[int]:
        """This loop's batch of orders due for automatic dispatch, oldest first. On PostgreSQL
        they are claimed (``FOR UPDATE SKIP LOCKED`` in a materialised CTE, so exactly the batch
        is locked; their due time moves :data:`LEASE` ahead); SQLite has one writer, one loop."""
        due = _wo.c.auto_dispatch_due_at
        oldest = select(_wo.c.id, due.label("due")).where(due.is_not(None), due <= now).order_by(due, _wo.c.id).limit(BATCH)
        async with self.sessionmaker() as s:
            if s.bind.dialect.name != "postgresql":
                return list((await s.execute(oldest)).scalars())
            picked = oldest.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
            async with s.begin():
                rows = (await s.execute(update(_wo).where(_wo.c.id == picked.c.id)
                                        .values(auto_dispatch_due_at=now + LEASE)
                                        .returning(_wo.c.id, picked.c.due))).all()
        return [order_id for order_id, _ in sorted(rows, key=lambda r: (r[1], r[0]))]

    async def run_pass(self, now: dt.datetime | None = None) -> PassResult:
        """One tick: time out unanswered orders, then dispatch every order due (oldest first)."""
        now = now or self.clock()
        timed_out = dispatched = queued = skipped = 0
        for order_id in await self._due(_wo.c.accept_due_at, now):
            if await self.time_out(order_id, now) is None:
                skipped += 1
            else:
                timed_out += 1
        for order_id in await self._claim_due(now):
            outcome = await self.auto(order_id, now)
            if outcome is None:
                skipped += 1
            elif outcome.queued:
                queued += 1
            else:
                dispatched += 1
        result = PassResult(dispatched, queued, timed_out, skipped)
        if dispatched or queued or timed_out:
            log.info("dispatch: %d dispatched, %d to the dispatchers' queue, %d timed out",
                     dispatched, queued, timed_out)
        return result

    def nudge(self) -> None:
        """Run the next tick now (a new order, a refusal): this instance's loop, and with
        ``publish`` (``callcenter.dispatch.wakeups``) every other instance's."""
        self._wake.set()
        if self.publish is not None:
            self.publish()

    def wake(self) -> None:
        """Run this instance's next tick now (a wake-up from another instance)."""
        self._wake.set()

    async def run(self, interval: float) -> None:
        """Ticks every ``interval`` seconds or when nudged, until cancelled; a failed tick is
        logged and tried again at the next. A full batch is followed by another tick at once."""
        while True:
            self._wake.clear()
            full = False
            try:
                result = await self.run_pass()
                full = result.dispatched + result.queued + result.timed_out + result.skipped >= BATCH
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatch: tick failed; trying again in %.0f s", interval)
            if full:
                await asyncio.sleep(0)
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), interval)
            except TimeoutError:
                pass

    # ---- messages -------------------------------------------------------------------------------

    async def _announce(self, outcome: Outcome, *, refused_by: int | None = None) -> None:
        """Tell the engineer of a new order and every dispatcher and supervisor of the change.
        The change is committed whatever happens here (a lost message is seen on reload)."""
        if self.mailbox is None:
            return
        try:
            if outcome.engineer_id is not None and outcome.accept_due_at is not None:
                await self.mailbox.post(outcome.engineer_id, {
                    "type": "order.assigned", "order": {"id": outcome.order_id, "number": outcome.number},
                    "accept_due_at": outcome.accept_due_at.isoformat()})
            if refused_by is not None:
                await self.mailbox.post(refused_by, {"type": "order.withdrawn",
                                                     "order": {"id": outcome.order_id, "number": outcome.number}})
            message = {"type": "dispatch.changed", "order_id": outcome.order_id, "status": outcome.status,
                       "engineer_id": outcome.engineer_id, "shop_id": outcome.shop_id, "queued": outcome.queued}
            for user_id in await self._watchers():
                await self.mailbox.post(user_id, message)
        except Exception:
            log.exception("dispatch: could not post the change of order %d", outcome.order_id)

    async def _watchers(self) -> Iterable[int]:
        async with self.sessionmaker() as s:
            return list((await s.execute(
                select(User.id).where(User.role.in_(WATCHERS), User.active.is_(True)).order_by(User.id))).scalars())



def engine_for(sessionmaker: async_sessionmaker[AsyncSession], settings: Any, mailbox: Mailbox | None = None,
               geocoder: Geocoder | None = None) -> DispatchEngine:
    """The engine with the rules configured by ``settings`` (a ``callcenter.settings.Settings``)."""
    return DispatchEngine(sessionmaker, CandidateLoader(r.config_from(settings), geocoder), mailbox)
