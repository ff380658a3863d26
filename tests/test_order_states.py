"""The work-order state machine and the order warranty rules, as tables (pure; no clock)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from callcenter.customers.warranty import (
    Warranty, effective_months, fee_note, warranty_kind,
)
from callcenter.errors import Conflict, Forbidden, ValidationFailed
from callcenter.orders import states as st
from callcenter.orders.states import Actor, Facts, check_transition

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
ROLES = ("agent", "dispatcher", "engineer", "survey", "supervisor", "admin")
EVERYTHING = Facts(reason="客户取消", note="说明", engineer_id=7, appointment_confirmed=True,
                   onsite_signed=True, repair_recorded=True, survey_recorded=True)


@dataclass
class Order:
    status: str
    service_type: str = st.ONSITE_REPAIR
    engineer_id: int | None = 7


ALL_RULES = [(kind, rule) for kind, table in st.RULES.items() for rule in table.values()]


@pytest.mark.parametrize(("kind", "rule"), ALL_RULES,
                         ids=[f"{k}:{r.frm}->{r.to}" for k, r in ALL_RULES])
def test_every_legal_transition_with_its_roles(kind: str, rule: st.Rule) -> None:
    order = Order(rule.frm, kind)
    for role in ROLES:
        actor = Actor(7, role)
        if role in rule.roles:
            d = check_transition(order, rule.to, actor, EVERYTHING, NOW)
            assert (d.frm, d.to) == (rule.frm, rule.to)
            values = d.values({})
            assert values["status"] == rule.to
            assert all(values[c] == NOW for c in rule.stamps)
            assert all(values[c] is None for c in rule.clears)
        else:
            with pytest.raises(Forbidden):
                check_transition(order, rule.to, actor, EVERYTHING, NOW)


# The on-site flow as the process describes it, step by step.
ONSITE_PATH = [
    (st.PENDING, st.DISPATCHED, "dispatcher", ("dispatched_at",)),
    (st.DISPATCHED, st.BOOKED, "engineer", ("planned_at",)),
    (st.BOOKED, st.IN_SERVICE, "engineer", ("service_started_at",)),
    (st.IN_SERVICE, st.WAITING_PARTS, "engineer", ()),
    (st.WAITING_PARTS, st.IN_SERVICE, "engineer", ()),
    (st.IN_SERVICE, st.DONE, "engineer", ("service_finished_at", "completed_at")),
    (st.DONE, st.SURVEYED, "survey", ("surveyed_at",)),
]


@pytest.mark.parametrize(("kind"), st.ONSITE_KINDS)
@pytest.mark.parametrize(("frm", "to", "role", "stamps"), ONSITE_PATH)
def test_onsite_path(kind: str, frm: str, to: str, role: str, stamps: tuple[str, ...]) -> None:
    d = check_transition(Order(frm, kind), to, Actor(7, role), EVERYTHING, NOW)
    assert d.stamps == stamps and d.service_type == ""


ILLEGAL = [
    (st.ONSITE_REPAIR, st.PENDING, st.BOOKED),
    (st.ONSITE_REPAIR, st.PENDING, st.IN_SERVICE),
    (st.ONSITE_REPAIR, st.PENDING, st.DONE),
    (st.ONSITE_REPAIR, st.DISPATCHED, st.IN_SERVICE),
    (st.ONSITE_REPAIR, st.DISPATCHED, st.DONE),
    (st.ONSITE_REPAIR, st.BOOKED, st.DONE),
    (st.ONSITE_REPAIR, st.BOOKED, st.WAITING_PARTS),
    (st.ONSITE_REPAIR, st.WAITING_PARTS, st.DONE),
    (st.ONSITE_REPAIR, st.DONE, st.CANCELLED),
    (st.ONSITE_REPAIR, st.DONE, st.IN_SERVICE),
    (st.ONSITE_REPAIR, st.SURVEYED, st.CANCELLED),
    (st.ONSITE_REPAIR, st.SURVEYED, st.DONE),
    (st.ONSITE_REPAIR, st.CANCELLED, st.PENDING),
    (st.ONSITE_REPAIR, st.CANCELLED, st.CANCELLED),
    (st.ONSITE_REPAIR, st.PENDING, st.REPAIRING),  # a carry-in status
    (st.ONSITE_REPAIR, st.PENDING, "不存在"),
    (st.INSTALL, st.IN_SERVICE, st.SURVEYED),
    (st.RETURN, st.PENDING, st.SURVEYED),
    (st.REMOTE, st.PENDING, st.DISPATCHED),  # remote support needs no dispatch
    (st.REMOTE, st.PENDING, st.BOOKED),
    (st.REMOTE, st.IN_SERVICE, st.WAITING_PARTS),
    (st.REMOTE, st.DONE, st.CANCELLED),
    (st.CARRY_IN, st.WAITING, st.READY),
    (st.CARRY_IN, st.WAITING, st.COLLECTED),
    (st.CARRY_IN, st.REPAIRING, st.COLLECTED),
    (st.CARRY_IN, st.WAITING_PARTS, st.READY),
    (st.CARRY_IN, st.COLLECTED, st.CANCELLED),
    (st.CARRY_IN, st.WAITING, st.PENDING),  # an on-site status
    (st.CARRY_IN, st.READY, st.DONE),
]


@pytest.mark.parametrize(("kind", "frm", "to"), ILLEGAL)
def test_illegal_transitions_are_409_naming_from_and_to(kind: str, frm: str, to: str) -> None:
    with pytest.raises(Conflict) as e:
        check_transition(Order(frm, kind), to, Actor(1, "admin"), EVERYTHING, NOW)
    assert e.value.status == 409 and e.value.code == "illegal_transition"
    assert e.value.details["frm"] == frm and e.value.details["to"] == to
    assert frm in e.value.message and to in e.value.message


def test_a_done_order_can_no_longer_be_cancelled_and_says_so() -> None:
    with pytest.raises(Conflict, match="不能取消"):
        check_transition(Order(st.DONE), st.CANCELLED, Actor(1, "admin"), EVERYTHING, NOW)


@pytest.mark.parametrize("frm", [st.PENDING, st.DISPATCHED, st.BOOKED, st.IN_SERVICE, st.WAITING_PARTS])
def test_cancel_from_any_state_before_done_needs_a_reason(frm: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        check_transition(Order(frm), st.CANCELLED, Actor(1, "agent"), Facts(reason="  "), NOW)
    assert e.value.details["field"] == "reason"
    d = check_transition(Order(frm), st.CANCELLED, Actor(1, "agent"), Facts(reason="客户不修了"), NOW)
    assert d.to == st.CANCELLED


# (kind, from, to, role, facts, what is missing)
GUARDS = [
    (st.ONSITE_REPAIR, st.PENDING, st.DISPATCHED, "dispatcher", Facts(), "engineer"),
    (st.ONSITE_REPAIR, st.DISPATCHED, st.BOOKED, "engineer", Facts(), "confirmed_appointment"),
    (st.ONSITE_REPAIR, st.WAITING_PARTS, st.BOOKED, "agent", Facts(), "confirmed_appointment"),
    (st.ONSITE_REPAIR, st.IN_SERVICE, st.DONE, "engineer", Facts(), "onsite_record"),
    # Cause and fix recorded but the customer has not signed: still not done.
    (st.ONSITE_REPAIR, st.IN_SERVICE, st.DONE, "engineer", Facts(repair_recorded=True), "onsite_record"),
    (st.INSTALL, st.IN_SERVICE, st.DONE, "supervisor", Facts(), "onsite_record"),
    (st.ONSITE_REPAIR, st.DONE, st.SURVEYED, "supervisor", Facts(note="客户满意"), "survey"),
    (st.CARRY_IN, st.REPAIRING, st.READY, "engineer", Facts(), "repair_record"),
]


@pytest.mark.parametrize(("kind", "frm", "to", "role", "facts", "missing"), GUARDS)
def test_guards_name_what_is_missing(kind: str, frm: str, to: str, role: str, facts: Facts,
                                     missing: str) -> None:
    order = Order(frm, kind, engineer_id=None if missing == "engineer" else 7)
    with pytest.raises(Conflict) as e:
        check_transition(order, to, Actor(7, role), facts, NOW)
    assert e.value.code == "requirement_missing" and e.value.details["requires"] == missing


# (kind, from, to, facts, field)
TEXT_REQUIRED = [
    (st.ONSITE_REPAIR, st.IN_SERVICE, st.WAITING_PARTS, "note"),
    (st.ONSITE_REPAIR, st.DISPATCHED, st.PENDING, "reason"),  # the engineer refuses
    (st.REMOTE, st.IN_SERVICE, st.DONE, "note"),
    (st.REMOTE, st.IN_SERVICE, st.PENDING, "note"),
    (st.CARRY_IN, st.REPAIRING, st.HARD_CASE, "note"),
    (st.CARRY_IN, st.HARD_CASE, st.READY, "note"),
]


@pytest.mark.parametrize(("kind", "frm", "to", "field"), TEXT_REQUIRED)
def test_text_a_transition_must_carry(kind: str, frm: str, to: str, field: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        check_transition(Order(frm, kind), to, Actor(7, "admin"), Facts(), NOW)
    assert e.value.details["field"] == field


def test_a_survey_agents_note_is_enough_for_the_survey() -> None:
    d = check_transition(Order(st.DONE), st.SURVEYED, Actor(3, "survey"), Facts(note="电话回访，满意"), NOW)
    assert d.values({})["surveyed_at"] == NOW
    d = check_transition(Order(st.DONE), st.SURVEYED, Actor(3, "supervisor"), Facts(survey_recorded=True), NOW)
    assert d.to == st.SURVEYED


def test_remote_support_converts_to_an_onsite_repair_in_place() -> None:
    d = check_transition(Order(st.IN_SERVICE, st.REMOTE, None), st.PENDING, Actor(1, "agent"),
                         Facts(note="重置无效"), NOW)
    assert d.service_type == st.ONSITE_REPAIR
    assert d.values({}) == {"status": st.PENDING, "service_type": st.ONSITE_REPAIR}
    # …and from then on follows the on-site machine: it needs a dispatch.
    converted = Order(st.PENDING, st.ONSITE_REPAIR, None)
    assert "已派单" in st.allowed_transitions(converted, Actor(2, "dispatcher"), Facts(), NOW)


def test_remote_support_starts_without_dispatch_and_that_is_the_plan() -> None:
    d = check_transition(Order(st.PENDING, st.REMOTE, None), st.IN_SERVICE, Actor(1, "agent"), Facts(), NOW)
    assert set(d.stamps) == {"planned_at", "service_started_at"}


def test_refusal_gives_the_order_back_undispatched() -> None:
    d = check_transition(Order(st.DISPATCHED), st.PENDING, Actor(7, "engineer"), Facts(reason="技能不符"), NOW)
    values = d.values({"dispatched_at": NOW})
    assert values["engineer_id"] is None and values["dispatched_at"] is None


def test_stamps_keep_the_first_time() -> None:
    earlier = NOW - dt.timedelta(hours=3)
    d = check_transition(Order(st.WAITING_PARTS), st.BOOKED, Actor(7, "engineer"), EVERYTHING, NOW)
    assert "planned_at" not in d.values({"planned_at": earlier})  # not a stamp of this edge
    d = check_transition(Order(st.DISPATCHED), st.BOOKED, Actor(7, "engineer"), EVERYTHING, NOW)
    assert "planned_at" not in d.values({"planned_at": earlier})
    assert d.values({"planned_at": None})["planned_at"] == NOW


def test_carry_in_flow() -> None:
    path = [(st.WAITING, st.REPAIRING), (st.REPAIRING, st.HARD_CASE), (st.HARD_CASE, st.REPAIRING),
            (st.REPAIRING, st.WAITING_PARTS), (st.WAITING_PARTS, st.REPAIRING),
            (st.REPAIRING, st.READY), (st.READY, st.COLLECTED)]
    for frm, to in path:
        d = check_transition(Order(frm, st.CARRY_IN), to, Actor(7, "engineer"), EVERYTHING, NOW)
        assert d.to == to
    assert st.initial_status(st.CARRY_IN) == st.WAITING
    assert set(d.stamps) == {"service_finished_at", "signed_at", "completed_at"}
    assert not st.is_open(st.COLLECTED) and st.is_open(st.READY)


@pytest.mark.parametrize(("status", "role", "expected"), [
    (st.PENDING, "dispatcher", [st.DISPATCHED, st.CANCELLED]),
    (st.PENDING, "agent", [st.CANCELLED]),
    (st.PENDING, "engineer", []),
    (st.PENDING, "survey", []),
    (st.DISPATCHED, "engineer", [st.PENDING]),  # book through an appointment, or refuse
    (st.BOOKED, "engineer", [st.IN_SERVICE]),
    (st.BOOKED, "agent", [st.CANCELLED]),
    (st.IN_SERVICE, "engineer", [st.WAITING_PARTS]),  # 已完成 waits for the signed record
    (st.DONE, "survey", [st.SURVEYED]),
    (st.DONE, "agent", []),
    (st.CANCELLED, "admin", []),
])
def test_allowed_transitions_for_the_buttons(status: str, role: str, expected: list[str]) -> None:
    assert st.allowed_transitions(Order(status), Actor(7, role), Facts(), NOW) == expected


def test_allowed_transitions_follow_the_records() -> None:
    signed = Facts(onsite_signed=True)
    assert st.DONE in st.allowed_transitions(Order(st.IN_SERVICE), Actor(7, "engineer"), signed, NOW)


@pytest.mark.parametrize(("kind", "initial"), [
    (st.ONSITE_REPAIR, st.PENDING), (st.INSTALL, st.PENDING), (st.RETURN, st.PENDING),
    (st.REMOTE, st.PENDING), (st.CARRY_IN, st.WAITING)])
def test_initial_status(kind: str, initial: str) -> None:
    assert st.initial_status(kind) == initial


def test_unknown_service_type() -> None:
    with pytest.raises(ValidationFailed):
        st.initial_status("上门送餐")
    with pytest.raises(Conflict):
        check_transition(Order(st.PENDING, "上门送餐"), st.CANCELLED, Actor(1, "admin"), EVERYTHING, NOW)


# --- warranty for orders ----------------------------------------------------------------------

D = dt.date


@pytest.mark.parametrize(("own", "category", "expected"), [
    (24, 12, 24),  # the appliance's own months win (extended warranty)
    (0, 36, 0),
    (None, 36, 36),  # else the category's
    (None, None, 12),  # else 12
    (None, -1, 12),
])
def test_effective_months(own: int | None, category: int | None, expected: int) -> None:
    assert effective_months(own, category) == expected


@pytest.mark.parametrize(("status", "claim", "kind"), [
    ("in", False, "保内"), ("out", False, "保外"), ("unknown", False, "保外"),
    ("in", True, "理赔机"), ("out", True, "理赔机"),
])
def test_warranty_kind(status: str, claim: bool, kind: str) -> None:
    assert warranty_kind(Warranty(status, None, None), claim) == kind


@pytest.mark.parametrize(("kind", "expires", "note"), [
    ("保外", D(2023, 8, 15), "保修已于2023-08-15到期：更换配件前先报价，费用按官方价目表"),
    ("保内", D(2027, 5, 20), "保修期内（至2027-05-20）：上门费、人工与配件免费"),
    ("保外", None, "无购买凭证日期，按保外处理：更换配件前先报价，费用按官方价目表"),
    ("理赔机", D(2023, 8, 15), "理赔机：费用按理赔流程结算，更换配件前先报价"),
])
def test_fee_notes(kind: str, expires: dt.date | None, note: str) -> None:
    assert fee_note(kind, expires) == note
