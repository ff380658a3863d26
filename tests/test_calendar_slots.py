"""Visit windows from an engineer's calendar (``callcenter.dispatch.calendar``, pure): tables of
working hours, leave, lunch gaps, busy days, late ``now``, the customer's requested window, and
the time zone (Asia/Shanghai, no DST: the local day is not the UTC day). ``now`` is an argument;
no clock is patched.

A window is written ``"DD HH-HH"`` in the centre's time zone (November 2026 unless said)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from callcenter.dispatch import calendar as cal
from callcenter.dispatch.rules import EVERY_DAY_9_TO_6, Leave, parse_working_hours
from callcenter.orders.appointments import check_window

TZ = ZoneInfo("Asia/Shanghai")
H = dt.timedelta(hours=1)


def at(day: int, hh: int, mm: int = 0, month: int = 11, tz: dt.tzinfo = TZ) -> dt.datetime:
    """2026-``month``-``day`` ``hh``:``mm`` local, as aware UTC."""
    return dt.datetime(2026, month, day, hh, mm, tzinfo=tz).astimezone(dt.UTC)


def win(day: int, a: int, b: int) -> tuple[dt.datetime, dt.datetime]:
    return at(day, a), at(day, b)


def text(slots: list[cal.Slot], tz: dt.tzinfo = TZ) -> list[str]:
    return [f"{s.start.astimezone(tz):%d %H}-{s.end.astimezone(tz):%H}" for s in slots]


WEEKDAYS_9_TO_6 = parse_working_hours({str(d): [["09:00", "18:00"]] for d in range(1, 6)})
WEEKENDS_10_TO_4 = parse_working_hours({"6": [["10:00", "16:00"]], "7": [["10:00", "16:00"]]})
LUNCH_GAP = parse_working_hours({str(d): [["09:00", "12:00"], ["13:30", "18:00"]] for d in range(1, 8)})
HALF_HOURS = parse_working_hours({str(d): [["08:30", "11:30"]] for d in range(1, 8)})

# 2026-11-23 is a Monday.
CASES = [
    # (id, working hours, leave, busy, now, extra kwargs, expected)
    ("weekday-early", EVERY_DAY_9_TO_6, (), (), at(23, 8), {}, ["23 09-11", "23 12-14", "24 09-11"]),
    ("weekday-mid-morning", EVERY_DAY_9_TO_6, (), (), at(23, 10), {}, ["23 11-13", "23 13-15", "24 09-11"]),
    ("lead-rounds-up", EVERY_DAY_9_TO_6, (), (), at(23, 10, 1), {}, ["23 12-14", "24 09-11", "24 12-14"]),
    ("late-in-the-day", EVERY_DAY_9_TO_6, (), (), at(23, 17, 30), {}, ["24 09-11", "24 12-14", "25 09-11"]),
    ("late-but-earliest-now", EVERY_DAY_9_TO_6, (), (), at(23, 15, 30), {"earliest": at(23, 15, 30)},
     ["23 16-18", "24 09-11", "24 12-14"]),
    ("after-hours", EVERY_DAY_9_TO_6, (), (), at(23, 22), {}, ["24 09-11", "24 12-14", "25 09-11"]),
    ("friday-evening-no-weekend", WEEKDAYS_9_TO_6, (), (), at(27, 16), {}, ["30 09-11", "30 12-14", "01 09-11"]),
    ("weekend-only", WEEKENDS_10_TO_4, (), (), at(23, 9), {}, ["28 10-12", "28 12-14", "29 10-12"]),
    ("leave-two-days", EVERY_DAY_9_TO_6, (Leave(dt.date(2026, 11, 24), dt.date(2026, 11, 25)),), (),
     at(23, 17, 30), {}, ["26 09-11", "26 12-14", "27 09-11"]),
    ("day-off-today", EVERY_DAY_9_TO_6, (Leave(dt.date(2026, 11, 23), dt.date(2026, 11, 23), "休息"),), (),
     at(23, 8), {}, ["24 09-11", "24 12-14", "25 09-11"]),
    ("lunch-gap", LUNCH_GAP, (), (), at(23, 8), {}, ["23 09-11", "23 14-16", "24 09-11"]),
    ("lunch-gap-one-day", LUNCH_GAP, (), (), at(23, 8), {"count": 5, "horizon_days": 1},
     ["23 09-11", "23 14-16", "23 16-18"]),
    ("half-hour-bounds", HALF_HOURS, (), (), at(23, 7), {"count": 4, "horizon_days": 2},
     ["23 09-11", "24 09-11"]),
    ("busy-day", EVERY_DAY_9_TO_6, (), (win(23, 9, 12), win(23, 13, 18)), at(23, 8), {},
     ["24 09-11", "24 12-14", "25 09-11"]),
    ("busy-morning", EVERY_DAY_9_TO_6, (), (win(23, 10, 12),), at(23, 8), {},
     ["23 12-14", "24 09-11", "24 12-14"]),
    ("touching-ends-are-free", EVERY_DAY_9_TO_6, (), (win(23, 9, 11),), at(23, 8), {"count": 1},
     ["23 11-13"]),
    ("three-hour-windows", EVERY_DAY_9_TO_6, (), (), at(23, 8), {"length": 3 * H},
     ["23 09-12", "23 12-15", "24 09-12"]),
    ("two-offered", EVERY_DAY_9_TO_6, (), (), at(23, 8), {"count": 2}, ["23 09-11", "23 12-14"]),
    ("horizon-ends", WEEKDAYS_9_TO_6, (), (), at(27, 17), {"horizon_days": 3}, []),
    ("no-working-hours", {}, (), (), at(23, 8), {}, []),
    # The local day is the UTC day's next one: 2026-11-23T23:30Z is Tuesday 07:30 in Shanghai.
    ("shanghai-after-utc-midnight", EVERY_DAY_9_TO_6, (), (), dt.datetime(2026, 11, 23, 23, 30, tzinfo=dt.UTC),
     {}, ["24 09-11", "24 12-14", "25 09-11"]),
    # The customer's wish: offered as asked when free …
    ("requested-free", EVERY_DAY_9_TO_6, (), (), at(23, 8), {"requested": win(24, 14, 16)},
     ["23 09-11", "23 12-14", "24 14-16"]),
    ("requested-longer", EVERY_DAY_9_TO_6, (), (), at(23, 8), {"requested": win(25, 9, 12)},
     ["23 09-11", "23 12-14", "25 09-12"]),
    # … else the free window overlapping it, else the closest that day, else nothing special.
    ("requested-busy-overlap", EVERY_DAY_9_TO_6, (), (win(24, 13, 15),), at(23, 8), {"requested": win(24, 14, 16)},
     ["23 09-11", "23 12-14", "24 15-17"]),
    ("requested-after-hours", EVERY_DAY_9_TO_6, (), (), at(23, 8), {"requested": win(24, 19, 21)},
     ["23 09-11", "23 12-14", "24 16-18"]),
    ("requested-on-leave", EVERY_DAY_9_TO_6, (Leave(dt.date(2026, 11, 24), dt.date(2026, 11, 24)),), (),
     at(23, 8), {"requested": win(24, 14, 16)}, ["23 09-11", "23 12-14", "25 09-11"]),
    ("requested-past", EVERY_DAY_9_TO_6, (), (), at(23, 15), {"requested": win(23, 9, 11)},
     ["23 16-18", "24 09-11", "24 12-14"]),
]


@pytest.mark.parametrize(("hours", "leave", "busy", "now", "kw", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_free_slots(hours, leave, busy, now, kw, expected) -> None:  # type: ignore[no-untyped-def]
    slots = cal.free_slots(hours, leave, busy, now, TZ, **kw)
    assert text(slots) == expected
    for s in slots:
        # Every window is one the appointment API takes (whole hours, ≤ 4 h, not over).
        check_window(s.start, s.end, now, TZ, ("start", "end"))
        assert s.start.tzinfo is dt.UTC
        assert not any(cal.overlaps((s.start, s.end), b) for b in busy)
    assert [s.start for s in slots] == sorted(s.start for s in slots)


def test_candidates_never_span_the_lunch_gap() -> None:
    starts = cal.candidates(LUNCH_GAP, (), (), at(23, 8), TZ, length=2 * H, first_day=dt.date(2026, 11, 23),
                            horizon_days=1)
    assert [f"{s.astimezone(TZ):%H}" for s in starts] == ["09", "10", "14", "15", "16"]


def test_spread_over_half_days_not_adjacent_hours() -> None:
    slots = cal.free_slots(EVERY_DAY_9_TO_6, (), (), at(23, 8), TZ)
    halves = {(s.start.astimezone(TZ).date(), s.start.astimezone(TZ).hour < 12) for s in slots}
    assert len(halves) == 3


def test_fills_up_within_one_half_day_when_nothing_else_is_free() -> None:
    # Only Monday morning is free in the horizon: the windows offered there do not overlap.
    hours = parse_working_hours({"1": [["08:00", "12:00"]]})
    slots = cal.free_slots(hours, (), (), at(23, 7), TZ, horizon_days=1)
    assert text(slots) == ["23 08-10", "23 10-12"]


@pytest.mark.parametrize(("now", "start", "end", "label"), [
    (at(23, 8), at(23, 14), at(23, 16), "今天（周一）14:00–16:00"),
    (at(23, 8), at(24, 9), at(24, 11), "明天（周二）09:00–11:00"),
    (at(23, 8), at(25, 9), at(25, 11), "后天（周三）09:00–11:00"),
    (at(23, 8), at(29, 10), at(29, 12), "11月29日（周日）10:00–12:00"),
    # Late on the UTC day, already tomorrow in Shanghai: "today" is the centre's.
    (dt.datetime(2026, 11, 23, 23, 30, tzinfo=dt.UTC), at(24, 9), at(24, 11), "今天（周二）09:00–11:00"),
])
def test_labels_speak_the_centres_calendar(now, start, end, label) -> None:  # type: ignore[no-untyped-def]
    assert cal.slot_label(start, end, now, TZ) == label


def test_requested_window_is_marked() -> None:
    slots = cal.free_slots(EVERY_DAY_9_TO_6, (), (), at(23, 8), TZ, requested=win(24, 14, 16))
    assert [s.requested for s in slots] == [False, False, True]
    assert slots[2].to_json() == {"start": "2026-11-24T06:00:00+00:00", "end": "2026-11-24T08:00:00+00:00",
                                  "label": "明天（周二）14:00–16:00"}


def test_daylight_saving_zone_keeps_whole_local_hours() -> None:
    """Europe/Berlin springs forward on 2026-03-29: the windows are still 09:00–11:00 local."""
    berlin = ZoneInfo("Europe/Berlin")
    now = at(28, 20, month=3, tz=berlin)
    slots = cal.free_slots(EVERY_DAY_9_TO_6, (), (), now, berlin, count=1)
    assert text(slots, berlin) == ["29 09-11"]
    assert slots[0].start == dt.datetime(2026, 3, 29, 7, tzinfo=dt.UTC)


@pytest.mark.parametrize("length", [dt.timedelta(0), 5 * H, dt.timedelta(minutes=90), -H])
def test_bad_length(length: dt.timedelta) -> None:
    with pytest.raises(ValueError, match="whole hours"):
        cal.free_slots(EVERY_DAY_9_TO_6, (), (), at(23, 8), TZ, length=length)
