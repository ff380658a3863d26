"""The work-order state machine as data (pure: no I/O, ``now`` is an argument).

Two families of states:

* on-site kinds (上门维修 / 安装 / 退换货): 待处理 → 已派单 → 已预约 → 服务中 ⇄ 待件 → 已完成 → 已回访;
  an engineer may refuse a dispatched order (已派单 → 待处理, with a reason); after parts arrive
  the order is booked again (待件 → 已预约) or resumed on the spot (待件 → 服务中).
* 远程支持 remote support needs no dispatch: 待处理 → 服务中 (the session starts, which is also
  the plan given to the customer) → 已完成. When it does not work it converts to 上门维修 in
  place (服务中 → 待处理, service type changed, everything the customer said kept), so the
  customer never repeats the story.
* 送修 carry-in: 待修 → 修理中 ⇄ 待件, 修理中 ⇄ 难修, → 待取 → 已取.

已取消 (a reason required) from every state before the end (已完成 / 已取).

Each :class:`Rule` says who may take it (roles; an engineer only on an order assigned to them,
which ``callcenter.access`` enforces before we get here), what must be filled in
(:class:`Facts`), and which milestone columns it stamps. :func:`check_transition` answers a
:class:`Decision` or raises: ``Conflict`` (409) for a move the machine does not have or whose
preconditions the order does not meet, ``Forbidden`` (403) for a role that may not take it,
``ValidationFailed`` (422) for input the request must carry (reason, note).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Protocol

from callcenter.errors import Conflict, Forbidden, ValidationFailed

# Service types.
ONSITE_REPAIR, INSTALL, RETURN, REMOTE, CARRY_IN = "上门维修", "安装", "退换货", "远程支持", "送修"
SERVICE_TYPES = (ONSITE_REPAIR, INSTALL, RETURN, REMOTE, CARRY_IN)
ONSITE_KINDS = (ONSITE_REPAIR, INSTALL, RETURN)

# Statuses.
PENDING, DISPATCHED, BOOKED, IN_SERVICE, WAITING_PARTS = "待处理", "已派单", "已预约", "服务中", "待件"
DONE, SURVEYED, CANCELLED = "已完成", "已回访", "已取消"
WAITING, REPAIRING, HARD_CASE, READY, COLLECTED = "待修", "修理中", "难修", "待取", "已取"
ONSITE_STATUSES = (PENDING, DISPATCHED, BOOKED, IN_SERVICE, WAITING_PARTS, DONE, SURVEYED, CANCELLED)
CARRY_IN_STATUSES = (WAITING, REPAIRING, WAITING_PARTS, HARD_CASE, READY, COLLECTED, CANCELLED)
# "Open": the centre still owes the customer something.
CLOSED_STATUSES = (DONE, SURVEYED, CANCELLED, COLLECTED)

# Roles.
AGENT, DISPATCHER, ENGINEER, SURVEY, SUPERVISOR, ADMIN = (
    "agent", "dispatcher", "engineer", "survey", "supervisor", "admin")
_LEADS = (SUPERVISOR, ADMIN)

# Requirements a rule may carry (names are what the 409/422 details say).
NEEDS_REASON = "reason"  # the request's reason (422 when empty)
NEEDS_NOTE = "note"  # the request's note (422 when empty)
NEEDS_ENGINEER = "engineer"  # an engineer assigned to the order
NEEDS_APPOINTMENT = "confirmed_appointment"  # a confirmed SA-AP-003
NEEDS_ONSITE_SIGNED = "onsite_record"  # root cause + solution + customer confirmed + signed
NEEDS_REPAIR_RECORD = "repair_record"  # root cause + solution (carry-in bench repair)
NEEDS_SURVEY = "survey"  # a survey result, or a survey agent's note

_REQUIREMENT_TEXT = {
    NEEDS_ENGINEER: "需先指派工程师 (an engineer must be assigned first)",
    NEEDS_APPOINTMENT: "需有客户确认的预约 (a confirmed appointment is required)",
    NEEDS_ONSITE_SIGNED: "需有上门服务记录：故障原因、解决方案、客户确认并签字 "
                         "(an on-site record with root cause, solution, customer confirmation and signature is required)",
    NEEDS_REPAIR_RECORD: "需有维修记录：故障原因与解决方案 (a repair record with root cause and solution is required)",
    NEEDS_SURVEY: "需有回访结果或回访专员的备注 (a survey result or a survey agent's note is required)",
}


@dataclass(frozen=True, slots=True)
class Rule:
    """One edge of the machine."""

    frm: str
    to: str
    roles: tuple[str, ...]
    requires: tuple[str, ...] = ()
    # Milestone columns set to ``now`` when still empty.
    stamps: tuple[str, ...] = ()
    # Columns reset to None (an engineer refusing the order gives it back undispatched).
    clears: tuple[str, ...] = ()
    # The service type the order becomes (remote support converted to an on-site repair).
    becomes: str | None = None
    label: str = ""
    # Taken by the assign endpoint only (it names the engineer); the generic transition
    # endpoint refuses it.
    assigns: bool = False


_ALL_STAFF = (AGENT, DISPATCHER, ENGINEER, SUPERVISOR, ADMIN)
_CANCELLERS = (AGENT, DISPATCHER) + _LEADS
_FIELD = (ENGINEER,) + _LEADS
_DISPATCHERS = (DISPATCHER,) + _LEADS


def _cancel(states: tuple[str, ...]) -> list[Rule]:
    return [Rule(s, CANCELLED, _CANCELLERS, (NEEDS_REASON,), label="取消工单") for s in states]


_ONSITE: list[Rule] = [
    Rule(PENDING, DISPATCHED, _DISPATCHERS, (NEEDS_ENGINEER,), ("dispatched_at",), label="派单", assigns=True),
    Rule(DISPATCHED, DISPATCHED, _DISPATCHERS, (NEEDS_ENGINEER,), label="改派", assigns=True),
    Rule(BOOKED, DISPATCHED, _DISPATCHERS, (NEEDS_ENGINEER,), label="改派", assigns=True),
    Rule(DISPATCHED, PENDING, (ENGINEER, DISPATCHER) + _LEADS, (NEEDS_REASON,),
         clears=("engineer_id", "dispatched_at", "accepted_at", "contacted_at"), label="拒单/退回待派"),
    Rule(DISPATCHED, BOOKED, _ALL_STAFF, (NEEDS_ENGINEER, NEEDS_APPOINTMENT), ("planned_at",), label="预约确认"),
    Rule(BOOKED, IN_SERVICE, _FIELD, (NEEDS_ENGINEER,), ("service_started_at",), label="开始服务"),
    Rule(IN_SERVICE, WAITING_PARTS, _FIELD + (DISPATCHER,), (NEEDS_NOTE,), label="待件"),
    Rule(WAITING_PARTS, IN_SERVICE, _FIELD, (NEEDS_ENGINEER,), label="到件继续服务"),
    Rule(WAITING_PARTS, BOOKED, _ALL_STAFF, (NEEDS_ENGINEER, NEEDS_APPOINTMENT), label="到件再次预约"),
    Rule(IN_SERVICE, DONE, _FIELD, (NEEDS_ONSITE_SIGNED,), ("service_finished_at", "completed_at"),
         label="完工"),
    Rule(DONE, SURVEYED, (SURVEY,) + _LEADS, (NEEDS_SURVEY,), ("surveyed_at",), label="回访"),
    *_cancel((PENDING, DISPATCHED, BOOKED, IN_SERVICE, WAITING_PARTS)),
]

_REMOTE: list[Rule] = [
    # The session itself is the plan given to the customer.
    Rule(PENDING, IN_SERVICE, _ALL_STAFF, (), ("planned_at", "service_started_at"), label="开始远程支持"),
    Rule(IN_SERVICE, DONE, _ALL_STAFF, (NEEDS_NOTE,), ("service_finished_at", "completed_at"),
         label="远程解决"),
    # Did not work: the same order becomes an on-site repair waiting for dispatch.
    Rule(IN_SERVICE, PENDING, _ALL_STAFF, (NEEDS_NOTE,), becomes=ONSITE_REPAIR, label="转上门维修"),
    Rule(PENDING, PENDING, _ALL_STAFF, (NEEDS_NOTE,), becomes=ONSITE_REPAIR, label="转上门维修"),
    Rule(DONE, SURVEYED, (SURVEY,) + _LEADS, (NEEDS_SURVEY,), ("surveyed_at",), label="回访"),
    *_cancel((PENDING, IN_SERVICE)),
]

_CARRY_IN: list[Rule] = [
    *[Rule(st, st, _DISPATCHERS, (NEEDS_ENGINEER,), ("dispatched_at",), label="指派维修工程师", assigns=True)
      for st in (WAITING, REPAIRING, HARD_CASE)],
    Rule(WAITING, REPAIRING, _FIELD, (NEEDS_ENGINEER,), ("planned_at", "service_started_at"), label="开始维修"),
    Rule(REPAIRING, WAITING_PARTS, _FIELD, (NEEDS_NOTE,), label="待件"),
    Rule(WAITING_PARTS, REPAIRING, _FIELD, (NEEDS_ENGINEER,), label="到件继续维修"),
    Rule(REPAIRING, HARD_CASE, _FIELD, (NEEDS_NOTE,), label="难修"),
    Rule(HARD_CASE, REPAIRING, _FIELD, (NEEDS_ENGINEER,), label="继续维修"),
    Rule(HARD_CASE, WAITING_PARTS, _FIELD, (NEEDS_NOTE,), label="待件"),
    Rule(REPAIRING, READY, _FIELD, (NEEDS_REPAIR_RECORD,), label="修复待取"),
    # Could not be repaired: returned to the customer as it is, with the reason.
    Rule(HARD_CASE, READY, _FIELD, (NEEDS_NOTE,), label="无法修复待取"),
    # The service ends when the customer collects and signs for the appliance (so the sign-off
    # clock never runs across the days a repaired unit waits on the shelf).
    Rule(READY, COLLECTED, (AGENT, ENGINEER) + _LEADS, (),
         ("service_finished_at", "signed_at", "completed_at"), label="客户取机"),
    *_cancel((WAITING, REPAIRING, WAITING_PARTS, HARD_CASE, READY)),
]

RULES: dict[str, dict[tuple[str, str], Rule]] = {}
for _kind, _rules in ((ONSITE_REPAIR, _ONSITE), (INSTALL, _ONSITE), (RETURN, _ONSITE),
                      (REMOTE, _REMOTE), (CARRY_IN, _CARRY_IN)):
    RULES[_kind] = {(r.frm, r.to): r for r in _rules}


def initial_status(service_type: str) -> str:
    """The status a new order starts in."""
    if service_type not in RULES:
        raise ValidationFailed("service_type", f"one of {', '.join(SERVICE_TYPES)}")
    return WAITING if service_type == CARRY_IN else PENDING


def statuses(service_type: str) -> tuple[str, ...]:
    return CARRY_IN_STATUSES if service_type == CARRY_IN else ONSITE_STATUSES


def is_open(status: str) -> bool:
    return status not in CLOSED_STATUSES


class OrderSnapshot(Protocol):
    status: str
    service_type: str
    engineer_id: int | None


@dataclass(frozen=True, slots=True)
class Actor:
    id: int | None
    role: str


@dataclass(frozen=True, slots=True)
class Facts:
    """What the caller knows about the order and the request, beyond the order row itself."""

    reason: str = ""
    note: str = ""
    # An engineer the same request assigns (dispatch), when the order has none yet.
    engineer_id: int | None = None
    appointment_confirmed: bool = False
    # The contract's guard for 已完成: an onsite_records row with root_cause, solution,
    # customer_confirmed and signed_at.
    onsite_signed: bool = False
    # Root cause and solution recorded (the carry-in bench repair).
    repair_recorded: bool = False
    survey_recorded: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """What a legal transition does to the order: new status (and service type), milestone
    columns to stamp with ``at`` (only those still empty), columns to clear."""

    frm: str
    to: str
    at: dt.datetime
    rule: Rule
    service_type: str
    stamps: tuple[str, ...] = ()
    clears: tuple[str, ...] = field(default_factory=tuple)

    def values(self, current: dict[str, object]) -> dict[str, object]:
        """Column → new value, given the order's ``current`` milestone values."""
        out: dict[str, object] = {"status": self.to}
        if self.service_type:
            out["service_type"] = self.service_type
        for col in self.stamps:
            if current.get(col) is None:
                out[col] = self.at
        for col in self.clears:
            out[col] = None
        return out


