"""How the monthly report is drawn and shown: the server-side SVG charts
(callcenter.analysis.charts — axis tops, bar heights in proportion, a line broken where a month
has no data, labels escaped) and the values' display (callcenter.analysis.export)."""

from __future__ import annotations

import re

import pytest

from callcenter.analysis import charts


@pytest.mark.parametrize(("value", "top"), [
    (0, 4.0), (3, 4.0), (4, 4.0), (5, 8.0), (103.5, 200.0), (48, 80.0), (0.3, 0.4), (1500, 2000.0),
])
def test_axis_top_is_round_at_every_tick(value: float, top: float) -> None:
    assert charts.nice_max(value) == pytest.approx(top)


def _bars(svg: str) -> dict[tuple[str, str], tuple[float, float]]:
    out = {}
    for m in re.finditer(r"<rect class='bar'[^>]*y='([\d.]+)' width='[\d.]+' height='([\d.]+)'[^>]*"
                         r"data-series='([^']*)' data-category='([^']*)' data-value='(\d+)'", svg):
        out[(m.group(3), m.group(4))] = (float(m.group(5)), float(m.group(2)))
    return out


def test_bars_are_in_proportion_and_zero_is_flat() -> None:
    svg = charts.grouped_bars(["Q1", "Q2"], [("格力", [3, 0]), ("海<尔>", [1, 2])], title="t")
    bars = _bars(svg)
    assert len(bars) == 4
    plot_h = charts.Frame().plot_h
    assert bars[("格力", "Q1")][1] == pytest.approx(plot_h * 3 / 4, abs=0.1)
    assert bars[("海&lt;尔&gt;", "Q2")][1] == pytest.approx(plot_h * 2 / 4, abs=0.1)
    assert bars[("格力", "Q2")][1] == 0
    assert "<尔>" not in svg and svg.startswith("<svg") and "data-testid='bars'" in svg


def test_a_month_without_data_breaks_the_line() -> None:
    svg = charts.line(["2026-08", "2026-09", "2026-10", "2026-11"], [48.0, None, 24.0, 103.5], title="t")
    assert svg.count("class='point'") == 3
    # Only 2026-10 → 2026-11 are consecutive: one polyline of two points.
    lines = re.findall(r"points='([^']*)'", svg)
    assert len(lines) == 1 and len(lines[0].split()) == 2
    empty = charts.line(["2026-11"], [None], title="t")
    assert "class='point'" not in empty and "polyline" not in empty


@pytest.mark.parametrize(("value", "kind", "shown"), [
    (None, "rate", "—"), (2 / 3, "rate", "66.7%"), (0.0, "rate", "0.0%"), (3800.0, "fen", "38.00"),
    (123456.0, "fen", "1,234.56"), (103.5, "h", "103.5"), (62.0000001, "min", "62.0"), (4.256, "score", "4.26"),
    (3, "int", "3"), ("深圳市", "text", "深圳市"), ((None, "score"), "mixed", "—"), ((0.5, "rate"), "mixed", "50.0%"),
])
def test_how_report_values_are_shown(value, kind: str, shown: str) -> None:  # type: ignore[no-untyped-def]
    from callcenter.analysis.export import cell_text

    assert cell_text(value, kind) == shown
