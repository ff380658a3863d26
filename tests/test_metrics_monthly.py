"""The SA-DA-006 rules as tables of hand-computed examples (callcenter.analysis.metrics)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from callcenter.analysis import metrics as m
from callcenter.errors import ValidationFailed

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
UTC = dt.UTC


@pytest.mark.parametrize(("num", "den", "expected"), [
    (0, 0, None), (0, 5, 0.0), (5, 5, 1.0), (2, 3, 2 / 3), (9, 10, 0.9),
])
def test_rate(num: int, den: int, expected: float | None) -> None:
    assert m.rate(num, den) == expected


@pytest.mark.parametrize(("num", "den"), [(4, 3), (-1, 3), (1, -1)])
def test_rate_refuses_impossible_counts(num: int, den: int) -> None:
    with pytest.raises(ValueError):
        m.rate(num, den)


@pytest.mark.parametrize(("total", "count", "unit", "expected"), [
    (18600, 5, 60, 62.0),  # five responses: 60+30+120+10+90 min
    (352800, 3, 3600, 32 + 2 / 3),  # 26 h + 48 h + 24 h
    (0, 0, 60, None), (90, 1, 1, 90.0),
])
def test_average(total: float, count: int, unit: float, expected: float | None) -> None:
    assert m.average(total, count, unit) == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(("created", "cancelled", "completed", "expected"), [
    (7, 1, 4, 4 / 6), (10, 0, 10, 1.0), (3, 3, 0, None), (0, 0, 0, None), (5, 1, 0, 0.0),
])
def test_completion_rate_leaves_cancelled_orders_out(created: int, cancelled: int, completed: int,
                                                     expected: float | None) -> None:
    assert m.completion_rate(created, cancelled, completed) == expected


@pytest.mark.parametrize(("fen", "orders", "expected"), [(19000, 5, 3800.0), (1, 3, 1 / 3), (500, 0, None)])
def test_per_order(fen: int, orders: int, expected: float | None) -> None:
    assert m.per_order(fen, orders) == expected


@pytest.mark.parametrize(("events", "population", "expected"), [
    (3, 2, 1500.0), (1, 2000, 0.5), (0, 10, 0.0), (4, 0, None),
])
def test_failure_rate_per_thousand_registered(events: int, population: int, expected: float | None) -> None:
    assert m.per_thousand(events, population) == expected


@pytest.mark.parametrize(("surveyed", "dissatisfied", "satisfied_rate"), [
    (2, 1, 0.5), (10, 0, 1.0), (0, 0, None), (4, 3, 0.25),
])
def test_without_scores_satisfaction_has_a_rate_and_no_average(surveyed: int, dissatisfied: int,
                                                              satisfied_rate: float | None) -> None:
    s = m.satisfaction(surveyed, dissatisfied)
    assert (s.source, s.satisfied_rate, s.average_score) == ("milestones", satisfied_rate, None)


@pytest.mark.parametrize(("scores", "mean"), [
    ((5, 5, 5, 5, 5, 5), 5.0), ((5, 5, 5, 5, 5, 4), 29 / 6), ((2, 3, 2, 2, 2, 3), 14 / 6), ((1,) * 6, 1.0),
])
def test_one_surveys_score_is_the_mean_of_its_six(scores: tuple[int, ...], mean: float) -> None:
    assert m.survey_mean(scores) == pytest.approx(mean)


def test_with_scores_the_average_is_over_surveys_and_the_rate_over_outcomes() -> None:
    surveys = [(5, 5, 5, 5, 5, 4), (2, 3, 2, 2, 2, 3)]
    s = m.satisfaction(surveyed=3, dissatisfied=1, scored=2, score_sum=sum(m.survey_mean(x) for x in surveys))
    assert s.source == "scores" and s.scored == 2
    assert s.average_score == pytest.approx(43 / 12)
    assert s.satisfied_rate == pytest.approx(2 / 3)  # one surveyed order had no scores (a note)
    for bad in ((0,) * 6, (6, 5, 5, 5, 5, 5), ()):
        with pytest.raises(ValueError):
            m.survey_mean(bad)
    with pytest.raises(ValueError):
        m.satisfaction(surveyed=1, dissatisfied=0, scored=1, score_sum=5.5)


@pytest.mark.parametrize(("text", "cls"), [
    ("不制冷，外机不转", "不制冷/制冷差"),
    ("漏水，地面有水渍", "漏水"),
    ("开机有异响，像金属摩擦", "异响/噪音"),
    ("显示E4故障代码", "故障代码/显示异常"),
    ("闻到燃气味，已关阀门", "燃气异味/泄漏"),
    ("加热慢，水温上不去", "不加热/加热慢"),
    # Safety first: a gas smell with a noise is a gas problem.
    ("有异响还有燃气味", "燃气异味/泄漏"),
    ("插头冒烟", "漏电/冒烟/焦味"),
    ("冰箱冷藏室门关不严，门封条脱落", "门封/门关不严"),
    ("按键失灵", "其他"),
    ("", "其他"),
])
def test_problem_classes(text: str, cls: str) -> None:
    assert m.classify_problem(text) == cls


def test_top_problems_ranks_by_count_then_name_and_shares_of_all_orders() -> None:
    counts = {"漏水": 2, "不制冷/制冷差": 2, "燃气异味/泄漏": 1, "安装/移机": 1, "故障代码/显示异常": 1, "其他": 0}
    top = m.top_problems(counts, 7)
    assert [(p.problem, p.orders) for p in top] == [("不制冷/制冷差", 2), ("漏水", 2), ("安装/移机", 1)]
    assert [p.share for p in top] == pytest.approx([2 / 7, 2 / 7, 1 / 7])
    assert m.top_problems({}, 0) == []
    with pytest.raises(ValueError):
        m.top_problems({"漏水": 3}, 2)


@pytest.mark.parametrize(("month", "tz", "start", "end"), [
    # Shanghai is UTC+8 all year: November starts at 16:00 UTC on 31 October.
    ("2026-11", SH, dt.datetime(2026, 10, 31, 16, tzinfo=UTC), dt.datetime(2026, 11, 30, 16, tzinfo=UTC)),
    ("2026-12", SH, dt.datetime(2026, 11, 30, 16, tzinfo=UTC), dt.datetime(2026, 12, 31, 16, tzinfo=UTC)),
    ("2026-02", SH, dt.datetime(2026, 1, 31, 16, tzinfo=UTC), dt.datetime(2026, 2, 28, 16, tzinfo=UTC)),
    # New York's November starts in summer time (UTC−4) and ends in winter time (UTC−5).
    ("2026-11", NY, dt.datetime(2026, 11, 1, 4, tzinfo=UTC), dt.datetime(2026, 12, 1, 5, tzinfo=UTC)),
])
def test_month_in_the_centres_time_zone(month: str, tz: ZoneInfo, start: dt.datetime, end: dt.datetime) -> None:
    p = m.parse_month(month, tz)
    assert (p.label, p.start, p.end) == (month, start, end)


@pytest.mark.parametrize("bad", ["2026-13", "2026-00", "202611", "2026-1", "abcd-ef", "1999-12", ""])
def test_malformed_months_are_a_422_on_month(bad: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        m.parse_month(bad, SH)
    assert e.value.details["field"] == "month"


@pytest.mark.parametrize(("now", "expected"), [
    (dt.datetime(2026, 12, 3, 2, tzinfo=UTC), "2026-11"),
    # 1 January 00:30 in Shanghai is still 31 December in UTC: the centre's calendar decides.
    (dt.datetime(2025, 12, 31, 16, 30, tzinfo=UTC), "2025-12"),
    (dt.datetime(2026, 1, 15, tzinfo=UTC), "2025-12"),
])
def test_previous_month(now: dt.datetime, expected: str) -> None:
    assert m.previous_month(now, SH) == expected


def test_trailing_months_and_quarters() -> None:
    p = m.parse_month("2026-02", SH)
    assert [x.label for x in m.trailing_months(p, 4, SH)] == ["2025-11", "2025-12", "2026-01", "2026-02"]
    qs = m.trailing_quarters(m.parse_month("2026-11", SH), 4, SH)
    assert [q.label for q in qs] == ["2026Q1", "2026Q2", "2026Q3", "2026Q4"]
    # The current quarter stops at the end of the report's month.
    assert qs[-1].start == dt.datetime(2026, 9, 30, 16, tzinfo=UTC)
    assert qs[-1].end == dt.datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert [q.label for q in m.trailing_quarters(m.parse_month("2026-01", SH), 4, SH)] == [
        "2025Q2", "2025Q3", "2025Q4", "2026Q1"]


T0 = dt.datetime(2026, 11, 1, tzinfo=UTC)
D = dt.timedelta(days=1)


@pytest.mark.parametrize(("orders", "window_days", "expected"), [
    # Same appliance 18 days apart: the later one repeats.
    ([(1, "a1", T0), (2, "a1", T0 + 18 * D)], 90, {2}),
    # 91 days apart with a 90-day window: not a repeat; exactly 90 days: a repeat.
    ([(1, "a1", T0), (2, "a1", T0 + 91 * D)], 90, set()),
    ([(1, "a1", T0), (2, "a1", T0 + 90 * D)], 90, {2}),
    # Different appliances never repeat each other; no key (no appliance, no serial): never.
    ([(1, "a1", T0), (2, "a2", T0 + D), (3, "", T0 + 2 * D), (4, "", T0 + 3 * D)], 90, set()),
    # Three visits: the second and the third both repeat.
    ([(3, "a1", T0 + 20 * D), (1, "a1", T0), (2, "a1", T0 + 10 * D)], 30, {2, 3}),
    # The same instant: the later id is the repeat.
    ([(7, "s:SN1", T0), (8, "s:SN1", T0)], 90, {8}),
])
def test_repeat_repairs(orders: list, window_days: int, expected: set[int]) -> None:
    assert m.repeat_repairs(orders, dt.timedelta(days=window_days)) == expected


@pytest.mark.parametrize("month", [f"2026-{k:02d}" for k in range(1, 13)])
def test_the_four_quarters_are_whole_months_of_the_twelve(month: str) -> None:
    """The brand bars are summed from the repair-time line's months: every quarter shown must
    start on one of those months and end on a month boundary."""
    p = m.parse_month(month, SH)
    months = m.trailing_months(p, 12, SH)
    starts = {x.start for x in months}
    for q in m.trailing_quarters(p, 4, SH):
        assert q.start in starts
        assert q.end in starts | {p.end}
