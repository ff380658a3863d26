"""What the survey and complaint screens read (masked): an order's survey, the orders due for
the survey, complaint follow-ups, results and averages per engineer."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from callcenter.access import check_order
from callcenter.auth.identity import CurrentUser
from callcenter.db.models import Customer, User, WorkOrder
from callcenter.db.survey import ComplaintFollowUp, SurveyResult
from callcenter.orders import states
from callcenter.privacy import mask_name, mask_numbers_in_text
from callcenter.sla.rules import ALLOWANCES, aware
from callcenter.survey import rules
from callcenter.survey.alerts import engineer_text
from callcenter.survey.schemas import (
    ComplaintOut,
    ComplaintOwnerOut,
    ComplaintsOut,
    EngineerSatisfactionOut,
    EngineerScoresOut,
    OrderSurveyOut,
    SurveyDueItemOut,
    SurveyDueOut,
    SurveyOrderOut,
    SurveyOut,
    SurveyQuestionOut,
    SurveyResultsOut,
)
from callcenter.survey.services import OWNER_ROLES, STATUS_LABELS

SURVEY_WITHIN = ALLOWANCES["survey"]
QUESTIONS = [SurveyQuestionOut(key=k, label=label) for k, label in rules.QUESTIONS]
# Service types whose order ends at 已完成 and is then surveyed.
SURVEYED_KINDS = (*states.ONSITE_KINDS, states.REMOTE)


def _staff(u: User | None) -> str | None:
    return mask_name(u.display_name or u.username) if u is not None else None


def survey_out(r: SurveyResult, order_number: str, engineer: User | None, recorder: User | None) -> SurveyOut:
    scores = {k: getattr(r, k) for k in rules.KEYS}
    return SurveyOut(
        id=r.id, number=r.number, order_id=r.order_id, order_number=order_number, engineer=engineer_text(engineer),
        channel=r.channel, channel_label=rules.CHANNEL_LABELS.get(r.channel, r.channel), answered_at=aware(r.answered_at),
        scores=scores, average=rules.average(scores), low_scores=[rules.LABELS[k] for k in rules.low_scores(scores)],
        comment=mask_numbers_in_text(r.comment), recorded_by=_staff(recorder), job_id=r.job_id)


def complaint_out(c: ComplaintFollowUp, *, order_number: str, survey_number: str | None, engineer: User | None,
                  customer: Customer | None, owner: User | None, now: dt.datetime) -> ComplaintOut:
    opened, deadline, taken, resolved = (aware(t) for t in (c.opened_at, c.deadline, c.taken_at, c.resolved_at))
    assert opened is not None and deadline is not None
    d = rules.deadlines(opened)
    return ComplaintOut(
        id=c.id, order_id=c.order_id, order_number=order_number, survey_number=survey_number,
        engineer=engineer_text(engineer), customer=mask_name(customer.name) if customer else "",
        problem_class=c.problem_class,
        low_scores=[rules.LABELS[k] for k in c.low_scores.split(",") if k in rules.LABELS],
        action=mask_numbers_in_text(c.action), status=c.status, status_label=STATUS_LABELS.get(c.status, c.status),
        owner_id=c.owner_id, owner=_staff(owner), opened_at=opened, take_by=d.take_by, deadline=deadline,
        taken_at=taken, resolved_at=resolved, resolution=mask_numbers_in_text(c.resolution),
        version=c.version, take_overdue_s=rules.overdue_s(d.take_by, now, taken),
        contact_overdue_s=rules.overdue_s(deadline, now, resolved))


def _order_out(o: WorkOrder, customer: Customer | None, engineer: User | None) -> dict[str, Any]:
    completed = aware(o.completed_at)
    return {"id": o.id, "number": o.number, "status": o.status, "service_type": o.service_type,
                "product_model": o.product_model, "customer": mask_name(customer.name) if customer else "",
                "engineer": engineer_text(engineer), "completed_at": completed,
                "due_at": completed + SURVEY_WITHIN if completed else None, "surveyed_at": aware(o.surveyed_at),
                "version": o.version}


async def _complaint_rows(s: AsyncSession, where: Any, now: dt.datetime, *, limit: int | None = None,
                          offset: int = 0) -> list[ComplaintOut]:
    eng, owner = aliased(User), aliased(User)
    stmt = (select(ComplaintFollowUp, WorkOrder.number, SurveyResult.number, eng, Customer, owner)
            .join(WorkOrder, WorkOrder.id == ComplaintFollowUp.order_id)
            .join(Customer, Customer.id == WorkOrder.customer_id)
            .outerjoin(SurveyResult, SurveyResult.id == ComplaintFollowUp.survey_id)
            .outerjoin(eng, eng.id == ComplaintFollowUp.engineer_id)
            .outerjoin(owner, owner.id == ComplaintFollowUp.owner_id)
            .where(where).order_by(ComplaintFollowUp.opened_at.desc(), ComplaintFollowUp.id.desc()))
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    return [complaint_out(c, order_number=n, survey_number=sn, engineer=e, customer=cu, owner=o, now=now)
            for c, n, sn, e, cu, o in (await s.execute(stmt)).all()]


async def order_survey(s: AsyncSession, order_id: int, user: CurrentUser, now: dt.datetime) -> OrderSurveyOut:
    """The order's survey and complaint (404 for an order the user may not see, 403 role)."""
    order = await s.get(WorkOrder, order_id)
    check_order(user, "survey.read", order, order_id)
    assert order is not None
    customer = await s.get(Customer, order.customer_id)
    engineer = await s.get(User, order.engineer_id) if order.engineer_id else None
    survey = None
    r = (await s.execute(select(SurveyResult).where(SurveyResult.order_id == order_id))).scalar_one_or_none()
    if r is not None:
        recorder = await s.get(User, r.recorded_by) if r.recorded_by else None
        survey = survey_out(r, order.number, await s.get(User, r.engineer_id) if r.engineer_id else None, recorder)
    complaints = await _complaint_rows(s, ComplaintFollowUp.order_id == order_id, now)
    return OrderSurveyOut(order=SurveyOrderOut(**_order_out(order, customer, engineer)), survey=survey,
                          complaint=complaints[0] if complaints else None, questions=QUESTIONS,
                          problem_classes=list(rules.PROBLEM_CLASSES))


