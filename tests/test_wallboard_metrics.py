"""The wallboard's figures (callcenter.wallboard.metrics): tables of hand-computed examples."""

from __future__ import annotations

import pytest

from callcenter.wallboard.metrics import (
    FORMULAS,
    Thresholds,
    abandon_rate,
    average,
    breaches,
    in_service_level,
    longest_wait,
    queue_figures,
    service_level,
    service_level_with_abandoned,
    time_in_state,
)


@pytest.mark.parametrize(("in_sl", "completed", "expected"), [
    (0, 0, None),          # no completed call: no figure (Asterisk prints 0.0)
    (1, 1, 100.0),
    (3, 4, 75.0),
    (2, 3, 66.7),          # 66.666… → one decimal, as Asterisk's %2.1f
    (1, 3, 33.3),
    (0, 5, 0.0),
    (79, 100, 79.0),
])
def test_service_level(in_sl: int, completed: int, expected: float | None) -> None:
    assert service_level(in_sl, completed) == expected


@pytest.mark.parametrize(("c_in", "a_in", "c", "a", "expected"), [
    (0, 0, 0, 0, None),
    (3, 2, 3, 2, 100.0),   # resync_mid_call, queue aftersales: Completed 3, Abandoned 2 → 100.0
    (1, 1, 1, 1, 100.0),   # escalation: Completed 1, Abandoned 1 → 100.0
    (2, 0, 3, 1, 50.0),    # (2 + 0) / (3 + 1)
    (0, 1, 1, 1, 50.0),
])
def test_service_level_with_abandoned(c_in: int, a_in: int, c: int, a: int, expected: float | None) -> None:
    assert service_level_with_abandoned(c_in, a_in, c, a) == expected


@pytest.mark.parametrize(("hold", "threshold", "expected"), [
    (0, 20, True), (19, 20, True), (20, 20, True), (21, 20, False), (10, 10, True), (11, 10, False),
])
def test_in_service_level_is_inclusive_whole_seconds(hold: int, threshold: int, expected: bool) -> None:
    assert in_service_level(hold, threshold) is expected


@pytest.mark.parametrize(("total", "count", "expected"), [
    (0, 0, None), (49, 8, 6.1), (32, 8, 4.0), (7, 2, 3.5), (10, 3, 3.3), (5, 1, 5.0),
])
def test_average(total: int, count: int, expected: float | None) -> None:
    assert average(total, count) == expected


@pytest.mark.parametrize(("abandoned", "offered", "expected"), [
    (0, 0, None), (2, 10, 20.0), (0, 7, 0.0), (1, 3, 33.3), (3, 3, 100.0),
])
def test_abandon_rate(abandoned: int, offered: int, expected: float | None) -> None:
    assert abandon_rate(abandoned, offered) == expected


@pytest.mark.parametrize(("joined", "now", "expected"), [
    ([], 100.0, 0), ([90.0], 100.0, 10), ([95.5, 40.2, 70.0], 100.0, 59), ([101.0], 100.0, 0),
])
def test_longest_wait(joined: list[float], now: float, expected: int) -> None:
    assert longest_wait(joined, now) == expected


@pytest.mark.parametrize(("since", "now", "expected"), [(10.0, 10.0, 0), (10.0, 75.9, 65), (20.0, 10.0, 0)])
def test_time_in_state(since: float, now: float, expected: int) -> None:
    assert time_in_state(since, now) == expected


@pytest.mark.parametrize(("wait", "sl", "expected"), [
    (60, 80.0, []),                                   # at the limits: not past them
    (61, 80.0, ["longest_wait"]),
    (0, 79.9, ["service_level"]),
    (120, 50.0, ["longest_wait", "service_level"]),
    (0, None, []),                                    # no figure yet: no breach
])
def test_breaches(wait: int, sl: float | None, expected: list[str]) -> None:
    assert breaches(wait, sl, Thresholds(60, 80.0)) == expected


def test_queue_figures_of_a_day_tally() -> None:
    # burst_10_calls, queue bulk: 10 offered, 8 answered after 2,3,4,5,7,8,9,11 s and talking
    # 7,4,4,7,2,1,7,0 s, 2 callers hung up after 13 s in the queue.
    tally = {"offered": 10, "answered": 8, "abandoned": 2, "abandoned_in_sl": 2, "completed": 8,
             "completed_in_sl": 8, "hold_sum": 49, "talk_sum": 32}
    assert queue_figures(tally) == {"service_level": 100.0, "service_level2": 100.0, "asa": 6.1,
                                    "aht": 4.0, "abandon_rate": 20.0}


def test_every_figure_has_its_formula_stated() -> None:
    for key in ("offered", "answered", "abandoned", "service_level", "asa", "aht", "abandon_rate",
                "longest_wait", "time_in_state", "talk_time"):
        assert "=" in FORMULAS[key]
