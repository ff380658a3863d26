"""The dispatch engine on SQLite and PostgreSQL: automatic dispatch with its recorded decision,
the dispatchers' queue when nobody matches, refusals and the 15-minute timeout with an injected
clock (re-matched without those who refused), manual dispatch at the cap, and the messages."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select, update

from callcenter.auth.identity import CurrentUser
from callcenter.db.models import AuditEntry, OrderEvent, WorkOrder
from callcenter.db.workforce import DispatchDecision, DispatchRefusal
from callcenter.dispatch import rules as r
from callcenter.dispatch.candidates import CandidateLoader
from callcenter.dispatch.engine import DispatchEngine, queue_reason
from callcenter.dispatch.timing import ACCEPT_WINDOW, accept_deadline, auto_dispatch_due, timed_out
from callcenter.errors import Conflict, ValidationFailed
from callcenter.realtime.mailbox import LocalMailbox
from tests.dispatchworld import NOW, TZ, build

T0 = NOW
MIN = dt.timedelta(minutes=1)


# ---- the pure timing rules ---------------------------------------------------------------------

@pytest.mark.parametrize(("service_type", "status", "due"), [
    ("上门维修", "待处理", True), ("安装", "待处理", True), ("退换货", "待处理", True),
    ("远程支持", "待处理", False), ("送修", "待修", False), ("上门维修", "已派单", False),
])
def test_which_new_orders_are_dispatched_automatically(service_type: str, status: str, due: bool) -> None:
    assert auto_dispatch_due(service_type, status, T0) == (T0 if due else None)


@pytest.mark.parametrize(("accepted", "waited", "expected"), [
    (False, ACCEPT_WINDOW - dt.timedelta(seconds=1), False),
    (False, ACCEPT_WINDOW, True),
    (False, ACCEPT_WINDOW + MIN, True),
    (True, ACCEPT_WINDOW + MIN, False),
])
def test_acceptance_timeout(accepted: bool, waited: dt.timedelta, expected: bool) -> None:
    due = accept_deadline(T0)
    assert due == T0 + dt.timedelta(minutes=15)
    assert timed_out(due, T0 + MIN if accepted else None, T0 + waited) is expected
    assert timed_out(None, None, T0 + waited) is False


# ---- the engine ----------------------------------------------------------------------------------

@pytest.fixture
async def world(sessionmaker):  # type: ignore[no-untyped-def]
    return await build(sessionmaker)


@pytest.fixture
def mailbox() -> LocalMailbox:
    return LocalMailbox(100)


@pytest.fixture
def dispatch(sessionmaker, mailbox) -> DispatchEngine:  # type: ignore[no-untyped-def]
    return DispatchEngine(sessionmaker, CandidateLoader(r.RuleConfig(tz=TZ)), mailbox, clock=lambda: T0)


def person(w, name: str, role: str) -> CurrentUser:  # type: ignore[no-untyped-def]
    return CurrentUser(id=w.users[name], username=name, role=role)


async def queue_for_dispatch(sessionmaker, *order_ids: int, at: dt.datetime = T0) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker.begin() as s:
        await s.execute(update(WorkOrder).where(WorkOrder.id.in_(order_ids)).values(auto_dispatch_due_at=at))


async def order(sessionmaker, order_id: int) -> WorkOrder:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s:
        return (await s.execute(select(WorkOrder).where(WorkOrder.id == order_id))).scalar_one()


async def messages(mailbox: LocalMailbox, user_id: int) -> list[dict]:
    return [json.loads(m["_text"]) for m in (await mailbox.since(user_id, 0))[1] or []]


def aware(t: dt.datetime | None) -> dt.datetime | None:
    return t if t is None or t.tzinfo else t.replace(tzinfo=dt.UTC)


async def test_a_due_order_goes_to_the_best_engineer_with_its_decision(dispatch, sessionmaker, mailbox, world):  # type: ignore[no-untyped-def]
    w = world
    main = w.orders["main"]
    await queue_for_dispatch(sessionmaker, main)
    result = await dispatch.run_pass(T0)
    assert (result.dispatched, result.queued, result.timed_out) == (1, 0, 0)
    o = await order(sessionmaker, main)
    assert (o.status, o.engineer_id) == ("已派单", w.users["best"])
    assert aware(o.dispatched_at) == T0 and aware(o.accept_due_at) == T0 + ACCEPT_WINDOW
    assert o.auto_dispatch_due_at is None and o.version == 2
    async with sessionmaker() as s:
        decision = (await s.execute(select(DispatchDecision).where(DispatchDecision.order_id == main))).scalar_one()
        events = (await s.execute(select(OrderEvent).where(OrderEvent.order_id == main))).scalars().all()
        audits = (await s.execute(select(AuditEntry).where(AuditEntry.entity_id == str(main)))).scalars().all()
    assert decision.mode == "auto" and decision.engineer_id == w.users["best"] and decision.decided_by is None
    assert decision.rule_version == r.RULES_VERSION and decision.weights == r.DEFAULT_WEIGHTS.as_dict()
    # Every candidate considered, the excluded with their reasons; the winner's breakdown.
    considered = {c["engineer_id"]: c for c in decision.candidates}
    assert considered[w.users["best"]]["rank"] == 1
    assert [e["code"] for e in considered[w.users["full"]]["exclusions"]] == ["at_capacity"]
    assert [e["code"] for e in considered[w.users["fridge"]]["exclusions"]] == ["no_skill"]
    assert set(decision.score["components"]) == set(r.COMPONENTS) and 0 < decision.score["total"] <= 1
    assert [(e.action, e.to_status) for e in events] == [("assigned", "已派单")]
    assert [a.action for a in audits] == ["dispatch"]
    # The engineer is told, with the deadline; the dispatchers and the supervisor too.
    told = await messages(mailbox, w.users["best"])
    assert told[0]["type"] == "order.assigned" and told[0]["accept_due_at"] == (T0 + ACCEPT_WINDOW).isoformat()
    for who in ("dispatcher", "supervisor"):
        assert (await messages(mailbox, w.users[who]))[0]["type"] == "dispatch.changed"
    # Nothing more to do on the next tick.
    assert await dispatch.run_pass(T0 + MIN) == type(result)()


async def test_nobody_matching_goes_to_the_dispatchers_queue(dispatch, sessionmaker, world):  # type: ignore[no-untyped-def]
    w = world
    await queue_for_dispatch(sessionmaker, w.orders["shanghai"], w.orders["no_category"])
    result = await dispatch.run_pass(T0)
    assert (result.dispatched, result.queued) == (0, 2)
    async with sessionmaker() as s:
        rows = {d.order_id: d for d in (await s.execute(select(DispatchDecision))).scalars()}
    for key in ("shanghai", "no_category"):
        o = await order(sessionmaker, w.orders[key])
        assert (o.status, o.engineer_id, o.auto_dispatch_due_at) == ("待处理", None, None)
        assert rows[w.orders[key]].engineer_id is None and rows[w.orders[key]].reason
    assert "5公里内没有工程师" in rows[w.orders["shanghai"]].reason
    assert "品类" in rows[w.orders["no_category"]].reason
    # Queued orders are not retried by the loop; a dispatcher may ask for the rules again.
    assert (await dispatch.run_pass(T0 + MIN)).queued == 0
    again = await dispatch.auto(w.orders["shanghai"], T0 + MIN, actor=person(w, "dispatcher", "dispatcher"),
                                queued_only=False)
    assert again is not None and again.queued


async def test_refusal_rematches_without_the_refuser_and_is_counted(dispatch, sessionmaker, world):  # type: ignore[no-untyped-def]
    w = world
    main = w.orders["main"]
    await queue_for_dispatch(sessionmaker, main)
    await dispatch.run_pass(T0)
    best = person(w, "best", "engineer")
    with pytest.raises(ValidationFailed) as e:
        await dispatch.refuse(main, best, reason="其他", note="  ", now=T0 + MIN)
    assert e.value.details["field"] == "note"
    with pytest.raises(ValidationFailed):
        await dispatch.refuse(main, best, reason="太远了", now=T0 + MIN)
    # Someone else cannot refuse for them (404: not theirs).
    with pytest.raises(Exception) as e:
        await dispatch.refuse(main, person(w, "moving", "engineer"), reason="时间冲突", now=T0 + MIN)
    assert getattr(e.value, "status", None) == 404
    out = await dispatch.refuse(main, best, reason="时间冲突", now=T0 + MIN)
    assert out.status == "待处理"
    o = await order(sessionmaker, main)
    assert (o.engineer_id, o.accept_due_at, aware(o.auto_dispatch_due_at)) == (None, None, T0 + MIN)
    result = await dispatch.run_pass(T0 + MIN)
    assert result.dispatched == 1
    o = await order(sessionmaker, main)
    assert o.engineer_id not in (None, w.users["best"])
    async with sessionmaker() as s:
        refusals = (await s.execute(select(DispatchRefusal))).scalars().all()
        latest = (await s.execute(select(DispatchDecision).where(DispatchDecision.order_id == main)
                                  .order_by(DispatchDecision.id.desc()))).scalars().first()
    assert [(x.engineer_id, x.reason, x.timed_out) for x in refusals] == [(w.users["best"], "时间冲突", False)]
    considered = {c["engineer_id"]: c for c in latest.candidates}
    assert [e["code"] for e in considered[w.users["best"]]["exclusions"]] == ["refused"]


async def test_silence_for_15_minutes_is_a_refusal(dispatch, sessionmaker, mailbox, world):  # type: ignore[no-untyped-def]
    w = world
    main = w.orders["main"]
    await queue_for_dispatch(sessionmaker, main)
    await dispatch.run_pass(T0)
    first = (await order(sessionmaker, main)).engineer_id
    # One second early: nothing happens.
    result = await dispatch.run_pass(T0 + ACCEPT_WINDOW - dt.timedelta(seconds=1))
    assert result.timed_out == 0 and (await order(sessionmaker, main)).engineer_id == first
    result = await dispatch.run_pass(T0 + ACCEPT_WINDOW)
    assert (result.timed_out, result.dispatched) == (1, 1)
    o = await order(sessionmaker, main)
    assert o.engineer_id not in (None, first) and o.status == "已派单"
    assert aware(o.accept_due_at) == T0 + 2 * ACCEPT_WINDOW
    async with sessionmaker() as s:
        refusal = (await s.execute(select(DispatchRefusal))).scalar_one()
        actions = [e.action for e in (await s.execute(
            select(OrderEvent).where(OrderEvent.order_id == main).order_by(OrderEvent.id))).scalars()]
    assert (refusal.engineer_id, refusal.timed_out, refusal.note) == (first, True, "15分钟内未接单")
    assert actions == ["assigned", "accept_timeout", "assigned"]
    assert [m["type"] for m in await messages(mailbox, first)] == ["order.assigned", "order.withdrawn"]


async def test_accepting_in_time_stops_the_clock(dispatch, sessionmaker, world):  # type: ignore[no-untyped-def]
    from callcenter.orders.services import OrderService
    from tests.apphelpers import keyed_settings

    w = world
    main = w.orders["main"]
    await queue_for_dispatch(sessionmaker, main)
    await dispatch.run_pass(T0)
    orders = OrderService(sessionmaker, keyed_settings())
    await orders.accept(main, person(w, "best", "engineer"), now=T0 + 10 * MIN)
    o = await order(sessionmaker, main)
    assert o.accept_due_at is None and aware(o.accepted_at) == T0 + 10 * MIN
    assert (await dispatch.run_pass(T0 + ACCEPT_WINDOW + MIN)).timed_out == 0
    with pytest.raises(Conflict) as e:
        await dispatch.refuse(main, person(w, "best", "engineer"), reason="时间冲突", now=T0 + 11 * MIN)
    assert e.value.code == "already_accepted"


async def test_manual_dispatch_respects_the_cap_and_records_the_reason(dispatch, sessionmaker, world):  # type: ignore[no-untyped-def]
    w = world
    dispatcher = person(w, "dispatcher", "dispatcher")
    main = w.orders["main"]
    with pytest.raises(Conflict) as e:
        await dispatch.manual(main, dispatcher, engineer_id=w.users["full"], reason="客户指定")
    assert e.value.code == "at_capacity" and e.value.details["cap"] == 3
    with pytest.raises(ValidationFailed):
        await dispatch.manual(main, dispatcher, engineer_id=w.users["gone"], reason="客户指定")
    with pytest.raises(ValidationFailed):
        await dispatch.manual(main, dispatcher, reason="客户指定")
    out = await dispatch.manual(main, dispatcher, engineer_id=w.users["corner"], reason="客户指定", version=1)
    assert (out.status, out.engineer_id, out.accept_due_at) == ("已派单", w.users["corner"], T0 + ACCEPT_WINDOW)
    # Re-dispatch needs the current version, and records the reason again.
    with pytest.raises(Conflict) as e:
        await dispatch.manual(main, dispatcher, engineer_id=w.users["best"], reason="改派", version=1)
    assert e.value.code == "stale_version"
    out = await dispatch.manual(main, dispatcher, engineer_id=w.users["best"], reason="原工程师请假", version=out.version)
    async with sessionmaker() as s:
        decisions = (await s.execute(select(DispatchDecision).order_by(DispatchDecision.id))).scalars().all()
    assert [(d.mode, d.engineer_id, d.reason, d.decided_by) for d in decisions] == [
        ("manual", w.users["corner"], "客户指定", dispatcher.id),
        ("manual", w.users["best"], "原工程师请假", dispatcher.id)]
    # The rules' view at the time is kept with a manual decision too.
    assert {c["engineer_id"] for c in decisions[0].candidates} >= {w.users["best"], w.users["full"]}


def test_queue_reason_names_the_commonest_exclusions() -> None:
    ex = r.excluded("too_far", distance=7.0, radius=5)
    full = r.excluded("at_capacity", open=3, cap=3)
    cands = tuple(r.Assessment(i, "", 1.0, "base", 0, 3, (e,), None) for i, e in enumerate([ex, ex, full]))
    text = queue_reason(r.Evaluation(1, T0, 5.0, r.DEFAULT_WEIGHTS, (), cands))
    assert text == "5公里内3名工程师均不符合（距离过远2人、工单已满1人）"
    assert queue_reason(r.Evaluation(1, T0, 5.0, r.DEFAULT_WEIGHTS, (), ())) == "5公里内没有工程师"


async def test_leaving_pending_leaves_the_queues_and_a_converted_remote_order_joins(dispatch, sessionmaker, world):  # type: ignore[no-untyped-def]
    from callcenter.orders.services import OrderService
    from tests.apphelpers import keyed_settings

    w = world
    orders = OrderService(sessionmaker, keyed_settings())
    main, other = w.orders["main"], w.orders["unlocated"]
    await queue_for_dispatch(sessionmaker, main, other)
    # Cancelled while due: out of the queue, nothing dispatched.
    await orders.transition(main, "已取消", person(w, "dispatcher", "dispatcher"), version=1, reason="客户取消", now=T0)
    assert (await order(sessionmaker, main)).auto_dispatch_due_at is None
    # A remote-support session that did not work becomes 上门维修 and is due for dispatch now.
    async with sessionmaker.begin() as s:
        await s.execute(update(WorkOrder).where(WorkOrder.id == other).values(
            service_type="远程支持", status="服务中", auto_dispatch_due_at=None))
    await orders.transition(other, "待处理", person(w, "dispatcher", "dispatcher"), version=1,
                            note="远程指导无效，转上门", now=T0 + MIN)
    o = await order(sessionmaker, other)
    assert (o.service_type, o.status, aware(o.auto_dispatch_due_at)) == ("上门维修", "待处理", T0 + MIN)
    result = await dispatch.run_pass(T0 + MIN)
    assert result.dispatched == 1 and (await order(sessionmaker, main)).engineer_id is None
