"""Time-series charts as inline SVG, drawn server-side from the analytics summary. No I/O, no JavaScript.

Colours come from the stylesheet through a ``tone-*`` class on each mark, so the charts follow the page's theme.
Every text that reaches the SVG is escaped; numbers are formatted here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 12, 30
PLOT_W = WIDTH - LEFT - RIGHT
PLOT_H = HEIGHT - TOP - BOTTOM
X_LABELS = 5
Y_TICKS = 4


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float | None]
    tone: str  # the stylesheet's colour for it: checks, allowed, blocked, risk, risk-high, latency


@dataclass(frozen=True)
class Chart:
    title: str
    svg: Markup
    legend: tuple[tuple[str, str], ...]  # (label, tone)
    empty: bool


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least ``value`` (1 for nothing), so the axis
    reads in round steps."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        candidate = step * math.pow(10, exponent)
        if candidate >= value:
            return candidate
    return math.pow(10, exponent + 1)


def format_number(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"


def _y(value: float, top: float) -> float:
    return TOP + PLOT_H - (value / top) * PLOT_H


def _frame(title: str, labels: Sequence[str], top: float, unit: str) -> list[str]:
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(Y_TICKS + 1):
        value = top * i / Y_TICKS
        y = _y(value, top)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(format_number(value))}{escape(unit)}</text>"
        )
    count = len(labels)
    if count:
        picks = sorted({round(i * (count - 1) / (X_LABELS - 1)) for i in range(X_LABELS)}) if count > 1 else [0]
        slot = PLOT_W / count
        for index in picks:
            x = LEFT + slot * (index + 0.5)
            anchor = "start" if index == 0 and count > 1 else "end" if index == count - 1 and count > 1 else "middle"
            x = LEFT if anchor == "start" else WIDTH - RIGHT if anchor == "end" else x
            label = escape(labels[index])
            parts.append(f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 10}" text-anchor="{anchor}">{label}</text>')
    parts.append(f'<line class="baseline" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + PLOT_H}" y2="{TOP + PLOT_H}"/>')
    return parts


def _close(parts: list[str], empty: bool, empty_text: str) -> Markup:
    if empty:
        parts.append(
            f'<text class="empty" x="{LEFT + PLOT_W / 2:.1f}" y="{TOP + PLOT_H / 2:.1f}" text-anchor="middle">'
            f"{escape(empty_text)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - built above from escaped text and formatted numbers only


def bar_chart(
    title: str, labels: Sequence[str], stacks: Sequence[Series], *, unit: str = "", empty_text: str = "No data"
) -> Chart:
    """Bars per bucket, the series stacked in the order given."""
    totals = [sum(s.values[i] or 0 for s in stacks) for i in range(len(labels))]
    top = nice_ceiling(max(totals, default=0))
    empty = not any(totals)
    parts = _frame(title, labels, top, unit)
    slot = PLOT_W / max(len(labels), 1)
    width = max(slot * 0.8, 1.0)
    for i, label in enumerate(labels):
        base = 0.0
        x = LEFT + slot * i + (slot - width) / 2
        for series in stacks:
            value = series.values[i] or 0
            if value <= 0:
                continue
            y_top, y_base = _y(base + value, top), _y(base, top)
            parts.append(
                f'<rect class="tone-{escape(series.tone)}" x="{x:.2f}" y="{y_top:.2f}" width="{width:.2f}" '
                f'height="{max(y_base - y_top, 0.5):.2f}"><title>{escape(label)}: '
                f"{escape(series.label)} {escape(format_number(value))}{escape(unit)}</title></rect>"
            )
            base += value
    return Chart(title, _close(parts, empty, empty_text), tuple((s.label, s.tone) for s in stacks), empty)


def line_chart(
    title: str, labels: Sequence[str], lines: Sequence[Series], *, unit: str = "", empty_text: str = "No data"
) -> Chart:
    """One line per series; a bucket without a value (``None``) breaks the line."""
    present = [v for s in lines for v in s.values if v is not None]
    top = nice_ceiling(max(present, default=0))
    empty = not present
    parts = _frame(title, labels, top, unit)
    slot = PLOT_W / max(len(labels), 1)
    for series in lines:
        runs: list[list[tuple[float, float]]] = [[]]
        for i, value in enumerate(series.values):
            if value is None:
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append((LEFT + slot * (i + 0.5), _y(value, top)))
        tone = escape(series.tone)
        for run in runs:
            if len(run) == 1:
                x, y = run[0]
                parts.append(f'<circle class="dot tone-{tone}" cx="{x:.2f}" cy="{y:.2f}" r="2.5"/>')
            elif run:
                points = " ".join(f"{x:.2f},{y:.2f}" for x, y in run)
                parts.append(f'<polyline class="line tone-{tone}" points="{points}"/>')
    return Chart(title, _close(parts, empty, empty_text), tuple((s.label, s.tone) for s in lines), empty)
