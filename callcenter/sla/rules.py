"""The SLA clocks of a work order: pure functions of the order's milestones and ``now``.

The time standards of the centre's process (docs: ``shared/domain.md``):

============  ======================  ================  =========================================
clock         starts at               met at            allowance
============  ======================  ================  =========================================
plan          ``created_at``          ``planned_at``    普通 2 h · 紧急 30 min · 特急 10 min
dispatch      ``created_at``          ``dispatched_at`` 5 min (not for 远程支持 or 送修)
contact       ``accepted_at``         ``contacted_at``  30 min
reminder      see below               ``reminded_at``   due 1 h before ``appointment_start``
signoff       ``service_finished_at`` ``signed_at``     10 min
survey        ``completed_at``        ``surveyed_at``   24 h (on-site kinds only)
escalation    ``dissatisfied_at``     ``escalated_at``  1 h
============  ======================  ================  =========================================

A clock exists once its start milestone is set. Its **deadline** is start + allowance; its
**warning time** is start + 80 % of the allowance. Its **state**:

- ``running``: not met yet, before the deadline;
- ``breached``: not met yet, at or after the deadline (the clock still runs: it is late);
- ``met``: the milestone came at or before the deadline; ``late-met``: after it;
- ``missed``: the order moved past the stage without the milestone (see *ends*) — the clock
  stopped without being met.

Only a running clock (``running`` or ``breached``) raises alerts: ``warning`` from the warning
time on, ``breach`` from the deadline on (both levels are due past the deadline: the warning was
reached too). Boundaries are inclusive: exactly 80 % warns, exactly at the deadline breaches, a
milestone exactly at the deadline is met.

The **reminder** clock is anchored on the visit, not on an event: its deadline is
``appointment_start − 1 h``. A reminder call is useful from 2 h before the visit, so the clock
starts 1 h before its deadline — or at the booking (``planned_at``) if the visit was booked
later than that, and not at all if it was booked after the deadline (the booking call itself
told the customer). Its warning therefore comes at 80 % of that window: 12 min before the
reminder is due (1 h 12 min before the visit) for a visit booked well ahead.

**Ends**: completing the order (``completed_at``) ends the clocks of the earlier stages (plan,
dispatch, contact, reminder, signoff) that were never met; the visit starting
(``service_started_at``) also ends the reminder. A cancelled order (已取消) has no clocks at all;
nor has an order imported from the old system (``source == "import"``: its deadlines passed
long before this system knew of it). Carry-in repairs (送修) have no plan or dispatch clock (the
customer brings the appliance: nobody is sent) and no survey clock (their flow ends at 已取).

Every datetime is an aware UTC ``datetime`` (time zones play no part: the allowances are
durations). An unknown urgency counts as 普通.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

H = dt.timedelta(hours=1)
MIN = dt.timedelta(minutes=1)

CLOCKS = ("plan", "dispatch", "contact", "reminder", "signoff", "survey", "escalation")
LABELS = {"plan": "方案答复", "dispatch": "派单", "contact": "联系客户", "reminder": "上门提醒",
          "signoff": "签字确认", "survey": "回访", "escalation": "不满升级"}
LEVELS = ("warning", "breach")
URGENCIES = ("普通", "紧急", "特急")

# Time to a plan, by urgency (stage 1 of the process).
PLAN_ALLOWANCES: dict[str, dt.timedelta] = {"普通": 2 * H, "紧急": 30 * MIN, "特急": 10 * MIN}
# Every other clock's allowance. For the reminder: the window before it is due (see above).
ALLOWANCES: dict[str, dt.timedelta] = {
    "dispatch": 5 * MIN, "contact": 30 * MIN, "reminder": 1 * H, "signoff": 10 * MIN,
    "survey": 24 * H, "escalation": 1 * H,
}
# The reminder is due this long before the visit.
REMINDER_LEAD = 1 * H
# A warning is due at this share of the allowance (percent; integer arithmetic, exact to the µs).
WARNING_PERCENT = 80

RUNNING, BREACHED, MET, LATE_MET, MISSED = "running", "breached", "met", "late-met", "missed"
CANCELLED = "已取消"
REMOTE, CARRY_IN = "远程支持", "送修"
NO_PLAN = frozenset({CARRY_IN})
NO_DISPATCH = frozenset({REMOTE, CARRY_IN})
NO_SURVEY = frozenset({CARRY_IN})


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """What the clocks read of a work order. Field order = :data:`SNAPSHOT_FIELDS` (the
    scheduler builds it straight from a row of those columns)."""

    id: int
    number: str
    status: str
    urgency: str
    service_type: str
    source: str
    created_at: dt.datetime
    dispatched_at: dt.datetime | None = None
    accepted_at: dt.datetime | None = None
    contacted_at: dt.datetime | None = None
    planned_at: dt.datetime | None = None
    appointment_start: dt.datetime | None = None
    reminded_at: dt.datetime | None = None
    service_started_at: dt.datetime | None = None
    service_finished_at: dt.datetime | None = None
    signed_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    surveyed_at: dt.datetime | None = None
    dissatisfied_at: dt.datetime | None = None
    escalated_at: dt.datetime | None = None


SNAPSHOT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(OrderSnapshot))
_TIME_FIELDS = frozenset(f.name for f in fields(OrderSnapshot) if f.name.endswith(("_at", "_start")))


def aware(t: dt.datetime | None) -> dt.datetime | None:
    """UTC-aware (SQLite hands back naive datetimes; they are stored as UTC)."""
    if t is None or t.tzinfo is not None:
        return t
    return t.replace(tzinfo=dt.UTC)


def snapshot_of(order: Any) -> OrderSnapshot:
    """The snapshot of anything with the snapshot's attributes (a ``WorkOrder``, a row)."""
    return OrderSnapshot(*(aware(getattr(order, n)) if n in _TIME_FIELDS else getattr(order, n)
                           for n in SNAPSHOT_FIELDS))


