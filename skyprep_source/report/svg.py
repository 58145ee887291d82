"""Charts as inline SVG, written by hand: horizontal bars, columns and lines.

No charting library and no script: each chart is a few kilobytes of SVG that any browser (and
most e-mail viewers) draws from the file alone. Every mark carries a `<title>` (the browser's
tooltip) and every chart an `aria-label`; the numbers are also in a table beside the chart.
All text goes through `escape`, so a course named `<script>` is drawn as text.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Colour-blind-safe palette (Okabe-Ito), in the order series are drawn.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#999999")

# Compliance statuses in the models' order of severity, each with a fixed colour.
STATUS_COLOURS = {
    "compliant": "#009E73",
    "in_progress": "#56B4E9",
    "overdue": "#E69F00",
    "expired": "#CC79A7",
    "not_compliant": "#D55E00",
}


def escape(text: object) -> str:
    """Text (or attribute value) safe to put in HTML or inline SVG."""
    return html.escape(str(text), quote=True)


def integer(value: float) -> str:
    """1234 -> '1,234'."""
    return f"{round(value):,}"


def percent(value: float | None) -> str:
    """0.1234 -> '12.3%'; None -> '–'."""
    return "–" if value is None else f"{value:.1%}"


Formatter = Callable[[float], str]


@dataclass(frozen=True)
class Series:
    """One series of a chart: its name (legend, tooltips) and colour."""

    name: str
    colour: str


def series_of(names: Sequence[str]) -> list[Series]:
    """Series with the status colours where a name is a status, else the palette in order."""
    return [
        Series(name.replace("_", " "), STATUS_COLOURS.get(name, PALETTE[i % len(PALETTE)]))
        for i, name in enumerate(names)
    ]


def legend(series: Sequence[Series]) -> str:
    """An HTML legend: a swatch and the name of each series."""
    items = "".join(
        f'<li><svg class="swatch" width="12" height="12" aria-hidden="true">'
        f'<rect width="12" height="12" fill="{s.colour}"/></svg>{escape(s.name)}</li>'
        for s in series
    )
    return f'<ul class="legend">{items}</ul>'


def bar_rows(
    rows: Sequence[tuple[str, Sequence[float], str]],
    series: Sequence[Series],
    *,
    scale_max: float | None = None,
    fmt: Formatter = integer,
    group_ids: Sequence[str | None] | None = None,
) -> str:
    """Horizontal (stacked) bars, one row per (label, values per series, text at the end).

    Each row is its own small SVG, so a row hidden by the group filter closes up. Bars share
    one scale: `scale_max`, else the largest row total.
    """
    if not rows:
        return ""
    largest = scale_max or max((sum(values) for _, values, _ in rows), default=0) or 1
    out = ['<div class="bars">']
    for index, (label, values, text) in enumerate(rows):
        group = group_ids[index] if group_ids else None
        attrs = f' data-group="{escape(group)}"' if group is not None else ""
        rects = []
        x = 0.0
        for s, value in zip(series, values, strict=True):
            if value <= 0:
                continue
            width = 100.0 * value / largest
            rects.append(
                f'<rect x="{x:.3f}%" y="2" width="{width:.3f}%" height="14" fill="{s.colour}">'
                f"<title>{escape(label)}: {escape(s.name)} {escape(fmt(value))}</title></rect>"
            )
            x += width
        if not rects:  # a zero row still shows its track, so the row is visibly "nothing"
            rects.append('<rect x="0" y="8" width="0.4%" height="2" fill="#bbb"/>')
        out.append(
            f'<div class="bar-row"{attrs}><span class="bar-label" title="{escape(label)}">'
            f"{escape(label)}</span>"
            f'<svg class="bar" width="100%" height="18" role="img" '
            f'aria-label="{escape(label)}: {escape(text)}">'
            f'<rect x="0" y="2" width="100%" height="14" fill="#f1f1f1"/>{"".join(rects)}</svg>'
            f'<span class="bar-value">{escape(text)}</span></div>'
        )
    out.append("</div>")
    return "".join(out)


# Geometry of the column and line charts (SVG user units; the SVG scales to its box).
WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 10, 46


def _axis(largest: float, fmt: Formatter) -> tuple[float, str]:
    """A rounded top of the y scale and the gridlines with their labels."""
    top = _nice(largest)
    lines = []
    for step in range(5):
        value = top * step / 4
        y = _y(value, top)
        lines.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#e3e3e3"/><text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'class="tick">{escape(fmt(value))}</text>'
        )
    return top, "".join(lines)


def _nice(value: float) -> float:
    """The smallest round number (1, 2, 3, 4, 5, 6 or 8 times a power of ten) at or above
    `value` whose quarters, the gridlines, are whole numbers (a gridline at 37.5 would be
    labelled 38): 4, 8, 20, 40, 60, 80, 100, 200, 300, ..."""
    if not 4 < value < 1e300:  # small, zero, negative, NaN or infinite: the smallest scale
        return 4.0
    magnitude = 1
    while True:
        for factor in (1, 2, 3, 4, 5, 6, 8):
            top = factor * magnitude
            if top >= value and top % 4 == 0:
                return float(top)
        magnitude *= 10


def _y(value: float, top: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - value / top)


def _x_labels(labels: Sequence[str], centre: Callable[[int], float]) -> str:
    """Category labels under the x axis, thinned to at most ~12 so they never overlap."""
    every = max(1, -(-len(labels) // 12))
    return "".join(
        f'<text x="{centre(i):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
        f'class="tick">{escape(label)}</text>'
        for i, label in enumerate(labels)
        if i % every == 0 or i == len(labels) - 1
    )


def columns(
    labels: Sequence[str],
    values: Sequence[Sequence[float]],
    series: Sequence[Series],
    *,
    title: str,
    fmt: Formatter = integer,
) -> str:
    """Stacked columns: one per label, `values[i]` holds the series' values of label i."""
    largest = max((sum(v) for v in values), default=0)
    top, grid = _axis(largest, fmt)
    slot = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    width = max(slot * 0.72, 1.0)
    marks = []
    for i, (label, stack) in enumerate(zip(labels, values, strict=True)):
        base = 0.0
        x = LEFT + slot * i + (slot - width) / 2
        for s, value in zip(series, stack, strict=True):
            if value <= 0:
                continue
            y0, y1 = _y(base, top), _y(base + value, top)
            marks.append(
                f'<rect x="{x:.1f}" y="{y1:.1f}" width="{width:.1f}" height="{y0 - y1:.1f}" '
                f'fill="{s.colour}"><title>{escape(label)}: {escape(s.name)} '
                f"{escape(fmt(value))}</title></rect>"
            )
            base += value
    axis = _x_labels(labels, lambda i: LEFT + slot * (i + 0.5))
    return _frame(title, grid + "".join(marks) + axis)


