"""Server-side SVG charts for the monthly report (pure: data in, markup out).

Inline SVG needs no script and no external resource, prints at any resolution and reads the
same in every browser. Two shapes are needed: grouped bars (repairs per brand per quarter) and
a line (average repair time per month). Text is escaped; every mark carries ``data-*``
attributes (value, series, category) so a test can check what is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# A palette that survives grey-scale printing (distinct lightness), colour-blind safe.
PALETTE = ("#1f5fa8", "#e07b00", "#2a9d5b", "#b8325a", "#6d4fb3", "#7a7a7a", "#00838f", "#9c6b00")
FONT = "font-family='PingFang SC, Microsoft YaHei, Noto Sans CJK SC, sans-serif'"


@dataclass(frozen=True, slots=True)
class Frame:
    width: int = 640
    height: int = 280
    left: int = 56
    right: int = 16
    top: int = 28
    bottom: int = 56

    @property
    def plot_w(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> int:
        return self.height - self.top - self.bottom


TICKS = 4


def nice_step(value: float) -> float:
    """The smallest 1/2/5 × 10^k at or above ``value``; 1 for nothing."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        top = step * 10.0**exp
        if top >= value - 1e-9:
            return top
    return 10.0 ** (exp + 1)


def nice_max(value: float, ticks: int = TICKS) -> float:
    """An axis top at or above ``value`` whose ``ticks`` gridlines fall on round numbers
    (3 → 4 with ticks of 1; 103.5 → 200 with ticks of 50)."""
    return nice_step(value / ticks) * ticks


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:.1f}"


def _axes(f: Frame, top: float, ticks: int, unit: str) -> list[str]:
    out = []
    for i in range(ticks + 1):
        v = top * i / ticks
        y = f.top + f.plot_h - f.plot_h * i / ticks
        out.append(f"<line x1='{f.left}' x2='{f.left + f.plot_w}' y1='{y:.1f}' y2='{y:.1f}' "
                   f"stroke='#ddd' stroke-width='1'/>")
        out.append(f"<text x='{f.left - 6}' y='{y + 4:.1f}' text-anchor='end' font-size='11' fill='#555'>"
                   f"{_fmt(v)}</text>")
    out.append(f"<text x='{f.left - 6}' y='{f.top - 14}' text-anchor='end' font-size='11' fill='#555'>"
               f"{escape(unit)}</text>")
    out.append(f"<line x1='{f.left}' x2='{f.left + f.plot_w}' y1='{f.top + f.plot_h}' y2='{f.top + f.plot_h}' "
               f"stroke='#333' stroke-width='1'/>")
    return out


def _svg(f: Frame, title: str, testid: str, body: list[str], legend: list[tuple[str, str]]) -> str:
    items = []
    x = f.left
    y = f.height - 12
    for label, colour in legend:
        items.append(f"<rect x='{x}' y='{y - 9}' width='10' height='10' fill='{colour}'/>"
                     f"<text x='{x + 14}' y='{y}' font-size='11' fill='#333'>{escape(label)}</text>")
        x += 22 + 12 * len(label)
    return (f"<svg xmlns='http://www.w3.org/2000/svg' class='chart' data-testid='{testid}' role='img' "
            f"aria-label='{escape(title)}' viewBox='0 0 {f.width} {f.height}' width='{f.width}' height='{f.height}' "
            f"{FONT}><title>{escape(title)}</title>{''.join(body)}{''.join(items)}</svg>")


def grouped_bars(categories: Sequence[str], series: Sequence[tuple[str, Sequence[int]]], *, title: str,
                 unit: str = "", testid: str = "bars", frame: Frame = Frame()) -> str:
    """Bars per category (x), one per series (e.g. quarters × brands)."""
    f = frame
    top = nice_max(max((v for _, vals in series for v in vals), default=0))
    body = _axes(f, top, TICKS, unit)
    n_cat, n_ser = max(len(categories), 1), max(len(series), 1)
    slot = f.plot_w / n_cat
    bar_w = max(2.0, slot * 0.8 / n_ser)
    base = f.top + f.plot_h
    for ci, cat in enumerate(categories):
        x0 = f.left + slot * ci + slot * 0.1
        for si, (name, vals) in enumerate(series):
            v = vals[ci] if ci < len(vals) else 0
            h = f.plot_h * v / top
            body.append(f"<rect class='bar' x='{x0 + si * bar_w:.1f}' y='{base - h:.1f}' width='{bar_w - 1:.1f}' "
                        f"height='{h:.1f}' fill='{PALETTE[si % len(PALETTE)]}' data-series='{escape(name)}' "
                        f"data-category='{escape(cat)}' data-value='{v}'><title>{escape(name)} {escape(cat)}: {v}"
                        f"</title></rect>")
        body.append(f"<text x='{f.left + slot * (ci + 0.5):.1f}' y='{base + 16}' text-anchor='middle' "
                    f"font-size='11' fill='#333'>{escape(cat)}</text>")
    legend = [(name, PALETTE[i % len(PALETTE)]) for i, (name, _) in enumerate(series)]
    return _svg(f, title, testid, body, legend)


def line(categories: Sequence[str], values: Sequence[float | None], *, title: str, unit: str = "",
         testid: str = "line", label: str = "", frame: Frame = Frame()) -> str:
    """A line over the categories; a None value breaks the line (no data that month)."""
    f = frame
    top = nice_max(max((v for v in values if v is not None), default=0))
    body = _axes(f, top, TICKS, unit)
    n = max(len(categories), 1)
    step = f.plot_w / n
    base = f.top + f.plot_h
    runs: list[list[str]] = [[]]
    marks: list[str] = []
    for i, (cat, v) in enumerate(zip(categories, values)):
        x = f.left + step * (i + 0.5)
        marks.append(f"<text x='{x:.1f}' y='{base + 16}' text-anchor='middle' font-size='10' fill='#333'>"
                     f"{escape(cat[2:] if len(cat) == 7 else cat)}</text>")
        if v is None:
            runs.append([])
            continue
        y = base - f.plot_h * v / top
        runs[-1].append(f"{x:.1f},{y:.1f}")
        marks.append(f"<circle class='point' cx='{x:.1f}' cy='{y:.1f}' r='3.5' fill='{PALETTE[0]}' "
                     f"data-category='{escape(cat)}' data-value='{v:.1f}'><title>{escape(cat)}: {v:.1f}</title></circle>")
    for run in runs:
        if len(run) > 1:
            body.append(f"<polyline class='line' points='{' '.join(run)}' fill='none' stroke='{PALETTE[0]}' "
                        f"stroke-width='2'/>")
    body += marks
    return _svg(f, title, testid, body, [(label, PALETTE[0])] if label else [])
