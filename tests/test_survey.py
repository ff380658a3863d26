"""The satisfaction survey (SA-CS-005): the scoring and complaint rule (tables), the IVR's
``UserEvent`` from the recording, and :func:`record_survey_result` on SQLite and PostgreSQL —
the order moved to 已回访 through the state machine, idempotent per delivery, a score ≤ 3 opening
the complaint follow-up with ``dissatisfied_at`` (the escalation clock) and the supervisors'
alert, the supervisor taking it (``escalated_at``) and resolving it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from callcenter.auth.identity import CurrentUser
from callcenter.db.models import Customer, OrderEvent, User, WorkOrder
from callcenter.db.oversight import AuditEntry
from callcenter.db.survey import ComplaintFollowUp, SurveyResult
from callcenter.errors import Conflict, NotFound, ValidationFailed
from callcenter.realtime.mailbox import LocalMailbox
from callcenter.sla import rules as sla
from callcenter.survey import rules
from callcenter.survey.alerts import ComplaintAlerter
from callcenter.survey.events import (
    HEADERS,
    answers_from_user_event,
    is_survey_result,
    parse_survey_event,
)
from callcenter.survey.services import (
    assign_complaint,
    record_survey_result,
    resolve_complaint,
)
from tests import transcripts

NOW = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)
GOOD = {"response_speed": 5, "professionalism": 5, "attitude": 4, "resolution": 5, "overall": 5, "recommend": 4}
RECORDED = {"response_speed": 5, "professionalism": 4, "attitude": 5, "resolution": 3, "overall": 5, "recommend": 4}


# --- the rule (pure) ----------------------------------------------------------------------------


@pytest.mark.parametrize("scores, low, cls", [
    (GOOD, (), None),
    ({**GOOD, "resolution": 3}, ("resolution",), "专业不足"),
    ({**GOOD, "response_speed": 1}, ("response_speed",), "响应慢"),
    ({**GOOD, "attitude": 2, "professionalism": 3}, ("professionalism", "attitude"), "态度差"),
    # Ties: the question asked first.
    ({**GOOD, "attitude": 2, "response_speed": 2}, ("response_speed", "attitude"), "响应慢"),
    ({**GOOD, "overall": 3}, ("overall",), "其他"),
    ({**GOOD, "recommend": 1, "overall": 2}, ("overall", "recommend"), "其他"),
    (dict.fromkeys(rules.KEYS, 4), (), None),
    (dict.fromkeys(rules.KEYS, 3), rules.KEYS, "响应慢"),
    (dict.fromkeys(rules.KEYS, 1), rules.KEYS, "响应慢"),
])
def test_a_score_of_three_or_less_opens_a_complaint_of_the_lowest_scores_class(scores, low, cls) -> None:
    v = rules.judge(rules.validate_scores(scores))
    assert v.low == low
    assert v.complaint is (cls is not None)
    assert v.problem_class == cls


@pytest.mark.parametrize("complaint, given, expected", [
    (True, None, "其他"),  # a complaint with good scores
    (False, "费用争议", "费用争议"),  # a class chosen is a complaint
    (True, "费用争议", "费用争议"),
])
def test_a_complaint_the_agent_records_opens_one_with_good_scores(complaint, given, expected) -> None:
    v = rules.judge(GOOD, complaint=complaint, problem_class=given)
    assert v.complaint and v.problem_class == expected and v.low == ()


def test_a_chosen_class_wins_over_the_derived_one() -> None:
    assert rules.judge({**GOOD, "attitude": 1}, problem_class="费用争议").problem_class == "费用争议"
    with pytest.raises(ValidationFailed) as e:
        rules.judge(GOOD, problem_class="太贵")
    assert e.value.details["field"] == "problem_class"


@pytest.mark.parametrize("change, field", [
    ({"attitude": None}, "answers.attitude"),
    ({"attitude": 0}, "answers.attitude"),
    ({"overall": 6}, "answers.overall"),
    ({"recommend": "5"}, "answers.recommend"),
    ({"recommend": True}, "answers.recommend"),
    ({"recommend": 4.0}, "answers.recommend"),
    ({"speed": 5}, "answers.speed"),
])
def test_scores_must_be_six_integers_from_1_to_5(change, field) -> None:
    answers = {**GOOD, **change}
    answers = {k: v for k, v in answers.items() if v is not None}
    with pytest.raises(ValidationFailed) as e:
        rules.validate_scores(answers)
    assert e.value.details["field"] == field


@pytest.mark.parametrize("scores, avg", [(GOOD, 4.67), (dict.fromkeys(rules.KEYS, 3), 3.0), ({}, 0.0),
                                         ({"overall": 2, "recommend": 5}, 3.5)])
def test_average(scores, avg) -> None:
    assert rules.average(scores) == avg


@pytest.mark.parametrize("opened, now, take_overdue", [
    (NOW, NOW, -3600),
    (NOW, NOW + dt.timedelta(minutes=59), -60),
    (NOW, NOW + dt.timedelta(hours=1), 0),
    (NOW, NOW + dt.timedelta(hours=2), 3600),
])
def test_a_supervisor_has_one_hour_and_the_customer_is_called_within_24(opened, now, take_overdue) -> None:
    d = rules.deadlines(opened)
    assert d.take_by == opened + sla.ALLOWANCES["escalation"]
    assert d.contact_by == opened + dt.timedelta(hours=24)
    assert rules.overdue_s(d.take_by, now) == take_overdue
    # Once done, the time it was done counts, not now.
    assert rules.overdue_s(d.take_by, now + dt.timedelta(days=1), done_at=now) == take_overdue


# --- the IVR's report ---------------------------------------------------------------------------


def _recorded_event() -> dict[str, str]:
    found = [m for m in transcripts.events("survey_completed") if is_survey_result(m)]
    assert len(found) == 1
    return found[0]


def test_the_recorded_user_event_gives_the_six_answers() -> None:
    msg = _recorded_event()
    assert answers_from_user_event(msg) == RECORDED
    event = parse_survey_event(msg)
    assert (event.job, event.work_order, event.complete) == ("sv-2001", "WO20261121-003", True)
    # The headers the dialplan sets are exactly the recording's, in its order.
    recorded = list(msg)[list(msg).index("UserEvent") + 1:]
    assert tuple(recorded) == HEADERS


@pytest.mark.parametrize("change, expected", [
    ({"Q4": ""}, {k: v for k, v in RECORDED.items() if k != "resolution"}),
    ({"Q1": " 2 "}, {**RECORDED, "response_speed": 2}),
])
def test_unanswered_questions_are_left_out(change, expected) -> None:
    event = parse_survey_event({**_recorded_event(), **change})
    assert event.answers == expected
    assert event.complete is (len(expected) == 6)


@pytest.mark.parametrize("change, field", [
    ({"Q2": "6"}, "Q2"), ({"Q2": "0"}, "Q2"), ({"Q3": "55"}, "Q3"), ({"Q6": "x"}, "Q6"), ({"Q5": "５"}, "Q5"),
    ({"UserEvent": "Other"}, "UserEvent"), ({"Event": "Newexten"}, "UserEvent"),
])
def test_malformed_reports_are_refused(change, field) -> None:
    with pytest.raises(ValidationFailed) as e:
        answers_from_user_event({**_recorded_event(), **change})
    assert e.value.details["field"] == field


# --- record_survey_result on both databases ------------------------------------------------------


def _utc(t: dt.datetime | None) -> dt.datetime | None:
    return sla.aware(t)


def _clocks(order: WorkOrder, now: dt.datetime) -> dict[str, sla.Clock]:
    return {c.name: c for c in sla.clocks(sla.snapshot_of(order), now)}


async def _seed(sessionmaker, status: str = "已完成") -> dict[str, int]:  # type: ignore[no-untyped-def]
    async with sessionmaker.begin() as s:
        eng = User(username="eng", display_name="赵工程", password_hash="x", role="engineer", created_at=NOW,
                   staff_no="GY2024001")
        sup = User(username="sup", display_name="吴主管", password_hash="x", role="supervisor", created_at=NOW)
        sup2 = User(username="sup2", display_name="钱主管", password_hash="x", role="supervisor", created_at=NOW)
        gone = User(username="gone", display_name="孙主管", password_hash="x", role="supervisor", created_at=NOW,
                    active=False)
        agent = User(username="sv", display_name="周回访", password_hash="x", role="survey", created_at=NOW)
        cust = Customer(name="张三丰", created_at=NOW)
        s.add_all([eng, sup, sup2, gone, agent, cust])
        await s.flush()
        order = WorkOrder(number="WO20261122-001", customer_id=cust.id, engineer_id=eng.id, status=status,
                          created_at=NOW - dt.timedelta(days=1), completed_at=NOW - dt.timedelta(hours=2),
                          service_finished_at=NOW - dt.timedelta(hours=2), version=5)
        s.add(order)
        await s.flush()
        return {"order": order.id, "engineer": eng.id, "sup": sup.id, "sup2": sup2.id, "gone": gone.id,
                "agent": agent.id}


async def _record(sessionmaker, ids, answers, **kw):  # type: ignore[no-untyped-def]
    async with sessionmaker.begin() as s:
        return await record_survey_result(s, order_id=ids["order"], answers=answers, now=kw.pop("now", NOW), **kw)


async def _count(sessionmaker, model) -> int:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s:
        return await s.scalar(select(func.count()).select_from(model)) or 0


async def test_a_good_survey_moves_the_order_to_surveyed(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    ids = await _seed(sessionmaker)
    survey_id = await _record(sessionmaker, ids, GOOD, channel="phone-ivr", job_id=2001)
    async with sessionmaker() as s:
        r = await s.get(SurveyResult, survey_id)
        order = await s.get(WorkOrder, ids["order"])
        events = (await s.execute(select(OrderEvent).where(OrderEvent.order_id == ids["order"]))).scalars().all()
        audits = (await s.execute(select(AuditEntry.entity, AuditEntry.action))).all()
    assert r is not None and order is not None
    assert r.number == "CS20261123-001" and r.engineer_id == ids["engineer"] and r.channel == "phone-ivr"
    assert {k: getattr(r, k) for k in rules.KEYS} == GOOD and r.job_id == 2001 and r.recorded_by is None
    assert order.status == "已回访" and _utc(order.surveyed_at) == NOW and order.dissatisfied_at is None
    assert order.version == 6
    assert [(e.action, e.from_status, e.to_status) for e in events] == [("transition", "已完成", "已回访")]
    assert "CS20261123-001" in events[0].note and "电话语音" in events[0].note
    assert sorted(audits) == [("survey", "create"), ("work_order", "transition")]
    assert await _count(sessionmaker, ComplaintFollowUp) == 0
    # The survey clock is met.
    assert _clocks(order, NOW)["survey"].state == sla.MET


async def test_the_same_delivery_twice_is_one_result(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    ids = await _seed(sessionmaker)
    first = await _record(sessionmaker, ids, RECORDED, channel="phone-ivr", job_id=7)
    again = await _record(sessionmaker, ids, RECORDED, channel="phone-ivr", job_id=7,
                          now=NOW + dt.timedelta(seconds=3))
    assert again == first
    # The same form submitted twice by the survey agent.
    assert await _count(sessionmaker, SurveyResult) == 1
    assert await _count(sessionmaker, ComplaintFollowUp) == 1
    assert await _count(sessionmaker, OrderEvent) == 2  # the transition and the complaint line
    # Another result for the order (another job, or an agent's form) is a conflict, nothing written.
    for kw in ({"job_id": 8, "channel": "phone-ivr"}, {"channel": "agent", "user_id": ids["agent"]}):
        with pytest.raises(Conflict) as e:
            await _record(sessionmaker, ids, GOOD, **kw)
        assert e.value.code == "survey_exists"
    assert await _count(sessionmaker, SurveyResult) == 1 and await _count(sessionmaker, AuditEntry) == 3


async def test_an_agent_form_submitted_twice_is_one_result(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    ids = await _seed(sessionmaker)
    kw = {"channel": "agent", "user_id": ids["agent"], "comment": "师傅很专业"}
    first = await _record(sessionmaker, ids, GOOD, **kw)
    assert await _record(sessionmaker, ids, GOOD, **kw) == first
    with pytest.raises(Conflict):
        await _record(sessionmaker, ids, {**GOOD, "overall": 4}, **kw)


@pytest.mark.parametrize("status", ["服务中", "待处理", "已取消"])
async def test_only_a_completed_order_is_surveyed(sessionmaker, status) -> None:  # type: ignore[no-untyped-def]
    ids = await _seed(sessionmaker, status)
    with pytest.raises(Conflict) as e:
        await _record(sessionmaker, ids, GOOD, channel="phone-ivr", job_id=1)
    assert e.value.code == "illegal_transition"
    assert await _count(sessionmaker, SurveyResult) == 0 and await _count(sessionmaker, AuditEntry) == 0


async def test_bad_input_writes_nothing(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    ids = await _seed(sessionmaker)
    with pytest.raises(ValidationFailed):
        await _record(sessionmaker, ids, {**GOOD, "overall": 6}, channel="phone-ivr")
    with pytest.raises(ValidationFailed):
        await _record(sessionmaker, ids, GOOD, channel="wechat")
    with pytest.raises(NotFound):
        async with sessionmaker.begin() as s:
            await record_survey_result(s, order_id=ids["order"] + 999, answers=GOOD, channel="sms", now=NOW)
    assert await _count(sessionmaker, SurveyResult) == 0


async def test_a_low_score_opens_the_complaint_alerts_supervisors_and_the_escalation_clock(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    ids = await _seed(sessionmaker)
    await _record(sessionmaker, ids, RECORDED, channel="phone-ivr", job_id=2001)
    async with sessionmaker() as s:
        order = await s.get(WorkOrder, ids["order"])
        c = (await s.execute(select(ComplaintFollowUp))).scalar_one()
    assert order is not None
    assert order.status == "已回访" and _utc(order.dissatisfied_at) == NOW and order.escalated_at is None
    assert (c.problem_class, c.low_scores, c.status, c.owner_id) == ("专业不足", "resolution", "open", None)
    assert _utc(c.deadline) == NOW + dt.timedelta(hours=24) and c.engineer_id == ids["engineer"] and c.alerted_at is None
    # The SLA escalation clock runs from the dissatisfaction: a supervisor must take it within 1 h.
    clocks = _clocks(order, NOW + dt.timedelta(minutes=50))
    assert clocks["escalation"].deadline == NOW + dt.timedelta(hours=1)
    assert clocks["escalation"].state == sla.RUNNING

    # The alert: every active supervisor, once, however many passes run.
    mailbox = LocalMailbox(50)
    got: list[tuple[int, dict]] = []
    mailbox.on_deliver(lambda uid, m: got.append((uid, m)))
    alerter = ComplaintAlerter(sessionmaker, mailbox, clock=lambda: NOW + dt.timedelta(seconds=2))
    assert await alerter.push_due() == 1
    assert await alerter.push_due() == 0
    assert sorted(uid for uid, _ in got) == sorted([ids["sup"], ids["sup2"]])
    msg = got[0][1]
    assert msg["type"] == "complaint.opened"
    assert msg["complaint"]["order_number"] == "WO20261122-001"
    assert msg["complaint"]["problem_class"] == "专业不足" and msg["complaint"]["low_scores"] == ["问题解决效果"]
    assert msg["complaint"]["engineer"] == "赵** GY2024001"
    assert msg["complaint"]["take_by"] == (NOW + dt.timedelta(hours=1)).isoformat()

    # A supervisor takes it: the escalation clock is met; resolving closes it.
    sup = CurrentUser(id=ids["sup"], username="sup", role="supervisor")
    later = NOW + dt.timedelta(minutes=40)
    async with sessionmaker.begin() as s:
        await assign_complaint(s, c.id, sup, owner_id=ids["sup2"], now=later, version=1, action="致歉并免费复查")
    with pytest.raises(Conflict):  # stale version
        async with sessionmaker.begin() as s:
            await resolve_complaint(s, c.id, sup, resolution="x", now=later, version=1)
    with pytest.raises(ValidationFailed):  # an inactive owner
        async with sessionmaker.begin() as s:
            await assign_complaint(s, c.id, sup, owner_id=ids["gone"], now=later)
    async with sessionmaker.begin() as s:
        await resolve_complaint(s, c.id, sup, resolution="已致歉，赠送代金券，复查正常", now=later + dt.timedelta(hours=3),
                                version=2)
    async with sessionmaker() as s:
        order = await s.get(WorkOrder, ids["order"])
        c = await s.get(ComplaintFollowUp, c.id)
    assert order is not None and c is not None
    assert _utc(order.escalated_at) == later
    assert (c.status, c.owner_id, c.taken_by, _utc(c.taken_at), c.version) == ("resolved", ids["sup2"], ids["sup"], later, 3)
    assert c.action == "致歉并免费复查"
    clocks = _clocks(order, NOW + dt.timedelta(hours=5))
    assert clocks["escalation"].state == sla.MET
    with pytest.raises(Conflict):
        async with sessionmaker.begin() as s:
            await resolve_complaint(s, c.id, sup, resolution="again", now=later)
    # A survey agent may not take complaints.
    agent = CurrentUser(id=ids["agent"], username="sv", role="survey")
    with pytest.raises(Exception) as e:
        async with sessionmaker.begin() as s:
            await assign_complaint(s, c.id, agent, owner_id=ids["sup"], now=later)
    assert getattr(e.value, "status", None) == 403


async def test_a_survey_for_an_order_already_surveyed_by_note_keeps_its_status(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    ids = await _seed(sessionmaker, "已回访")
    await _record(sessionmaker, ids, {**GOOD, "attitude": 2}, channel="sms")
    async with sessionmaker() as s:
        order = await s.get(WorkOrder, ids["order"])
        line = (await s.execute(select(OrderEvent))).scalars().first()
    assert order is not None and line is not None
    assert order.status == "已回访" and _utc(order.surveyed_at) == NOW and _utc(order.dissatisfied_at) == NOW
    assert line.action == "note" and "短信" in line.note


async def test_the_dialler_hands_over_the_recorded_event(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    """``callcenter.survey.results``: what the outbound dialler calls with the IVR's UserEvent."""
    from callcenter.survey.results import job_of
    from callcenter.survey.results import record_survey_result as hand_over

    assert job_of("ob-2001-1-0a1b2c3d") == 2001 and job_of("sv-2001") is None
    ids = await _seed(sessionmaker)
    msg = _recorded_event()
    # A question left unanswered: nothing stored, the order stays due for a person.
    assert await hand_over(sessionmaker, {**msg, "Q6": ""}, order_id=ids["order"], attempt_id="ob-2001-1-0a1b2c3d",
                           now=NOW) is None
    assert await hand_over(sessionmaker, msg, order_id=None, attempt_id="ob-2001-1-0a1b2c3d", now=NOW) is None
    assert await _count(sessionmaker, SurveyResult) == 0
    first = await hand_over(sessionmaker, msg, order_id=ids["order"], attempt_id="ob-2001-1-0a1b2c3d", now=NOW)
    again = await hand_over(sessionmaker, msg, order_id=ids["order"], attempt_id="ob-2001-2-ffffffff", now=NOW)
    assert first is not None and again == first
    async with sessionmaker() as s:
        r = await s.get(SurveyResult, first)
        order = await s.get(WorkOrder, ids["order"])
    assert r is not None and order is not None
    assert (r.channel, r.job_id, r.resolution, r.recorded_by) == ("phone-ivr", 2001, 3, None)
    assert order.status == "已回访" and order.dissatisfied_at is not None
    assert await _count(sessionmaker, ComplaintFollowUp) == 1