async def due_orders(s: AsyncSession, now: dt.datetime, page: int, page_size: int) -> SurveyDueOut:
    """Completed orders without a survey result, the most urgent (earliest completed) first."""
    no_survey = ~select(SurveyResult.id).where(SurveyResult.order_id == WorkOrder.id).exists()
    where = and_(WorkOrder.status == states.DONE, WorkOrder.service_type.in_(SURVEYED_KINDS), no_survey)
    total = (await s.execute(select(func.count()).select_from(WorkOrder).where(where))).scalar_one()
    rows = (await s.execute(
        select(WorkOrder, Customer, User).join(Customer, Customer.id == WorkOrder.customer_id)
        .outerjoin(User, User.id == WorkOrder.engineer_id).where(where)
        .order_by(WorkOrder.completed_at, WorkOrder.id).limit(page_size).offset((page - 1) * page_size))).all()
    items = []
    for o, c, e in rows:
        fields = _order_out(o, c, e)
        due = fields["due_at"]
        items.append(SurveyDueItemOut(**fields, overdue_s=rules.overdue_s(due, now) if due else None))
    return SurveyDueOut(items=items, total=total, page=page, page_size=page_size)


COMPLAINT_FILTERS = {
    "active": ComplaintFollowUp.status.in_(("open", "in_progress")),
    "open": ComplaintFollowUp.status == "open",
    "in_progress": ComplaintFollowUp.status == "in_progress",
    "resolved": ComplaintFollowUp.status == "resolved",
    "all": ComplaintFollowUp.id.is_not(None),
}


async def complaints(s: AsyncSession, status: str, now: dt.datetime, page: int, page_size: int) -> ComplaintsOut:
    where = COMPLAINT_FILTERS[status]
    total = (await s.execute(select(func.count()).select_from(ComplaintFollowUp).where(where))).scalar_one()
    items = await _complaint_rows(s, where, now, limit=page_size, offset=(page - 1) * page_size)
    return ComplaintsOut(items=items, total=total, page=page, page_size=page_size)


async def complaint(s: AsyncSession, complaint_id: int, now: dt.datetime) -> ComplaintOut | None:
    rows = await _complaint_rows(s, ComplaintFollowUp.id == complaint_id, now)
    return rows[0] if rows else None


