"""Survey results (SA-CS-005) and complaint follow-ups: the writes.

:func:`record_survey_result` is the one way a survey enters the system — the outbound dialler
calls it when the survey IVR's ``UserEvent`` arrives (``channel="phone-ivr"``, with its job id),
the survey agent's form through ``POST /api/orders/{id}/survey`` (``channel="agent"``). It works
in the caller's session and transaction: the survey row, the order's move 已完成 → 已回访 (the
state machine's rule, ``surveyed_at``), a score ≤ 3 opening the complaint follow-up and setting
``dissatisfied_at`` (so the SLA escalation clock runs), the timeline lines and the audit entries
are committed together or not at all. Supervisors are alerted after the commit by
:class:`callcenter.survey.alerts.ComplaintAlerter` (it pushes every follow-up not yet pushed).

The complaint operations (take / assign, resolve) stamp the order's ``escalated_at`` the first
time a supervisor takes the follow-up: that meets the escalation clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.access import require
from callcenter.audit import audit
from callcenter.auth.identity import CurrentUser
from callcenter.db.models import User, WorkOrder
from callcenter.db.survey import ComplaintFollowUp, SurveyResult
from callcenter.errors import Conflict, NotFound, ValidationFailed
from callcenter.orders import states
from callcenter.orders.numbering import next_number
from callcenter.orders.store import add_event, apply, milestones
from callcenter.privacy import mask_name
from callcenter.settings import Settings
from callcenter.survey import rules

# Where a survey may be recorded: 已完成 moves on to 已回访; an order already 已回访 (a survey
# agent's note) or a collected carry-in repair keeps its status.
RECORDABLE = (states.DONE, states.SURVEYED, states.COLLECTED)
# Who may own a follow-up action.
OWNER_ROLES = ("supervisor", "admin", "survey", "dispatcher", "agent")
OPEN, IN_PROGRESS, RESOLVED = "open", "in_progress", "resolved"
STATUS_LABELS = {OPEN: "待接手", IN_PROGRESS: "跟进中", RESOLVED: "已解决"}


def _default_tz() -> ZoneInfo:
    return Settings().tz


async def _locked_order(session: AsyncSession, order_id: int) -> WorkOrder | None:
    stmt = select(WorkOrder).where(WorkOrder.id == order_id)
    if session.bind.dialect.name == "postgresql":
        # Serialises two deliveries of one result (and a survey agent typing the same order in).
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


def _same_delivery(existing: SurveyResult, scores: Mapping[str, int], channel: str,
                   job_id: int | None) -> bool:
    """Whether ``existing`` is this very result delivered again (the dialler's job, or the same
    form submitted twice)."""
    if job_id is not None:
        return existing.job_id == job_id
    return (existing.job_id is None and existing.channel == channel
            and all(getattr(existing, k) == v for k, v in scores.items()))


def _exists(existing: SurveyResult) -> Conflict:
    return Conflict(f"该工单已有回访记录 {existing.number} (the order already has a survey result)",
                    code="survey_exists", number=existing.number)


async def _existing(session: AsyncSession, order_id: int) -> SurveyResult | None:
    return (await session.execute(select(SurveyResult).where(SurveyResult.order_id == order_id))).scalar_one_or_none()


async def record_survey_result(session: AsyncSession, *, order_id: int, answers: Mapping[str, Any],
                               channel: str, now: dt.datetime, job_id: int | None = None,
                               user_id: int | None = None, comment: str = "", complaint: bool = False,
                               problem_class: str | None = None, action: str = "",
                               tz: ZoneInfo | None = None) -> int:
    """Store the SA-CS-005 result of ``order_id`` in ``session``'s transaction; its id.

    ``answers``: the six scores ``{rules.KEYS[i]: 1..5}`` (``events.answers_from_user_event``
    gives them from the IVR's report). ``channel``: phone-ivr | sms | agent. ``job_id``: the
    outbound job that asked (the dialler); ``user_id``: the survey agent who typed it in (None
    for the automated call). ``comment`` is the customer's words, verbatim; ``complaint`` /
    ``problem_class`` / ``action``: what a survey agent records of a complaint (the automated
    call derives the class from the scores). ``tz``: the centre's zone for the ``CS`` number
    (default: the settings' default zone).

    Idempotent: the same job's result delivered again (or the same form submitted twice) answers
    the id already stored and changes nothing. Raises ValidationFailed (422: a score missing or
    outside 1–5, an unknown channel or problem class), NotFound (404: no such order), Conflict
    (409 ``survey_exists``: another result is already recorded for the order;
    ``illegal_transition``: the order is not completed; ``stale_version``). Validation and the
    checks come before any write; a concurrent duplicate insert is caught in a savepoint (and
    answered as above); on any other error the caller rolls its transaction back (``async with
    session.begin()`` does), so nothing of a refused result is stored.
    """
    scores = rules.validate_scores(answers)
    rules.validate_channel(channel)
    verdict = rules.judge(scores, complaint=complaint, problem_class=problem_class)
    order = await _locked_order(session, order_id)
    if order is None:
        raise NotFound("工单不存在 (no such work order)", id=order_id)
    existing = await _existing(session, order_id)
    if existing is not None:
        if _same_delivery(existing, scores, channel, job_id):
            return existing.id
        raise _exists(existing)
    if order.status not in RECORDABLE:
        raise Conflict(f"工单状态为{order.status}，尚未完工，不能回访 (only a completed order can be surveyed)",
                       code="illegal_transition", frm=order.status, to=states.SURVEYED)
    survey = SurveyResult(
        order_id=order.id, engineer_id=order.engineer_id, customer_id=order.customer_id, channel=channel,
        answered_at=now, comment=comment, job_id=job_id, recorded_by=user_id, created_at=now, **scores)
    try:
        async with session.begin_nested():
            survey.number = await next_number(session, "CS", now, tz or _default_tz())
            session.add(survey)
            await session.flush()
    except IntegrityError:
        # Another delivery of a result for this order committed first (SQLite; PostgreSQL
        # waited on the order's row lock above and found it).
        existing = await _existing(session, order_id)
        if existing is not None and _same_delivery(existing, scores, channel, job_id):
            return existing.id
        if existing is not None:
            raise _exists(existing) from None
        raise
    await _move_order(session, order, survey, verdict, user_id, now)
    audit(session, user_id=user_id, action="create", entity="survey", entity_id=survey.id, now=now,
          detail={"number": survey.number, "order_id": order.id, "channel": channel, "job_id": job_id,
                  "low_scores": list(verdict.low), "complaint": verdict.complaint})
    if verdict.complaint:
        await _open_complaint(session, order, survey, verdict, action, user_id, now)
    return survey.id


async def _move_order(session: AsyncSession, order: WorkOrder, survey: SurveyResult, verdict: rules.Verdict,
                      user_id: int | None, now: dt.datetime) -> None:
    """已完成 → 已回访 (``surveyed_at``) through the state machine; ``dissatisfied_at`` for a
    complaint; the timeline line; the audit entry of the transition."""
    frm = order.status
    values: dict[str, Any]
    if frm == states.DONE:
        decision = states.check_transition(order, states.SURVEYED, states.Actor(user_id, states.SURVEY),
                                           states.Facts(survey_recorded=True), now)
        values = decision.values(milestones(order))
    else:
        values = {"surveyed_at": now} if order.surveyed_at is None else {}
    if verdict.complaint and order.dissatisfied_at is None:
        values["dissatisfied_at"] = now
    version = order.version
    await apply(session, order, version, values, now)
    avg = rules.average({k: getattr(survey, k) for k in rules.KEYS})
    note = f"回访 {survey.number}（{rules.CHANNEL_LABELS[survey.channel]}），平均 {avg:.1f} 分"
    if verdict.low:
        note += "；低分：" + "、".join(rules.LABELS[k] for k in verdict.low)
    to = values.get("status", frm)
    add_event(session, order.id, at=now, user_id=user_id, action="transition" if to != frm else "note",
              frm=frm, to=str(to), note=note)
    audit(session, user_id=user_id, action="transition" if to != frm else "update", entity="work_order",
          entity_id=order.id, now=now, detail={"from": frm, "to": to, "version": version + 1,
                                               "fields": sorted(values), "survey": survey.number})


async def _open_complaint(session: AsyncSession, order: WorkOrder, survey: SurveyResult, verdict: rules.Verdict,
                          action: str, user_id: int | None, now: dt.datetime) -> None:
    found = (await session.execute(select(ComplaintFollowUp.id).where(ComplaintFollowUp.order_id == order.id))).first()
    if found is not None:
        return  # already being followed up (one follow-up per order)
    assert verdict.problem_class is not None
    complaint = ComplaintFollowUp(
        order_id=order.id, survey_id=survey.id, engineer_id=order.engineer_id,
        problem_class=verdict.problem_class, low_scores=",".join(verdict.low), action=action, status=OPEN,
        opened_at=now, deadline=rules.deadlines(now).contact_by, resolution="", version=1)
    session.add(complaint)
    await session.flush()
    add_event(session, order.id, at=now, user_id=user_id, action="note",
              note=f"客户不满意，已转主管跟进（{verdict.problem_class}），须 1 小时内接手、24 小时内联系客户")
    audit(session, user_id=user_id, action="create", entity="complaint", entity_id=complaint.id, now=now,
          detail={"order_id": order.id, "survey": survey.number, "problem_class": verdict.problem_class})


# --- complaint follow-ups ----------------------------------------------------------------------


async def _complaint(session: AsyncSession, complaint_id: int, version: int | None) -> tuple[ComplaintFollowUp, WorkOrder]:
    stmt = select(ComplaintFollowUp).where(ComplaintFollowUp.id == complaint_id)
    if session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    c = (await session.execute(stmt)).scalar_one_or_none()
    if c is None:
        raise NotFound("投诉跟进不存在 (no such complaint follow-up)", id=complaint_id)
    if version is not None and version != c.version:
        raise Conflict("投诉跟进已被他人修改，请刷新后重试 (changed by someone else; reload)",
                       code="stale_version", version=version, current=c.version)
    order = await session.get(WorkOrder, c.order_id)
    assert order is not None
    return c, order


async def _save(session: AsyncSession, c: ComplaintFollowUp, values: dict[str, Any]) -> None:
    done = await session.execute(
        update(ComplaintFollowUp).where(ComplaintFollowUp.id == c.id, ComplaintFollowUp.version == c.version)
        .values(**values, version=c.version + 1).returning(ComplaintFollowUp.id)
        .execution_options(synchronize_session="fetch"))
    if done.first() is None:
        raise Conflict("投诉跟进已被他人修改，请刷新后重试 (changed by someone else; reload)",
                       code="stale_version", version=c.version)


async def _take(session: AsyncSession, c: ComplaintFollowUp, order: WorkOrder, actor: CurrentUser,
                now: dt.datetime, values: dict[str, Any]) -> None:
    """The first time a supervisor acts on the follow-up: taken, and the order's escalation
    clock met (``escalated_at``)."""
    if c.taken_at is not None:
        return
    values.update(taken_at=now, taken_by=actor.id)
    if order.escalated_at is None:
        await apply(session, order, order.version, {"escalated_at": now}, now)


async def assign_complaint(session: AsyncSession, complaint_id: int, actor: CurrentUser, *, owner_id: int,
                           now: dt.datetime, version: int | None = None, action: str | None = None,
                           problem_class: str | None = None) -> None:
    """A supervisor takes the follow-up and names its owner (themself or another member of
    staff), optionally with the planned action and a corrected problem class. 409 once resolved."""
    require(actor, "escalation.take")
    c, order = await _complaint(session, complaint_id, version)
    if c.status == RESOLVED:
        raise Conflict("投诉已解决 (the complaint is resolved)", code="illegal_transition", frm=c.status, to=IN_PROGRESS)
    owner = await session.get(User, owner_id)
    if owner is None or not owner.active or owner.role not in OWNER_ROLES:
        raise ValidationFailed("owner_id", "须为在职的主管、回访、调度或客服人员 (an active supervisor, survey agent, "
                                           "dispatcher or agent)")
    if problem_class is not None and problem_class not in rules.PROBLEM_CLASSES:
        raise ValidationFailed("problem_class", f"one of {', '.join(rules.PROBLEM_CLASSES)}")
    values: dict[str, Any] = {"status": IN_PROGRESS, "owner_id": owner_id}
    if action is not None:
        values["action"] = action
    if problem_class is not None:
        values["problem_class"] = problem_class
    first = c.taken_at is None
    await _take(session, c, order, actor, now, values)
    await _save(session, c, values)
    add_event(session, order.id, at=now, user_id=actor.id, action="note",
              note=("主管已接手投诉跟进" if first else "投诉跟进改派") + f"，负责人：{mask_name(owner.display_name or owner.username)}")
    audit(session, user_id=actor.id, action="assign", entity="complaint", entity_id=c.id, now=now,
          detail={"order_id": order.id, "owner_id": owner_id, "fields": sorted(values)})


async def resolve_complaint(session: AsyncSession, complaint_id: int, actor: CurrentUser, *, resolution: str,
                            now: dt.datetime, version: int | None = None, action: str | None = None) -> None:
    """Close the follow-up with what was done (apology, voucher, free re-check …). A follow-up
    nobody had taken yet is taken by the same step (owner: the actor)."""
    require(actor, "escalation.take")
    if not resolution.strip():
        raise ValidationFailed("resolution", "须填写处理结果 (required)")
    c, order = await _complaint(session, complaint_id, version)
    if c.status == RESOLVED:
        raise Conflict("投诉已解决 (the complaint is resolved)", code="illegal_transition", frm=c.status, to=RESOLVED)
    values: dict[str, Any] = {"status": RESOLVED, "resolution": resolution, "resolved_at": now}
    if c.owner_id is None:
        values["owner_id"] = actor.id
    if action is not None:
        values["action"] = action
    await _take(session, c, order, actor, now, values)
    await _save(session, c, values)
    add_event(session, order.id, at=now, user_id=actor.id, action="note", note="投诉跟进已解决")
    audit(session, user_id=actor.id, action="resolve", entity="complaint", entity_id=c.id, now=now,
          detail={"order_id": order.id, "fields": sorted(values)})
