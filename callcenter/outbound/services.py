"""Creating, listing and cancelling outbound jobs; the do-not-call list; the callback pop.

Where jobs come from:

- **callbacks booked by an agent** (``POST /api/outbound/callbacks``): :func:`book_callback`;
- **callbacks for abandoned calls** and **surveys for completed orders**: creation passes
  (:func:`create_due_jobs`) that the dialler runs every few seconds, reading the ``calls`` and
  ``work_orders`` tables. A pass, not a hook inside the call recorder or the order transition:
  the job then exists even if the process died between the call being written (or the order
  committed) and the hook running, and no other slice's transaction has to know about
  outbound. Each cause has a ``dedupe_key`` (``abandoned:<linkedid>``, ``survey:<order id>``)
  under a unique constraint, so passes on several instances, or again after a restart, create
  it once. ``CallService`` wakes the dialler when an abandoned call ends (a small hook in
  ``callcenter/calls/services.py``) so the callback is queued at once rather than at the next
  tick.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, cast, exists, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from callcenter.audit import audit
from callcenter.auth.identity import CurrentUser
from callcenter.crypto import PhoneVault, Sealed
from callcenter.db.models import Call, Customer, CustomerPhone, User, WorkOrder
from callcenter.db.outbound import DoNotCall, OutboundAttempt, OutboundJob
from callcenter.errors import Conflict, NotFound, ValidationFailed
from callcenter.outbound import rules

_jobs = OutboundJob.__table__
_att = OutboundAttempt.__table__
_dnc = DoNotCall.__table__
COMPLETED = "已完成"
# How far back the passes look (older causes are history: nobody is called about them now).
ABANDONED_LOOKBACK = dt.timedelta(hours=2)
ABANDONED_REASON = "来电排队放弃，自动回拨"
SURVEY_REASON = "工单完成满意度回访"
# A callback may be booked up to this far ahead.
MAX_AHEAD = dt.timedelta(days=30)


def _insert(session_or_conn: Any) -> Any:
    return pg_insert if session_or_conn.bind.dialect.name == "postgresql" else sqlite_insert


# -- creation passes ----------------------------------------------------------------------------

async def create_due_jobs(sessionmaker: async_sessionmaker[AsyncSession], config: Any,
                          now: dt.datetime) -> list[tuple[int, int, dt.datetime]]:
    """Create the survey and abandoned-call callback jobs that do not exist yet (idempotent);
    returns (id, priority, due_at) of those created, for the schedule."""
    created: list[tuple[int, int, dt.datetime]] = []
    async with sessionmaker() as s, s.begin():
        created += await _create_surveys(s, config, now)
        created += await _create_abandoned(s, config, now)
    return created


async def _create_surveys(s: AsyncSession, config: Any, now: dt.datetime) -> list[tuple[int, int, dt.datetime]]:
    window = config.survey_window
    wo = WorkOrder.__table__
    # The customer's first mobile, else their first number of any kind.
    first_phone = (select(CustomerPhone.id).where(CustomerPhone.customer_id == wo.c.customer_id)
                   .order_by(CustomerPhone.kind != "mobile", CustomerPhone.id).limit(1)
                   .correlate(wo).scalar_subquery())
    q = (select(wo.c.id, wo.c.customer_id, wo.c.completed_at, CustomerPhone.number_index,
                CustomerPhone.number_enc, CustomerPhone.masked)
         .join(CustomerPhone, CustomerPhone.id == first_phone)
         .where(wo.c.status == COMPLETED, wo.c.completed_at.is_not(None),
                wo.c.completed_at > now - window,
                ~exists().where(_jobs.c.dedupe_key == literal("survey:", String) + cast(wo.c.id, String)))
         .limit(500))
    rows = (await s.execute(q)).all()
    out = []
    for r in rows:
        completed = _aware(r.completed_at)
        deadline = completed + window
        due = config.hours.next_open(max(now, completed + config.survey_delay))
        job_id = await _insert_job(s, kind="survey", order_id=r.id, customer_id=r.customer_id,
                                   dedupe_key=f"survey:{r.id}",
                                   sealed=Sealed(r.number_index, r.number_enc, r.masked),
                                   reason=SURVEY_REASON, requested_at=completed, due_at=due,
                                   deadline_at=deadline, priority=rules.PRIORITY["survey"], now=now)
        if job_id is not None:
            out.append((job_id, rules.PRIORITY["survey"], due))
    return out


async def _create_abandoned(s: AsyncSession, config: Any, now: dt.datetime) -> list[tuple[int, int, dt.datetime]]:
    c = Call.__table__
    later = c.alias("later")
    answered_since = exists().where(later.c.caller_index == c.c.caller_index,
                                    later.c.started_at > c.c.started_at,
                                    later.c.outcome == "answered")
    q = (select(c.c.linkedid, c.c.customer_id, c.c.started_at, c.c.ended_at, c.c.caller_index,
                c.c.caller_enc, c.c.caller_masked)
         .where(c.c.started_at > now - ABANDONED_LOOKBACK, c.c.outcome == "abandoned",
                c.c.state == "ended", c.c.customer_id.is_not(None), c.c.caller_index != "",
                c.c.direction == "inbound", ~c.c.linkedid.startswith("ob-"),
                ~answered_since,
                ~exists().where(_jobs.c.dedupe_key == literal("abandoned:", String) + c.c.linkedid))
         .order_by(c.c.started_at).limit(500))
    out = []
    for r in (await s.execute(q)).all():
        due = config.hours.next_open(now)
        job_id = await _insert_job(s, kind="callback", order_id=None, customer_id=r.customer_id,
                                   dedupe_key=f"abandoned:{r.linkedid}",
                                   sealed=Sealed(r.caller_index, r.caller_enc, r.caller_masked),
                                   reason=ABANDONED_REASON, requested_at=_aware(r.started_at),
                                   # The caller's place: their call's start orders the queue.
                                   due_at=due, deadline_at=None,
                                   priority=rules.PRIORITY["abandoned"], now=now,
                                   call_linkedid=r.linkedid)
        if job_id is not None:
            out.append((job_id, rules.PRIORITY["abandoned"], due))
    return out


async def _insert_job(s: AsyncSession, *, kind: str, order_id: int | None, customer_id: int | None,
                      dedupe_key: str | None, sealed: Sealed, reason: str,
                      requested_at: dt.datetime, due_at: dt.datetime,
                      deadline_at: dt.datetime | None, priority: int, now: dt.datetime,
                      call_linkedid: str = "", agent_id: int | None = None,
                      created_by: int | None = None) -> int | None:
    values = {"kind": kind, "order_id": order_id, "customer_id": customer_id, "dedupe_key": dedupe_key,
                  "call_linkedid": call_linkedid, "number_index": sealed.index, "number_enc": sealed.enc,
                  "number_masked": sealed.masked, "reason": reason, "requested_at": requested_at,
                  "due_at": due_at, "deadline_at": deadline_at, "priority": priority, "status": "scheduled",
                  "attempts": 0, "last_outcome": "", "agent_id": agent_id, "created_by": created_by,
                  "created_at": now, "updated_at": now, "version": 1}
    stmt = _insert(s)(_jobs).values(**values)
    if dedupe_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
    return (await s.execute(stmt.returning(_jobs.c.id))).scalar_one_or_none()


async def no_longer_wanted(s: AsyncSession, job: OutboundJob) -> str:
    """Why a due job should not be dialled any more ("" if it should): the survey's order was
    surveyed (or reopened) meanwhile; the abandoned caller got through on a later call."""
    if job.kind == "survey" and job.order_id is not None:
        status = (await s.execute(select(WorkOrder.status).where(WorkOrder.id == job.order_id))).scalar_one_or_none()
        if status != COMPLETED:
            return "order_moved"
    if job.call_linkedid:
        c = Call.__table__
        first = select(c.c.started_at, c.c.caller_index).where(c.c.linkedid == job.call_linkedid).subquery()
        answered = (await s.execute(select(func.count()).select_from(c).join(first, and_(
            c.c.caller_index == first.c.caller_index, c.c.started_at > first.c.started_at))
            .where(c.c.outcome == "answered"))).scalar_one()
        if answered:
            return "called_back"
    return ""


# -- callbacks booked by an agent ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Booked:
    id: int
    priority: int
    due_at: dt.datetime
    # True when the asked time was outside calling hours and moved to the next opening.
    moved: bool


async def book_callback(s: AsyncSession, user: CurrentUser, *, customer_id: int, phone_id: int,
                        at: dt.datetime, reason: str, order_id: int | None, to_me: bool,
                        vault: PhoneVault, config: Any, now: dt.datetime) -> Booked:
    """A callback the customer asked for, at ``at`` (aware). 404 unknown customer/phone/order
    (or not the customer's), 422 a time in the past or too far ahead or a number that cannot
    be dialled, 409 a number on the do-not-call list. Audited; in ``s``'s transaction."""
    if (await s.get(Customer, customer_id)) is None:
        raise NotFound("客户不存在 (no such customer)")
    phone = await s.get(CustomerPhone, phone_id)
    if phone is None or phone.customer_id != customer_id:
        raise NotFound("该客户没有这个电话 (no such phone for this customer)")
    if order_id is not None:
        order = await s.get(WorkOrder, order_id)
        if order is None or order.customer_id != customer_id:
            raise NotFound("该客户没有这个工单 (no such order for this customer)")
    if at < now - dt.timedelta(minutes=5):
        raise ValidationFailed("at", "回拨时间已过 (the time is in the past)")
    if at > now + MAX_AHEAD:
        raise ValidationFailed("at", "回拨时间太远 (at most 30 days ahead)")
    try:
        rules.validate_number(vault.decrypt(phone.number_enc), config.prefixes)
    except rules.Refused as e:
        raise ValidationFailed("phone_id", f"该号码不能外呼 ({e})") from None
    if await on_dnc(s, [phone.number_index]):
        raise Conflict("该号码在免打扰名单中 (the number is on the do-not-call list)", code="dnc")
    due = config.hours.next_open(max(at, now))
    job_id = await _insert_job(
        s, kind="callback", order_id=order_id, customer_id=customer_id, dedupe_key=None,
        sealed=Sealed(phone.number_index, phone.number_enc, phone.masked), reason=reason,
        requested_at=at, due_at=due, deadline_at=None, priority=rules.PRIORITY["callback"], now=now,
        agent_id=user.id if to_me else None, created_by=user.id)
    assert job_id is not None
    audit(s, user_id=user.id, action="outbound.callback.book", entity="outbound_job", entity_id=job_id,
          now=now, detail={"customer_id": customer_id, "order_id": order_id, "phone_id": phone_id,
                           "to_me": to_me})
    return Booked(job_id, rules.PRIORITY["callback"], due, due > max(at, now))


async def cancel_job(s: AsyncSession, user: CurrentUser, job_id: int, *, reason: str,
                     now: dt.datetime) -> OutboundJob:
    """Cancel a scheduled job, or close one waiting for review (the person decided not to call
    again); 404 unknown, 409 when it is dialling or already over."""
    job = await s.get(OutboundJob, job_id)
    if job is None:
        raise NotFound("外呼任务不存在 (no such job)")
    done = (await s.execute(update(_jobs).where(_jobs.c.id == job_id,
                                                _jobs.c.status.in_(("scheduled", "review")))
                            .values(status="cancelled", last_outcome="cancelled", updated_at=now,
                                    version=_jobs.c.version + 1).returning(_jobs.c.id))).first()
    if done is None:
        raise Conflict(f"任务{_STATUS_ZH.get(job.status, job.status)}，不能取消 (only a scheduled job can be cancelled)",
                       code="illegal_transition", status_now=job.status)
    audit(s, user_id=user.id, action="outbound.cancel", entity="outbound_job", entity_id=job_id,
          now=now, reason=reason, detail={"from": job.status})
    return job


async def redial_job(s: AsyncSession, user: CurrentUser, job_id: int, *, reason: str,
                     now: dt.datetime, hours: rules.CallingHours) -> OutboundJob:
    """A person decided that a job in ``review`` (its last attempt left no trace) is to be
    dialled again: scheduled for now, or the next opening of the calling hours. 404 unknown,
    409 unless in review."""
    job = await s.get(OutboundJob, job_id)
    if job is None:
        raise NotFound("外呼任务不存在 (no such job)")
    due = hours.next_open(now)
    done = (await s.execute(update(_jobs).where(_jobs.c.id == job_id, _jobs.c.status == "review")
                            .values(status="scheduled", due_at=due, updated_at=now,
                                    version=_jobs.c.version + 1).returning(_jobs.c.id))).first()
    if done is None:
        raise Conflict(f"任务{_STATUS_ZH.get(job.status, job.status)}，不能重拨 (only a job waiting for review can be re-dialled)",
                       code="illegal_transition", status_now=job.status)
    audit(s, user_id=user.id, action="outbound.redial", entity="outbound_job", entity_id=job_id,
          now=now, reason=reason, detail={"from": "review"})
    job.due_at = due
    return job


_STATUS_ZH = {"scheduled": "待拨", "dialling": "正在拨打", "answered": "已接通", "exhausted": "已用尽",
              "cancelled": "已取消", "review": "待人工确认"}


# -- do-not-call --------------------------------------------------------------------------------

async def on_dnc(s: AsyncSession | AsyncConnection, indexes: list[str]) -> bool:
    return (await s.execute(select(func.count()).select_from(_dnc)
                            .where(_dnc.c.number_index.in_(indexes)))).scalar_one() > 0


async def add_dnc(s: AsyncSession, sealed: Sealed, *, reason: str, source: str,
                  user_id: int | None, now: dt.datetime) -> int | None:
    """Put a number on the list (no-op if it is there) and cancel its scheduled jobs; the new
    entry's id, or None if it was there already."""
    stmt = (_insert(s)(_dnc).values(number_index=sealed.index, number_enc=sealed.enc,
                                    number_masked=sealed.masked, reason=reason, source=source,
                                    created_by=user_id, created_at=now)
            .on_conflict_do_nothing(index_elements=["number_index"]).returning(_dnc.c.id))
    new_id = (await s.execute(stmt)).scalar_one_or_none()
    await s.execute(update(_jobs).where(_jobs.c.number_index == sealed.index, _jobs.c.status == "scheduled")
                    .values(status="cancelled", last_outcome="dnc", updated_at=now,
                            version=_jobs.c.version + 1))
    audit(s, user_id=user_id, action="outbound.dnc.add", entity="outbound_dnc",
          entity_id=new_id or "", now=now, reason=reason, detail={"source": source})
    return new_id


# -- the board ----------------------------------------------------------------------------------

async def list_jobs(s: AsyncSession, *, status: str | None, kind: str | None, page: int,
                    page_size: int) -> tuple[list[dict[str, Any]], int, dict[str, int]]:
    """Jobs for the board (masked), the total matching, and counts by status."""
    conditions = []
    if status is not None:
        conditions.append(_jobs.c.status == status)
    if kind is not None:
        conditions.append(_jobs.c.kind == kind)
    wo, cu = WorkOrder.__table__, Customer.__table__
    order = (_jobs.c.due_at.asc() if status in ("scheduled", "dialling") else _jobs.c.updated_at.desc())
    q = (select(_jobs, wo.c.number.label("order_number"), cu.c.name.label("customer_name"))
         .outerjoin(wo, wo.c.id == _jobs.c.order_id).outerjoin(cu, cu.c.id == _jobs.c.customer_id)
         .where(*conditions).order_by(order, _jobs.c.id.desc())
         .limit(page_size).offset((page - 1) * page_size))
    rows = (await s.execute(q)).all()
    total = (await s.execute(select(func.count()).select_from(_jobs).where(*conditions))).scalar_one()
    counts = dict((await s.execute(select(_jobs.c.status, func.count()).group_by(_jobs.c.status))).all())
    ids = [r.id for r in rows]
    attempts: dict[int, list[dict[str, Any]]] = {}
    from callcenter.privacy import mask_name

    if ids:
        users = User.__table__
        for a in (await s.execute(select(_att, users.c.display_name.label("agent_name"))
                                  .outerjoin(users, (users.c.extension == _att.c.agent_member)
                                             & (_att.c.agent_member.is_not(None)))
                                  .where(_att.c.job_id.in_(ids))
                                  .order_by(_att.c.job_id, _att.c.seq))).all():
            attempts.setdefault(a.job_id, []).append({
                "id": a.id, "seq": a.seq, "state": a.state, "outcome": a.outcome,
                "reason_code": a.reason_code, "started_at": _aware(a.started_at),
                "finished_at": _aware(a.finished_at) if a.finished_at else None,
                "channel": a.channel, "answered_survey": a.answers is not None,
                "answered_at": _aware(a.answered_at) if a.answered_at else None,
                "agent_member": a.agent_member,
                "agent": a.agent_name or a.agent_member, "hangup_cause": a.hangup_cause})

    items = [{
        "id": r.id, "kind": r.kind, "status": r.status, "priority": r.priority,
        "order_id": r.order_id, "order_number": r.order_number, "customer_id": r.customer_id,
        "customer": mask_name(r.customer_name) if r.customer_name else None,
        "number": r.number_masked, "reason": r.reason, "requested_at": _aware(r.requested_at),
        "due_at": _aware(r.due_at), "deadline_at": _aware(r.deadline_at) if r.deadline_at else None,
        "attempts": r.attempts, "last_outcome": r.last_outcome, "version": r.version,
        "updated_at": _aware(r.updated_at), "attempt_log": attempts.get(r.id, []),
    } for r in rows]
    return items, total, {k: int(v) for k, v in counts.items()}


# -- the callback pop ---------------------------------------------------------------------------

class CallbackContext:
    """The caller context of an answered callback: the customer's (by id, since the channel
    shows the hotline's number) plus what the callback is about."""

    def __init__(self, base: Any, callback: dict[str, Any]) -> None:
        self.base = base
        self.customer_id = base.customer_id
        self.callback = callback

    def to_json(self, masked: bool = True, vault: PhoneVault | None = None) -> dict[str, Any]:
        out = self.base.to_json(masked, vault)
        out["callback"] = self.callback
        return out


async def callback_context(conn: AsyncConnection, attempt_id: str, *, now: dt.datetime,
                           settings: Any) -> Any:
    """The pop's context for a queue call whose Linkedid is an outbound attempt's id; None when
    the id names no attempt (then the ordinary caller lookup applies)."""
    from callcenter.customers.history import build_customer_context

    wo = WorkOrder.__table__
    row = (await conn.execute(
        select(_jobs.c.id, _jobs.c.kind, _jobs.c.customer_id, _jobs.c.reason, _jobs.c.requested_at,
               _jobs.c.call_linkedid, _jobs.c.order_id, _jobs.c.number_masked, _jobs.c.agent_id,
               wo.c.number.label("order_number"))
        .select_from(_att.join(_jobs, _jobs.c.id == _att.c.job_id))
        .outerjoin(wo, wo.c.id == _jobs.c.order_id)
        .where(_att.c.id == attempt_id))).first()
    if row is None or row.customer_id is None:
        return None
    base = await build_customer_context(conn, row.customer_id, now=now, settings=settings,
                                        exclude_linkedid=attempt_id)
    return CallbackContext(base, {
        "job_id": row.id, "kind": row.kind, "reason": row.reason,
        "order_id": row.order_id, "order_number": row.order_number,
        "requested_at": _aware(row.requested_at).isoformat(), "number": row.number_masked,
        "abandoned_call": row.call_linkedid or None})


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)