async def owners(s: AsyncSession) -> list[ComplaintOwnerOut]:
    users = (await s.execute(select(User).where(User.active.is_(True), User.role.in_(OWNER_ROLES))
                             .order_by(User.role, User.id))).scalars().all()
    return [ComplaintOwnerOut(id=u.id, name=mask_name(u.display_name or u.username), role=u.role) for u in users]


async def results(s: AsyncSession, engineer_id: int | None, page: int, page_size: int) -> SurveyResultsOut:
    where = SurveyResult.engineer_id == engineer_id if engineer_id is not None else SurveyResult.id.is_not(None)
    total = (await s.execute(select(func.count()).select_from(SurveyResult).where(where))).scalar_one()
    eng, rec = aliased(User), aliased(User)
    rows = (await s.execute(
        select(SurveyResult, WorkOrder.number, eng, rec).join(WorkOrder, WorkOrder.id == SurveyResult.order_id)
        .outerjoin(eng, eng.id == SurveyResult.engineer_id).outerjoin(rec, rec.id == SurveyResult.recorded_by)
        .where(where).order_by(SurveyResult.answered_at.desc(), SurveyResult.id.desc())
        .limit(page_size).offset((page - 1) * page_size))).all()
    return SurveyResultsOut(items=[survey_out(r, n, e, rc) for r, n, e, rc in rows], total=total, page=page,
                      page_size=page_size)


def local_range(date_from: dt.date | None, date_to: dt.date | None, tz: ZoneInfo) -> tuple[dt.datetime | None, dt.datetime | None]:
    """[start, end) in UTC of the centre's days ``date_from`` … ``date_to`` (inclusive)."""
    start = dt.datetime.combine(date_from, dt.time(), tz).astimezone(dt.UTC) if date_from else None
    end = (dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.UTC)
           if date_to else None)
    return start, end


async def engineer_stats(s: AsyncSession, start: dt.datetime | None, end: dt.datetime | None) -> EngineerSatisfactionOut:
    """Per engineer: surveys, the average of each question and overall, how many surveys had a
    score ≤ 3, how many complaint follow-ups — lowest overall average first."""
    conds = []
    if start is not None:
        conds.append(SurveyResult.answered_at >= start)
    if end is not None:
        conds.append(SurveyResult.answered_at < end)
    avgs = [func.avg(getattr(SurveyResult, k)) for k in rules.KEYS]
    stmt = (select(SurveyResult.engineer_id, func.count(SurveyResult.id), *avgs).where(*conds)
            .group_by(SurveyResult.engineer_id))
    rows = (await s.execute(stmt)).all()
    dissatisfied = dict((await s.execute(
        select(SurveyResult.engineer_id, func.count()).where(
            *conds, _any_low()).group_by(SurveyResult.engineer_id))).all())
    complaint_conds = []
    if start is not None:
        complaint_conds.append(ComplaintFollowUp.opened_at >= start)
    if end is not None:
        complaint_conds.append(ComplaintFollowUp.opened_at < end)
    complaints_by = dict((await s.execute(
        select(ComplaintFollowUp.engineer_id, func.count()).where(*complaint_conds)
        .group_by(ComplaintFollowUp.engineer_id))).all())
    engineers = {u.id: u for u in (await s.execute(
        select(User).where(User.id.in_([r[0] for r in rows if r[0] is not None])))).scalars().all()}
    items = []
    for engineer_id, n, *avgs in rows:
        averages = {k: round(float(a), 2) for k, a in zip(rules.KEYS, avgs, strict=True)}
        items.append(EngineerScoresOut(
            engineer_id=engineer_id, engineer=engineer_text(engineers.get(engineer_id)) or "未指派",
            surveys=int(n), averages=averages, average=round(sum(averages.values()) / len(averages), 2),
            dissatisfied=int(dissatisfied.get(engineer_id, 0)), complaints=int(complaints_by.get(engineer_id, 0))))
    items.sort(key=lambda i: (i.average, i.engineer))
    return EngineerSatisfactionOut(items=items, questions=QUESTIONS)


def _any_low() -> Any:
    return or_(*[getattr(SurveyResult, k) <= rules.DISSATISFIED_AT_MOST for k in rules.KEYS])
