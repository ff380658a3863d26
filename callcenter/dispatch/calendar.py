"""Visit windows an engineer can offer the customer (SA-AP-003, domain stage 3: "offers 2–3
slots, e.g. today 14:00–16:00, tomorrow 09:00–11:00"), from the engineer's calendar. Pure: no
I/O, ``now`` is an argument (aware UTC).

A candidate window:

* starts on a whole hour in the centre's time zone, lasts ``length`` (whole hours, at most
  :data:`MAX_LENGTH`, so every window passes ``callcenter.orders.appointments.check_window``);
* starts no earlier than ``earliest`` (default ``now + lead``: the engineer still has to call
  the customer and get there);
* lies inside one working interval of its weekday (a lunch gap splits the day; a window never
  spans it), on a day that is not on leave, within ``horizon_days`` calendar days from today;
* does not overlap a busy window (the engineer's booked visits; touching ends are fine).

The offer: the customer's requested window first when it is itself a free window (else the free
window overlapping it, else the one nearest to it that day), then the earliest window of each
half-day not offered yet (morning = starting before 12:00), so the customer gets a real choice —
"today afternoon, tomorrow morning, tomorrow afternoon" rather than three adjacent hours. When
there are fewer half-days than ``count`` the earliest windows left (not overlapping the chosen
ones) fill up. Offered in chronological order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from callcenter.dispatch.rules import Interval, Leave, WorkingHours

HOUR = dt.timedelta(hours=1)
# callcenter.orders.appointments.MAX_WINDOW: a visit window is at most 4 hours.
MAX_LENGTH = dt.timedelta(hours=4)
DEFAULT_LENGTH = dt.timedelta(hours=2)
# From accepting to the first bookable hour: the call to the customer (≤ 30 min) and the trip.
DEFAULT_LEAD = dt.timedelta(hours=1)
# Windows starting before this local hour are "morning" (上午), the rest "afternoon" (下午).
NOON = 12
WEEKDAYS = "一二三四五六日"

Window = tuple[dt.datetime, dt.datetime]


@dataclass(frozen=True, slots=True)
class Slot:
    """One window offered to the customer (aware UTC) and how it reads (centre's time zone)."""

    start: dt.datetime
    end: dt.datetime
    label: str
    # The customer's own requested window (as asked, or the free one closest to it).
    requested: bool = False

    def to_json(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "label": self.label}


def slot_label(start: dt.datetime, end: dt.datetime, now: dt.datetime, tz: dt.tzinfo) -> str:
    """``今天（周二）14:00–16:00``, ``明天（周三）09:00–11:00``, ``11月27日（周五）09:00–11:00``."""
    ls, le = start.astimezone(tz), end.astimezone(tz)
    days = (ls.date() - now.astimezone(tz).date()).days
    day = {0: "今天", 1: "明天", 2: "后天"}.get(days, f"{ls.month}月{ls.day}日")
    return f"{day}（周{WEEKDAYS[ls.weekday()]}）{ls:%H:%M}–{le:%H:%M}"


def _check_length(length: dt.timedelta) -> None:
    if length <= dt.timedelta(0) or length > MAX_LENGTH or length % HOUR:
        raise ValueError(f"a window is 1 to 4 whole hours, not {length}")


def _local(day: dt.date, t: dt.time, tz: dt.tzinfo) -> dt.datetime | None:
    """``day`` at ``t`` in ``tz`` as aware UTC; None when that wall time does not exist (a
    daylight-saving gap)."""
    aware = dt.datetime.combine(day, t, tzinfo=tz)
    utc = aware.astimezone(dt.UTC)
    back = utc.astimezone(tz)
    return utc if (back.date(), back.time()) == (day, t) else None


def _ceil_hour(t: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The first whole local hour at or after ``t`` (aware UTC)."""
    local = t.astimezone(tz)
    floor = local.replace(minute=0, second=0, microsecond=0)
    up = floor if floor == local else floor + HOUR
    return up.astimezone(dt.UTC)


def _on_leave(day: dt.date, leave: Sequence[Leave]) -> bool:
    return any(lv.start <= day <= lv.end for lv in leave)


def overlaps(a: Window, b: Window) -> bool:
    """Half-open windows overlap (one ending when the other starts does not)."""
    return a[0] < b[1] and b[0] < a[1]


def _inside_interval(start: dt.datetime, end: dt.datetime, interval: Interval, tz: dt.tzinfo) -> bool:
    ls, le = start.astimezone(tz), end.astimezone(tz)
    a, b = interval
    return le.date() == ls.date() and a <= ls.time() and le.time() <= b and le > ls


def candidates(working_hours: WorkingHours, leave: Iterable[Leave], busy: Iterable[Window],
               earliest: dt.datetime, tz: dt.tzinfo, *, length: dt.timedelta, first_day: dt.date,
               horizon_days: int) -> Iterator[dt.datetime]:
    """Every free window start (aware UTC), in order, from ``first_day`` for ``horizon_days``
    days (see the module docstring)."""
    _check_length(length)
    leave, busy = tuple(leave), tuple(busy)
    for offset in range(horizon_days):
        day = first_day + dt.timedelta(days=offset)
        if _on_leave(day, leave):
            continue
        for interval in working_hours.get(day.isoweekday(), ()):
            start = _local(day, interval[0], tz)
            if start is None:
                continue
            start = max(_ceil_hour(start, tz), _ceil_hour(earliest, tz))
            while True:
                end = start + length
                if start.astimezone(tz).date() != day or not _inside_interval(start, end, interval, tz):
                    break
                if not any(overlaps((start, end), b) for b in busy):
                    yield start
                start += HOUR


def _half_day(t: dt.datetime, tz: dt.tzinfo) -> tuple[dt.date, bool]:
    local = t.astimezone(tz)
    return local.date(), local.hour < NOON


def _fits(window: Window, working_hours: WorkingHours, leave: Sequence[Leave], busy: Sequence[Window],
          earliest: dt.datetime, tz: dt.tzinfo) -> bool:
    """``window`` is itself offerable: whole hours, ≤ 4 h, after ``earliest``, inside one working
    interval of a day not on leave, overlapping nothing busy."""
    start, end = window
    ls, le = start.astimezone(tz), end.astimezone(tz)
    whole = all(x.minute == 0 and x.second == 0 and x.microsecond == 0 for x in (ls, le))
    if not whole or not start < end or end - start > MAX_LENGTH or start < earliest:
        return False
    if _on_leave(ls.date(), leave):
        return False
    if not any(_inside_interval(start, end, i, tz) for i in working_hours.get(ls.isoweekday(), ())):
        return False
    return not any(overlaps(window, b) for b in busy)


def _nearest_to(requested: Window, starts: Sequence[dt.datetime], length: dt.timedelta,
                tz: dt.tzinfo) -> dt.datetime | None:
    """The free start overlapping the requested window (earliest), else the one nearest to its
    start on the same local day."""
    inside = [s for s in starts if overlaps((s, s + length), requested)]
    if inside:
        return inside[0]
    day = requested[0].astimezone(tz).date()
    same_day = [s for s in starts if s.astimezone(tz).date() == day]
    if not same_day:
        return None
    return min(same_day, key=lambda s: (abs((s - requested[0]).total_seconds()), s))


def free_slots(working_hours: WorkingHours, leave: Iterable[Leave], busy_windows: Iterable[Window],
               now: dt.datetime, tz: dt.tzinfo, *, length: dt.timedelta = DEFAULT_LENGTH, count: int = 3,
               horizon_days: int = 7, earliest: dt.datetime | None = None,
               lead: dt.timedelta = DEFAULT_LEAD, requested: Window | None = None) -> list[Slot]:
    """Up to ``count`` windows to offer (fewer when the calendar has fewer), chronological.

    ``working_hours``: ISO weekday → intervals (``rules.parse_working_hours``); ``leave``: days
    off (inclusive dates, centre's calendar); ``busy_windows``: the engineer's booked visits,
    aware; ``earliest`` defaults to ``now + lead``; ``requested``: the customer's wish, offered
    first (as is when free, else the closest free window). Raises ValueError for a ``length``
    that is not 1–4 whole hours."""
    _check_length(length)
    leave, busy = tuple(leave), tuple(busy_windows)
    earliest = max(earliest if earliest is not None else now + lead, now)
    starts = list(candidates(working_hours, leave, busy, earliest, tz, length=length,
                             first_day=now.astimezone(tz).date(), horizon_days=horizon_days))
    chosen: list[Slot] = []

    def take(start: dt.datetime, end: dt.datetime, requested_: bool = False) -> None:
        chosen.append(Slot(start, end, slot_label(start, end, now, tz), requested_))

    if requested is not None and count > 0:
        req = (requested[0].astimezone(dt.UTC), requested[1].astimezone(dt.UTC))
        if _fits(req, working_hours, leave, busy, earliest, tz):
            take(*req, True)
        else:
            near = _nearest_to(req, starts, length, tz)
            if near is not None:
                take(near, near + length, True)

    def free(start: dt.datetime) -> bool:
        return not any(overlaps((start, start + length), (c.start, c.end)) for c in chosen)

    # One per half-day first, then the earliest of what is left.
    halves = {_half_day(c.start, tz) for c in chosen}
    for start in starts:
        if len(chosen) >= count:
            break
        half = _half_day(start, tz)
        if half not in halves and free(start):
            take(start, start + length)
            halves.add(half)
    for start in starts:
        if len(chosen) >= count:
            break
        if free(start):
            take(start, start + length)
    return sorted(chosen, key=lambda c: c.start)
