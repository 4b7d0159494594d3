"""Line charts drawn on the server as inline SVG: no script, no inline style (the pages' Content-Security-
Policy allows neither), readable without JavaScript and printable. Colours are SVG presentation attributes.

The usual Python plotting libraries do not fit that policy: pygal's SVG carries a <style> element and a script
loaded from its site, matplotlib's puts every colour in a style attribute. Hence this small drawer (lines,
points with a tooltip, axes, a legend).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 40
COLOURS = ("#1f6feb", "#d1495b", "#2a9d8f", "#e9a23b")
MAX_X_LABELS = 8


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^n at or above ``value`` (the top of the y axis)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def line_chart(chart_id: str, title: str, buckets: list[datetime], series: list[tuple[str, list[float | None]]],
               unit: str, date_label: Callable[[datetime], str]) -> Markup:
    """An SVG line chart: one line per (label, values) pair over the buckets; None values leave a gap.

    ``unit`` fixes the y axis: percent 0-100, rating 0-5, otherwise 0 to a round number above the largest value.
    Each point is a <circle> with a <title> (label, date, value) for the tooltip.
    """
    values = [v for _, line in series for v in line if v is not None]
    top = 100.0 if unit == "percent" else 5.0 if unit == "rating" else nice_ceiling(max(values, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(buckets) - 1, 1)

    def x(i: int) -> float:
        return LEFT + i * step

    def y(v: float) -> float:
        return TOP + plot_h * (1 - min(v, top) / top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" role="img" '
             f'viewBox="0 0 {WIDTH} {HEIGHT + 18 * len(series)}" aria-labelledby="{escape(chart_id)}-title">',
             f'<title id="{escape(chart_id)}-title">{escape(title)}</title>']
    for tick in range(5):  # horizontal grid and y labels
        value = top * tick / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     f'stroke="#d0d7de" stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#57606a">{escape(_number(value))}</text>')
    every = max(1, math.ceil(len(buckets) / MAX_X_LABELS))
    for i, bucket in enumerate(buckets):
        if i % every == 0:
            parts.append(f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11" '
                         f'fill="#57606a">{escape(date_label(bucket))}</text>')
    for number, (label, line) in enumerate(series):
        colour = COLOURS[number % len(COLOURS)]
        run: list[str] = []
        runs = [run]
        for i, value in enumerate(line):
            if value is None:
                run = []
                runs.append(run)
            else:
                run.append(f"{x(i):.1f},{y(value):.1f}")
        for points in runs:
            if len(points) > 1:
                parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(points)}"/>')
        for i, value in enumerate(line):
            if value is not None:
                parts.append(f'<circle class="point" data-series="{escape(label)}" cx="{x(i):.1f}" '
                             f'cy="{y(value):.1f}" r="3" fill="{colour}"><title>{escape(label)}, '
                             f'{escape(date_label(buckets[i]))}: {escape(_number(value))}</title></circle>')
        legend_y = HEIGHT + 18 * number + 4
        parts.append(f'<rect x="{LEFT}" y="{legend_y - 9}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{LEFT + 18}" y="{legend_y + 1}" font-size="12" fill="#24292f">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
