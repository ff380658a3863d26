"""The monthly figures' rules (pure: no I/O). Definitions in ``docs/metrics.md``.

Ratios take the counts the SQL aggregates return and answer ``None`` when the denominator is 0
(shown as "—", never as 0 %, which would be a claim). Money is integer fen in, fen out (floats
only where a per-order average has a fractional fen). Months are calendar months in the
centre's time zone (``settings.tz``), half-open ``[start, end)`` in UTC.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from itertools import pairwise
from zoneinfo import ZoneInfo

from callcenter.errors import ValidationFailed

# Service types (callcenter.orders.states) the figures distinguish.
ONSITE_REPAIR, INSTALL, RETURN, REMOTE, CARRY_IN = "上门维修", "安装", "退换货", "远程支持", "送修"
# Orders an engineer travels to the customer for: the time-to-on-site clock.
ONSITE_KINDS = (ONSITE_REPAIR, INSTALL, RETURN)
# A repair of the appliance (install and return/exchange are not): repeat repairs, failure
# rate, repairs per brand, repair time.
REPAIR_TYPES = (ONSITE_REPAIR, REMOTE, CARRY_IN)
CANCELLED = "已取消"

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Period:
    """A span of the centre's calendar: ``label`` (2026-11, 2026Q4) and its UTC bounds."""

    label: str
    start: dt.datetime
    end: dt.datetime


def _local_start(year: int, month: int, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime(year, month, 1, tzinfo=tz).astimezone(dt.UTC)


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    k = year * 12 + (month - 1) + n
    return k // 12, k % 12 + 1


def parse_month(text: str, tz: ZoneInfo) -> Period:
    """``YYYY-MM`` → the month in ``tz``. ValidationFailed (422, field ``month``) otherwise."""
    m = _MONTH.match(text.strip())
    # The year stops at 9998: the month after December 9999 (the period's end) is no date.
    if m is None or not 1 <= int(m.group(2)) <= 12 or not 2000 <= int(m.group(1)) <= 9998:
        raise ValidationFailed("month", "格式为 YYYY-MM (expected YYYY-MM, e.g. 2026-11)")
    return month_period(int(m.group(1)), int(m.group(2)), tz)


def month_period(year: int, month: int, tz: ZoneInfo) -> Period:
    ny, nm = _add_months(year, month, 1)
    return Period(f"{year:04d}-{month:02d}", _local_start(year, month, tz), _local_start(ny, nm, tz))


def previous_month(now: dt.datetime, tz: ZoneInfo) -> str:
    """The last complete month at ``now`` (what the report opens on: figures are due by the 5th)."""
    local = now.astimezone(tz)
    y, m = _add_months(local.year, local.month, -1)
    return f"{y:04d}-{m:02d}"


def trailing_months(period: Period, n: int, tz: ZoneInfo) -> list[Period]:
    """The ``n`` months ending with ``period`` (oldest first)."""
    y, m = int(period.label[:4]), int(period.label[5:7])
    out = []
    for k in range(n - 1, -1, -1):
        yy, mm = _add_months(y, m, -k)
        out.append(month_period(yy, mm, tz))
    return out


def trailing_quarters(period: Period, n: int, tz: ZoneInfo) -> list[Period]:
    """The ``n`` calendar quarters ending with ``period``'s (oldest first); the last one is cut
    at ``period.end`` (a report for November counts Q4 up to the end of November)."""
    y, m = int(period.label[:4]), int(period.label[5:7])
    q_start_month = (m - 1) // 3 * 3 + 1
    out = []
    for k in range(n - 1, -1, -1):
        yy, mm = _add_months(y, q_start_month, -3 * k)
        ey, em = _add_months(yy, mm, 3)
        end = min(_local_start(ey, em, tz), period.end)
        label = f"{yy}Q{(mm - 1) // 3 + 1}"
        out.append(Period(label, _local_start(yy, mm, tz), end))
    return out


# --------------------------------------------------------------------------------------------
# Ratios


def rate(numerator: int, denominator: int) -> float | None:
    """``numerator / denominator`` (0…1), None when there is nothing to divide by."""
    if denominator < 0 or numerator < 0:
        raise ValueError("counts must not be negative")
    if numerator > denominator:
        raise ValueError("a rate's numerator cannot exceed its denominator")
    return None if denominator == 0 else numerator / denominator


def average(total: float, count: int, unit_s: float = 1.0) -> float | None:
    """``total / count`` in units of ``unit_s`` (60: minutes from seconds; 3600: hours); None
    when ``count`` is 0."""
    if count < 0:
        raise ValueError("count must not be negative")
    return None if count == 0 else total / count / unit_s


def per_order(total_fen: int, orders: int) -> float | None:
    """Average fen per order (may have a fractional fen), None without orders."""
    return average(total_fen, orders)


def per_thousand(events: int, population: int) -> float | None:
    """Events per 1,000 of the population (failure rate per 1,000 registered appliances)."""
    if population <= 0:
        return None
    return events * 1000 / population


def completion_rate(created: int, cancelled: int, completed: int) -> float | None:
    """Completed / (created − cancelled): cancelled orders are neither done nor owed."""
    return rate(completed, created - cancelled)


@dataclass(frozen=True, slots=True)
class Satisfaction:
    """Average satisfaction of the month and where it comes from.

    ``source`` ``"scores"``: surveys (SA-CS-005, ``survey_results``) answered in the month; each
    survey's six 1–5 scores are averaged, then the surveys (``average_score``). ``"milestones"``:
    no scored survey in the month — only the survey outcome on the work order (``surveyed_at``,
    ``dissatisfied_at``: a score ≤ 3 or a complaint) is known, which gives the satisfied share but
    no score, so ``average_score`` is None. The satisfied share always comes from the outcome.
    """

    source: str
    surveyed: int
    dissatisfied: int
    scored: int
    average_score: float | None

    @property
    def satisfied_rate(self) -> float | None:
        return rate(self.surveyed - self.dissatisfied, self.surveyed)


def satisfaction(surveyed: int, dissatisfied: int, scored: int = 0, score_sum: float = 0.0) -> Satisfaction:
    """From the month's counts: ``scored`` surveys whose per-survey mean scores add up to
    ``score_sum`` (what the SQL sums; :func:`survey_mean` is the per-survey rule)."""
    if dissatisfied > surveyed:
        raise ValueError("more dissatisfied than surveyed")
    if scored < 0 or not 0 <= score_sum <= 5 * scored:
        raise ValueError("score sums are 1–5 per survey")
    if scored == 0:
        return Satisfaction("milestones", surveyed, dissatisfied, 0, None)
    return Satisfaction("scores", surveyed, dissatisfied, scored, score_sum / scored)


def survey_mean(scores: tuple[int, ...]) -> float:
    """One survey's score: the mean of its six 1–5 scores."""
    if not scores or any(not 1 <= x <= 5 for x in scores):
        raise ValueError("scores are 1–5")
    return sum(scores) / len(scores)


# --------------------------------------------------------------------------------------------
# Problems

# Fault classes, tried in order (the first whose keyword occurs in the problem text wins:
# safety first). The same table becomes the SQL CASE (monthly.problem_class_sql), so the
# database and this function always agree.
PROBLEM_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("燃气异味/泄漏", ("燃气", "煤气", "天然气", "漏气")),
    ("漏电/冒烟/焦味", ("漏电", "冒烟", "焦味", "烧焦", "火花")),
    ("漏水", ("漏水", "渗水", "滴水", "水渍")),
    ("不制冷/制冷差", ("不制冷", "制冷差", "不冷", "制冷效果")),
    ("不加热/加热慢", ("不加热", "加热慢", "不热", "水温")),
    ("异响/噪音", ("异响", "噪音", "响声", "摩擦")),
    ("故障代码/显示异常", ("故障代码", "代码", "显示")),
    ("无法启动/不通电", ("不启动", "无法启动", "开不了机", "不通电", "不开机")),
    ("门封/门关不严", ("门封", "关不严", "关不上")),
    ("安装/移机", ("安装", "移机")),
)
OTHER_PROBLEM = "其他"