def lines(
    labels: Sequence[str],
    values: Sequence[Sequence[float | None]],
    series: Sequence[Series],
    *,
    title: str,
    fmt: Formatter = integer,
    scale_max: float | None = None,
) -> str:
    """One line per series over the labels; `values[i][j]` is series j at label i (None: a gap)."""
    largest = scale_max or max((v for row in values for v in row if v is not None), default=0)
    top, grid = _axis(largest, fmt)
    step = (WIDTH - LEFT - RIGHT) / max(len(labels) - 1, 1)

    def x_of(i: int) -> float:
        return LEFT + step * i if len(labels) > 1 else (LEFT + WIDTH - RIGHT) / 2

    marks = []
    for j, s in enumerate(series):
        points = [
            (x_of(i), _y(value, top), label, value)
            for i, (label, row) in enumerate(zip(labels, values, strict=True))
            if (value := row[j]) is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
            marks.append(
                f'<polyline points="{path}" fill="none" stroke="{s.colour}" stroke-width="2"/>'
            )
        marks += [
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{s.colour}"><title>{escape(label)}: '
            f"{escape(s.name)} {escape(fmt(value))}</title></circle>"
            for x, y, label, value in points
        ]
    axis = _x_labels(labels, x_of)
    return _frame(title, grid + "".join(marks) + axis)


def _frame(title: str, body: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">'
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM}" '
        f'stroke="#999"/>{body}</svg>'
    )