@dataclass(frozen=True, slots=True)
class Clock:
    name: str
    start: dt.datetime
    deadline: dt.datetime
    allowance: dt.timedelta
    # When a warning is due (start + 80 % of the allowance).
    warn_at: dt.datetime
    # The milestone that met the clock, or None.
    met_at: dt.datetime | None
    # When the order moved past the stage without the milestone, or None.
    ended_at: dt.datetime | None
    state: str

    @property
    def label(self) -> str:
        return LABELS[self.name]

    @property
    def running(self) -> bool:
        """Not met and not ended: the clock may raise alerts."""
        return self.met_at is None and self.ended_at is None

    def level(self, now: dt.datetime) -> str | None:
        """The highest alert level due at ``now``: ``breach``, ``warning`` or None."""
        if not self.running or now < self.warn_at:
            return None
        return "breach" if now >= self.deadline else "warning"


class AlertDue(NamedTuple):
    clock: str
    level: str
    deadline: dt.datetime


def warning_offset(allowance: dt.timedelta) -> dt.timedelta:
    """How long after its start a clock of ``allowance`` warns (80 %, exact to the µs)."""
    return allowance * WARNING_PERCENT // 100


_WARNING_OFFSETS = {a: warning_offset(a) for a in (*ALLOWANCES.values(), *PLAN_ALLOWANCES.values())}


def _clock(name: str, start: dt.datetime, allowance: dt.timedelta, met: dt.datetime | None,
           ended: dt.datetime | None, now: dt.datetime) -> Clock:
    deadline = start + allowance
    if met is not None:
        state = MET if met <= deadline else LATE_MET
    elif ended is not None:
        state = MISSED
    else:
        state = BREACHED if now >= deadline else RUNNING
    return Clock(name, start, deadline, allowance, start + warning_offset(allowance), met, ended, state)