def _missing(req: str, order: OrderSnapshot, actor: Actor, facts: Facts) -> bool:
    if req == NEEDS_ENGINEER:
        return order.engineer_id is None and facts.engineer_id is None
    if req == NEEDS_APPOINTMENT:
        return not facts.appointment_confirmed
    if req == NEEDS_ONSITE_SIGNED:
        return not facts.onsite_signed
    if req == NEEDS_REPAIR_RECORD:
        return not (facts.repair_recorded or facts.onsite_signed)
    if req == NEEDS_SURVEY:
        return not (facts.survey_recorded or (actor.role == SURVEY and facts.note.strip()))
    return False


def find_rule(order: OrderSnapshot, to: str) -> Rule:
    """The rule for ``order.status → to``; Conflict (409) naming both when there is none."""
    table = RULES.get(order.service_type)
    if table is None:
        raise Conflict(f"未知的服务类型 {order.service_type} (unknown service type)",
                       code="illegal_transition", frm=order.status, to=to)
    rule = table.get((order.status, to))
    if rule is None:
        if order.status in CLOSED_STATUSES and to == CANCELLED:
            why = (f"工单状态为{order.status}，不能取消（不能转为{to}） "
                   f"(an order that is {order.status} can no longer be cancelled)")
        elif to not in statuses(order.service_type):
            why = (f"不能从{order.status}转为{to}：{order.service_type}工单没有此状态 "
                   f"(a {order.service_type} order has no status {to})")
        else:
            why = (f"不能从{order.status}转为{to} (no transition from {order.status} to {to} "
                   f"for a {order.service_type} order)")
        raise Conflict(why, code="illegal_transition", frm=order.status, to=to,
                       allowed=[t for (f, t) in table if f == order.status])
    return rule


