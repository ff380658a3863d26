"""SLA clock rules (callcenter.sla.rules) as tables: allowances, boundaries, special cases."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from callcenter.sla.http import order_clocks
from callcenter.sla.rules import (
    CLOCKS,
    OrderSnapshot,
    alerts_due,
    clocks,
    reminder_window,
    running_clocks,
    snapshot_of,
)

T0 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
S = dt.timedelta(seconds=1)
M = dt.timedelta(minutes=1)
H = dt.timedelta(hours=1)

# clock → the milestone that meets it
MET_BY = {"plan": "planned_at", "dispatch": "dispatched_at", "contact": "contacted_at",
          "reminder": "reminded_at", "signoff": "signed_at", "survey": "surveyed_at",
          "escalation": "escalated_at"}


def order(**kw) -> OrderSnapshot:  # type: ignore[no-untyped-def]
    base = {"id": 1, "number": "WO20261123-001", "status": "待处理", "urgency": "普通",
            "service_type": "上门维修", "source": "hotline", "created_at": T0}
    return OrderSnapshot(**(base | kw))


def order_for(clock: str, urgency: str = "普通") -> OrderSnapshot:
    """An order whose ``clock`` starts at T0, every earlier stage done on time."""
    b = T0 - 10 * H
    done = {"created_at": b, "planned_at": b + M, "dispatched_at": b + M, "accepted_at": b + 2 * M,
            "contacted_at": b + 3 * M}
    if clock in ("plan", "dispatch"):
        return order(urgency=urgency)
    if clock == "contact":
        return order(urgency=urgency, **(done | {"accepted_at": T0, "contacted_at": None}))
    if clock == "reminder":  # the visit at T0 + 2 h, booked long before: window T0 … T0 + 1 h
        return order(urgency=urgency, status="已预约", **(done | {"appointment_start": T0 + 2 * H}))
    visit = {"appointment_start": b + 5 * H, "reminded_at": b + 4 * H, "service_started_at": b + 5 * H}
    if clock == "signoff":
        return order(urgency=urgency, status="服务中", **done, **visit, service_finished_at=T0)
    finished = {"service_finished_at": b + 6 * H, "signed_at": b + 6 * H + M}
    if clock == "survey":
        return order(urgency=urgency, status="已完成", **done, **visit, **finished, completed_at=T0)
    assert clock == "escalation"
    return order(urgency=urgency, status="已回访", **done, **visit, **finished, completed_at=b + 7 * H,
                 surveyed_at=b + 8 * H, dissatisfied_at=T0)


def the(o: OrderSnapshot, name: str, now: dt.datetime):  # type: ignore[no-untyped-def]
    found = [c for c in clocks(o, now) if c.name == name]
    assert len(found) == 1, (name, [c.name for c in clocks(o, now)])
    return found[0]


def due(o: OrderSnapshot, name: str, now: dt.datetime) -> list[str]:
    return [a.level for a in alerts_due(o, now) if a.clock == name]


# --- allowances: every clock, every urgency for the plan ------------------------------------

ALLOWANCE_TABLE = [
    # clock, urgency, allowance, warning after
    ("plan", "普通", 2 * H, 96 * M),
    ("plan", "紧急", 30 * M, 24 * M),
    ("plan", "特急", 10 * M, 8 * M),
    ("dispatch", "普通", 5 * M, 4 * M),
    ("dispatch", "特急", 5 * M, 4 * M),
    ("contact", "普通", 30 * M, 24 * M),
    ("reminder", "普通", 1 * H, 48 * M),
    ("signoff", "普通", 10 * M, 8 * M),
    ("survey", "普通", 24 * H, 19 * H + 12 * M),
    ("escalation", "紧急", 1 * H, 48 * M),
]


@pytest.mark.parametrize("name,urgency,allowance,warn_after", ALLOWANCE_TABLE)
def test_allowance_deadline_and_warning_time(name, urgency, allowance, warn_after):
    c = the(order_for(name, urgency), name, T0)
    assert (c.start, c.allowance, c.deadline, c.warn_at) == (T0, allowance, T0 + allowance, T0 + warn_after)
    assert c.state == "running" and c.running


def test_every_clock_is_in_the_table():
    assert {row[0] for row in ALLOWANCE_TABLE} == set(CLOCKS)


def test_reminder_is_due_one_hour_before_the_visit_and_warns_12_minutes_earlier():
    c = the(order_for("reminder"), "reminder", T0)
    visit = T0 + 2 * H
    assert c.deadline == visit - H and c.warn_at == visit - H - 12 * M


# --- boundaries: exactly 80 %, exactly at the deadline, met one second before ---------------

BOUNDARY_TABLE = [
    # when (relative to the warning time w or the deadline d), alert levels due, state
    ("w-1s", [], "running"),
    ("w", ["warning"], "running"),
    ("d-1s", ["warning"], "running"),
    ("d", ["warning", "breach"], "breached"),
    ("d+1h", ["warning", "breach"], "breached"),
]


def _at(c, when: str) -> dt.datetime:  # type: ignore[no-untyped-def]
    base = {"w": c.warn_at, "d": c.deadline}[when[0]]
    return base + {"": dt.timedelta(0), "-1s": -S, "+1s": S, "+1h": H}[when[1:]]


@pytest.mark.parametrize("urgency", ["普通", "紧急", "特急"])
@pytest.mark.parametrize("name", CLOCKS)
@pytest.mark.parametrize("when,levels,state", BOUNDARY_TABLE)
def test_alert_levels_at_the_boundaries(name, urgency, when, levels, state):
    o = order_for(name, urgency)
    now = _at(the(o, name, T0), when)
    assert due(o, name, now) == levels
    assert the(o, name, now).state == state


MET_TABLE = [
    # milestone at (relative to the deadline), state
    ("d-1s", "met"),
    ("d", "met"),
    ("d+1s", "late-met"),
]


@pytest.mark.parametrize("name", CLOCKS)
@pytest.mark.parametrize("when,state", MET_TABLE)
def test_a_met_clock_raises_nothing(name, when, state):
    o = order_for(name)
    at = _at(the(o, name, T0), when)
    o = dataclasses.replace(o, **{MET_BY[name]: at})
    for now in (at, at + 48 * H):
        c = the(o, name, now)
        assert (c.state, c.met_at, c.running) == (state, at, False)
        assert due(o, name, now) == []
        assert name not in running_clocks(o, now)


# --- which clocks exist ----------------------------------------------------------------------

LATER = T0 + 30 * 24 * H


@pytest.mark.parametrize("o,expected", [
    pytest.param(order(), ["plan", "dispatch"], id="new order"),
    pytest.param(order(status="已取消", accepted_at=T0, dissatisfied_at=T0), [], id="cancelled: none"),
    pytest.param(order(source="import"), [], id="imported: none"),
    pytest.param(order(service_type="远程支持"), ["plan"], id="remote support: no dispatch"),
    pytest.param(order(service_type="送修", status="待修", completed_at=T0), [], id="carry-in: none"),
    pytest.param(order(service_type="送修", status="修理中", dissatisfied_at=T0), ["escalation"],
                 id="carry-in complaint"),
    pytest.param(order(service_type="安装", accepted_at=T0), ["plan", "dispatch", "contact"], id="accepted"),
    pytest.param(order(status="已完成", completed_at=T0), ["plan", "dispatch", "survey"], id="completed"),
])
def test_clocks_that_exist(o, expected):
    assert [c.name for c in clocks(o, LATER)] == expected


def test_completion_ends_the_earlier_stages_unmet():
    o = order(status="已完成", accepted_at=T0, appointment_start=T0 + 3 * H, service_finished_at=T0,
              completed_at=T0 + 5 * H)
    states = {c.name: c.state for c in clocks(o, LATER)}
    assert states == {"plan": "missed", "dispatch": "missed", "contact": "missed", "reminder": "missed",
                      "signoff": "missed", "survey": "breached"}
    assert {a.clock for a in alerts_due(o, LATER)} == {"survey"}


def test_the_visit_starting_ends_the_reminder():
    o = order_for("reminder")
    assert due(o, "reminder", T0 + 89 * M) == ["warning", "breach"]
    o = dataclasses.replace(o, service_started_at=T0 + 90 * M)
    assert the(o, "reminder", LATER).state == "missed"
    assert due(o, "reminder", LATER) == []


@pytest.mark.parametrize("booked,window", [
    pytest.param(None, (T0, T0 + H), id="no booking time: 2 h to 1 h before"),
    pytest.param(T0 - 24 * H, (T0, T0 + H), id="booked the day before"),
    pytest.param(T0 + 30 * M, (T0 + 30 * M, T0 + H), id="booked inside the window"),
    pytest.param(T0 + H, None, id="booked when the reminder was due: none"),
    pytest.param(T0 + 90 * M, None, id="booked 30 min before the visit: none"),
])
def test_reminder_window(booked, window):
    o = order(status="已预约", planned_at=booked, appointment_start=T0 + 2 * H)
    assert reminder_window(o) == window


def test_reminder_booked_inside_the_window_warns_at_80_percent_of_what_is_left():
    o = order(status="已预约", planned_at=T0 + 30 * M, appointment_start=T0 + 2 * H)
    c = the(o, "reminder", T0 + 30 * M)
    assert c.warn_at == T0 + 54 * M  # 30 min window, 24 min in


def test_no_reminder_without_a_visit():
    assert "reminder" not in [c.name for c in clocks(order(status="已派单"), LATER)]


def test_unknown_urgency_counts_as_normal():
    assert the(order(urgency="?"), "plan", T0).allowance == 2 * H


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "America/Los_Angeles", "UTC"])
def test_time_zones_play_no_part(tz):
    from zoneinfo import ZoneInfo

    z = ZoneInfo(tz)
    o = order_for("contact")
    local = dataclasses.replace(o, created_at=o.created_at.astimezone(z), accepted_at=T0.astimezone(z))
    now = T0 + 25 * M
    assert alerts_due(local, now.astimezone(z)) == alerts_due(o, now)
    assert [c.deadline for c in clocks(local, now)] == [c.deadline for c in clocks(o, now)]


# --- order_clocks (the order detail's view) --------------------------------------------------


class _Row:
    """What a SQLite row looks like: naive datetimes (stored as UTC)."""

    def __init__(self, o: OrderSnapshot) -> None:
        for f in dataclasses.fields(o):
            v = getattr(o, f.name)
            setattr(self, f.name, v.replace(tzinfo=None) if isinstance(v, dt.datetime) else v)


def test_order_clocks_for_the_detail_page():
    o = dataclasses.replace(order_for("contact", "紧急"), contacted_at=None)
    assert snapshot_of(_Row(o)) == o
    shown = order_clocks(_Row(o), T0 + 31 * M)
    by = {c["clock"]: c for c in shown}
    assert list(by) == ["plan", "dispatch", "contact"]
    assert by["contact"] == {
        "clock": "contact", "label": "联系客户", "state": "breached", "start": "2026-11-23T02:00:00Z",
        "deadline": "2026-11-23T02:30:00Z", "warn_at": "2026-11-23T02:24:00Z", "allowance_s": 1800,
        "met_at": None, "ended_at": None, "level": "breach", "seconds_overdue": 60}
    assert by["plan"]["state"] == "met" and by["plan"]["level"] is None
    assert by["plan"]["seconds_overdue"] == -29 * 60  # planned 1 min in, 30 min allowance


def random_orders(n: int, seed: int) -> list[OrderSnapshot]:
    """Orders with milestones scattered around T0 (some missing), every status, kind, urgency."""
    import random

    rng = random.Random(seed)
    milestones = [f.name for f in dataclasses.fields(OrderSnapshot)
                  if f.name.endswith(("_at", "_start")) and f.name != "created_at"]
    out = []
    for i in range(1, n + 1):
        kw = {m: T0 + dt.timedelta(minutes=rng.randint(-30 * 60, 3 * 60)) if rng.random() < 0.5 else None
              for m in milestones}
        out.append(order(id=i, number=f"WO20261123-{i:03d}",
                         status=rng.choice(["待处理", "已派单", "已预约", "服务中", "待件", "已完成", "已回访",
                                            "已取消", "待修", "已取"]),
                         urgency=rng.choice(["普通", "紧急", "特急", "?"]),
                         service_type=rng.choice(["上门维修", "远程支持", "安装", "退换货", "送修"]),
                         source=rng.choice(["hotline"] * 9 + ["import"]),
                         created_at=T0 + dt.timedelta(minutes=rng.randint(-48 * 60, 0)), **kw))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_the_fast_path_agrees_with_the_clocks(seed):
    """``alerts_due`` (the scheduler's path, no Clock objects) says what ``Clock.level`` says."""
    for o in random_orders(300, seed):
        for now in (T0, T0 + 7 * M, T0 + 2 * H, T0 + 30 * H):
            expected = []
            for c in clocks(o, now):
                level = c.level(now)
                expected += [(c.name, lvl, c.deadline) for lvl in ("warning", "breach")
                             if level == "breach" or lvl == level]
            assert [tuple(a) for a in alerts_due(o, now)] == expected