def classify_problem(text: str) -> str:
    """The fault class of a problem description (``PROBLEM_CLASSES``), else 其他."""
    for label, words in PROBLEM_CLASSES:
        if any(w in text for w in words):
            return label
    return OTHER_PROBLEM


@dataclass(frozen=True, slots=True)
class ProblemShare:
    problem: str
    orders: int
    share: float


def top_problems(counts: dict[str, int], total: int, n: int = 3) -> list[ProblemShare]:
    """The ``n`` most frequent classes (ties by name) with their share of ``total`` orders;
    其他 is listed only if it is among them (it is a class too: a large 其他 says the table
    needs a new class)."""
    if total < sum(counts.values()):
        raise ValueError("total is smaller than the classified orders")
    ranked = sorted(((k, v) for k, v in counts.items() if v > 0), key=lambda kv: (-kv[1], kv[0]))
    return [ProblemShare(k, v, v / total) for k, v in ranked[:n]]


# --------------------------------------------------------------------------------------------
# Repeat repairs (the rule the SQL EXISTS implements; used to check it)


def repeat_repairs(orders: list[tuple[int, str, dt.datetime]], window: dt.timedelta) -> set[int]:
    """Orders that are a repeat repair: ``orders`` are (id, appliance key, created_at) of
    non-cancelled repair orders; an order repeats when an earlier one (by time, then id) of the
    same appliance was created at most ``window`` before it."""
    by_key: dict[str, list[tuple[dt.datetime, int]]] = {}
    for oid, key, created in orders:
        if key:
            by_key.setdefault(key, []).append((created, oid))
    out = set()
    for items in by_key.values():
        items.sort()
        for (t0, _), (t1, oid) in pairwise(items):
            if t1 - t0 <= window:
                out.add(oid)
    return out