def reminder_window(o: OrderSnapshot) -> tuple[dt.datetime, dt.datetime] | None:
    """(start, deadline) of the reminder clock, or None if it does not run (no visit booked,
    or booked after the reminder was due)."""
    if o.appointment_start is None:
        return None
    deadline = o.appointment_start - REMINDER_LEAD
    start = deadline - ALLOWANCES["reminder"]
    if o.planned_at is not None and o.planned_at > start:
        if o.planned_at >= deadline:
            return None
        start = o.planned_at
    return start, deadline


# (clock, start, allowance, met at, ended at): a started clock before its deadline is computed.
Span = tuple[str, dt.datetime, dt.timedelta, "dt.datetime | None", "dt.datetime | None"]


def _spans(o: OrderSnapshot) -> list[Span]:
    """The started clocks of ``o``, in :data:`CLOCKS` order (the rules of the module docstring)."""
    if o.status == CANCELLED or o.source == "import":
        return []
    out: list[Span] = []
    done = o.completed_at
    if o.service_type not in NO_PLAN:
        out.append(("plan", o.created_at, PLAN_ALLOWANCES.get(o.urgency, PLAN_ALLOWANCES["普通"]),
                    o.planned_at, done))
    if o.service_type not in NO_DISPATCH:
        out.append(("dispatch", o.created_at, ALLOWANCES["dispatch"], o.dispatched_at, done))
    if o.accepted_at is not None:
        out.append(("contact", o.accepted_at, ALLOWANCES["contact"], o.contacted_at, done))
    if o.appointment_start is not None:
        window = reminder_window(o)
        if window is not None:
            start, deadline = window
            ended = min((t for t in (o.service_started_at, done) if t is not None), default=None)
            out.append(("reminder", start, deadline - start, o.reminded_at, ended))
    if o.service_finished_at is not None:
        out.append(("signoff", o.service_finished_at, ALLOWANCES["signoff"], o.signed_at, done))
    if o.completed_at is not None and o.service_type not in NO_SURVEY:
        out.append(("survey", o.completed_at, ALLOWANCES["survey"], o.surveyed_at, None))
    if o.dissatisfied_at is not None:
        out.append(("escalation", o.dissatisfied_at, ALLOWANCES["escalation"], o.escalated_at, None))
    return out


def clocks(o: OrderSnapshot, now: dt.datetime) -> tuple[Clock, ...]:
    """Every clock of the order that has started, in :data:`CLOCKS` order."""
    return tuple(_clock(*span, now) for span in _spans(o))


def running_clocks(o: OrderSnapshot, now: dt.datetime) -> dict[str, Clock]:
    """The clocks that may still raise alerts, by name."""
    return {c.name: c for c in clocks(o, now) if c.running}


def running_levels(o: OrderSnapshot, now: dt.datetime) -> list[tuple[str, dt.datetime, str | None]]:
    """(clock, deadline, level due at ``now`` or None) of every running clock: what
    :meth:`Clock.level` says, without building the clocks (the scheduler's hot path)."""
    out: list[tuple[str, dt.datetime, str | None]] = []
    for name, start, allowance, met, ended in _spans(o):
        if met is not None or ended is not None:
            continue
        deadline = start + allowance
        if now >= deadline:
            out.append((name, deadline, "breach"))
            continue
        warn = _WARNING_OFFSETS.get(allowance)
        if warn is None:
            warn = warning_offset(allowance)
        out.append((name, deadline, "warning" if now >= start + warn else None))
    return out


def alerts_due(o: OrderSnapshot, now: dt.datetime) -> list[AlertDue]:
    """The (clock, level) alerts that should exist at ``now``: ``warning`` for a running clock at
    or past its warning time, and also ``breach`` at or past its deadline."""
    due: list[AlertDue] = []
    for name, deadline, level in running_levels(o, now):
        if level is not None:
            due.append(AlertDue(name, "warning", deadline))
            if level == "breach":
                due.append(AlertDue(name, "breach", deadline))
    return due


def seconds_overdue(deadline: dt.datetime, at: dt.datetime) -> int:
    """Whole seconds ``at`` is past ``deadline`` (negative: time left)."""
    return int((at - deadline).total_seconds() // 1)