def check_transition(order: OrderSnapshot, to: str, actor: Actor, facts: Facts,
                     now: dt.datetime) -> Decision:
    """Whether ``actor`` may move ``order`` to ``to`` now, and what that does.

    Raises Conflict (409, code ``illegal_transition`` or ``requirement_missing``; details name
    ``frm``, ``to`` and what is missing), Forbidden (403) for a role not allowed to take this
    transition, ValidationFailed (422, field ``reason`` or ``note``) for text the request lacks.
    Checked in that order, so the answer names the most fundamental problem.
    """
    rule = find_rule(order, to)
    if actor.role not in rule.roles:
        raise Forbidden(f"无权限：{rule.label or to} (role {actor.role} may not move an order "
                        f"from {order.status} to {to})", frm=order.status, to=to, role=actor.role)
    for req in rule.requires:
        if req == NEEDS_REASON and not facts.reason.strip():
            raise ValidationFailed("reason", f"转为{to}须填写原因 (a reason is required for {to})")
        if req == NEEDS_NOTE and not facts.note.strip():
            raise ValidationFailed("note", f"转为{to}须填写说明 (a note is required for {to})")
        if _missing(req, order, actor, facts):
            raise Conflict(f"{_REQUIREMENT_TEXT[req]}: {order.status} → {to}",
                           code="requirement_missing", frm=order.status, to=to, requires=req)
    return Decision(order.status, to, now, rule, rule.becomes or "", rule.stamps, rule.clears)


def allowed_transitions(order: OrderSnapshot, actor: Actor, facts: Facts,
                        now: dt.datetime) -> list[str]:
    """The targets ``actor`` could choose now, ignoring what the request itself would carry (a
    reason, a note, the engineer a dispatch names): what the order page offers as buttons."""
    table = RULES.get(order.service_type, {})
    out: list[str] = []
    hypothetical = replace(facts, reason="x", note="x")
    for (frm, to), rule in table.items():
        if frm != order.status or to in out:
            continue
        try:
            check_transition(order, to, actor, replace(hypothetical, engineer_id=-1) if rule.assigns
                             else hypothetical, now)
        except (Conflict, Forbidden, ValidationFailed):
            continue
        out.append(to)
    return out

