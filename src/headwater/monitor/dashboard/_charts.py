"""Charts drawn on the server as inline SVG: no script, no chart library, nothing to download.

Each point carries a ``<title>`` (the browser shows it on hover) and each chart says how many
points it drew in ``data-points``, which the browser tests check.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import escape

from headwater.monitor.dashboard._data import Series

#: Series colours, chosen to stay apart for the common kinds of colour blindness.
PALETTE = ("#2563eb", "#ea580c", "#059669", "#9333ea", "#dc2626", "#0891b2", "#ca8a04",
           "#db2777", "#4b5563", "#65a30d")


def colour(index: int) -> str:
    """The colour of the ``index``-th series."""
    return PALETTE[index % len(PALETTE)]


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round tick values covering ``low`` … ``high`` (steps of 1, 2 or 5 times a power of 10).

    >>> nice_ticks(0, 97)
    [0.0, 25.0, 50.0, 75.0, 100.0]
    >>> nice_ticks(0.9, 1.0)
    [0.9, 0.925, 0.95, 0.975, 1.0]
    """
    if high - low <= max(abs(low), abs(high), 1e-6) * 1e-9:
        pad = abs(low) * 0.05 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    digits = max(0, 3 - math.floor(math.log10(step)))
    start = math.floor(low / step) * step
    ticks: list[float] = []
    for i in range(count * 3 + 2):
        ticks.append(round(start + i * step, digits))
        if ticks[-1] >= high:
            break
    return ticks


def number(value: float) -> str:
    """A short human form: 12, 3.4, 1.2k, 5.6M.

    >>> number(1234), number(0.25), number(2_500_000), number(12)
    ('1.2k', '0.25', '2.5M', '12')
    """
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.1f}M"
    if size >= 1e3:
        return f"{value / 1e3:.1f}k"
    if size >= 100 or value == int(value):
        return f"{value:.0f}"
    if size >= 1:
        return f"{value:.1f}"
    return f"{value:.2g}"


def percent(value: float) -> str:
    """A share as a percentage: 0.9675 -> '96.8%'."""
    return f"{value * 100:.1f}%" if value < 1 else "100%"


def _time_label(at: datetime, span: timedelta) -> str:
    at = at.astimezone(UTC)
    if span <= timedelta(hours=2):
        return f"{at:%H:%M:%S}"
    if span <= timedelta(days=2):
        return f"{at:%H:%M}"
    return f"{at:%b %d}"


def line_chart(series: Series, *, label: str, fmt: Callable[[float], str] = number,
               y_min: float | None = 0.0, y_max: float | None = None, width: int = 560,
               height: int = 200, empty: str = "no data yet") -> str:
    """A time-series line chart of ``series`` (name -> points) as an ``<svg>`` element, with
    its legend as HTML after it. ``y_min``/``y_max`` pin the axis (None: from the data)."""
    points = [p for pts in series.values() for p in pts]
    if not points:
        return (f'<div class="chart-empty" role="img" aria-label="{escape(label)}">'
                f"{escape(empty)}</div>")
    left, right, top, bottom = 52, 14, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    times = [p[0].timestamp() for p in points]
    values = [p[1] for p in points]
    t0, t1 = min(times), max(times)
    if t1 - t0 < 1:
        t0, t1 = t0 - 60, t1 + 60
    low = min(values) if y_min is None else min(y_min, min(values))
    high = max(values) if y_max is None else max(y_max, max(values))
    if y_min is None and high > low:
        low = low - (high - low) * 0.1
    ticks = nice_ticks(low, high)
    low, high = ticks[0], ticks[-1]

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * plot_w

    def y(v: float) -> float:
        return top + plot_h - (v - low) / (high - low) * plot_h

    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(label)}" data-points="{len(points)}" '
           f'preserveAspectRatio="xMidYMid meet">']
    for tick in ticks:
        ty = y(tick)
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{ty:.1f}" '
                   f'y2="{ty:.1f}"/><text class="tick" x="{left - 6}" y="{ty + 4:.1f}" '
                   f'text-anchor="end">{escape(fmt(tick))}</text>')
    span = timedelta(seconds=t1 - t0)
    for i in range(4):
        t = t0 + (t1 - t0) * (i + 0.5) / 4
        out.append(f'<text class="tick" x="{x(t):.1f}" y="{height - 8}" text-anchor="middle">'
                   f'{escape(_time_label(datetime.fromtimestamp(t, UTC), span))}</text>')
    for index, (name, pts) in enumerate(series.items()):
        stroke = colour(index)
        coords = [(x(at.timestamp()), y(v)) for at, v in pts]
        if len(coords) > 1:
            path = " ".join(f"{'M' if i == 0 else 'L'}{cx:.1f},{cy:.1f}"
                            for i, (cx, cy) in enumerate(coords))
            out.append(f'<path class="line" d="{path}" stroke="{stroke}"/>')
        for (cx, cy), (at, v) in zip(coords, pts, strict=True):
            tip = f"{name} · {at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC · {fmt(v)}"
            out.append(f'<circle class="dot" cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{stroke}">'
                       f'<title>{escape(tip)}</title></circle>')
    out.append("</svg>")
    out.append(legend(list(series)))
    return "".join(out)


def legend(names: list[str]) -> str:
    """The colour key of a chart's series."""
    if not names:
        return ""
    items = "".join(f'<li><span class="swatch" style="background:{colour(i)}"></span>'
                    f"{escape(name)}</li>" for i, name in enumerate(names))
    return f'<ul class="legend">{items}</ul>'


def bars(rows: list[tuple[str, float]], *, fmt: Callable[[float], str] = number,
         tone: str = "bad") -> str:
    """Horizontal bars for a ranking (label, value), longest first, drawn with HTML."""
    if not rows:
        return ""
    top = max(v for _, v in rows) or 1.0
    items = "".join(
        f'<div class="bar-row"><span class="bar-label" title="{escape(name)}">{escape(name)}'
        f'</span><span class="bar-track"><span class="bar bar-{tone}" '
        f'style="width:{max(2.0, v / top * 100):.1f}%"></span></span>'
        f'<span class="bar-value">{escape(fmt(v))}</span></div>'
        for name, v in rows)
    return f'<div class="bars">{items}</div>'


def run_strip(statuses: list[str]) -> str:
    """Recent runs as a strip of coloured ticks, oldest first (green, red, amber)."""
    cells = "".join(f'<span class="tick-{escape(s)}" title="{escape(s)}"></span>'
                    for s in statuses)
    return f'<span class="strip" aria-label="recent runs">{cells}</span>'
