"""Inline SVG charts in pure Python: bar (grouped or stacked, vertical or horizontal), histogram, line.

The run report must open anywhere, offline, years later: no JavaScript, no plotting library, no
fonts or stylesheets fetched from the network. Each function returns one `<svg>` element with a
title, axis labels, tick labels and a legend; every data mark (bar, line, point) carries
`class="mark"` so a test can tell an empty chart from a drawn one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

# Tableau 20 (colour-blind-aware ordering of the first ten), cycled for longer legends.
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
    "#bab0ac", "#a0cbe8", "#ffbe7d", "#ff9d9a", "#86bcb6", "#8cd17d", "#f1ce63", "#d4a6c8", "#fabfd2",
    "#d7b5a6", "#79706e",
)  # fmt: skip
FONT = 12  # px; every text size is relative to it
_CHAR_WIDTH = 0.58  # average glyph width of a sans-serif font, in font sizes (for layout estimates)


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def text_width(text: str, size: float = FONT) -> float:
    """Estimated rendered width; used to size margins and wrap legends (no font metrics offline)."""
    return len(text) * size * _CHAR_WIDTH


def format_number(value: float) -> str:
    """Short tick and value labels: 1.2k, 3.4M, 0.25, 12."""
    magnitude = abs(value)
    for limit, unit, suffix in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):  # 9,500 stays 9,500
        if magnitude >= limit:
            return f"{value / unit:.3g}{suffix}"
    if magnitude >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round tick values (steps of 1, 2, 2.5 or 5 x 10^k) covering [low, high]."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = [round(first, 12)]
    while ticks[-1] < high - step * 1e-9:
        ticks.append(round(first + len(ticks) * step, 12))
    return ticks


@dataclass(frozen=True)
class _Frame:
    """Outer size and the plot area inside the margins."""

    width: float
    height: float
    left: float
    top: float
    right: float
    bottom: float

    @property
    def plot_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> float:
        return self.height - self.top - self.bottom


def _open(frame: _Frame, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{frame.width:.0f}" '
        f'height="{frame.height:.0f}" viewBox="0 0 {frame.width:.0f} {frame.height:.0f}" '
        f'font-family="sans-serif" font-size="{FONT}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{frame.width / 2:.1f}" y="{FONT * 1.6:.1f}" text-anchor="middle" font-size="{FONT * 1.25:.0f}" '
        f'font-weight="bold">{escape(title)}</text>',
    ]


def _legend(names: Sequence[str], frame_width: float, y: float, styles: Sequence[str] | None = None,
            fills: Sequence[str] | None = None) -> list[str]:
    """A wrapping row of swatches under the title; `styles` gives a line's dash pattern per entry."""
    parts: list[str] = []
    x, row_y = 12.0, y
    for i, name in enumerate(names):
        entry = 18 + text_width(name) + 16
        if x + entry > frame_width - 12 and x > 12:
            x, row_y = 12.0, row_y + FONT * 1.5
        if styles is None:
            fill = fills[i] if fills else colour(i)
            parts.append(f'<rect x="{x:.1f}" y="{row_y - 9:.1f}" width="12" height="12" fill="{fill}"/>')
        else:
            parts.append(
                f'<line x1="{x:.1f}" y1="{row_y - 3:.1f}" x2="{x + 14:.1f}" y2="{row_y - 3:.1f}" '
                f'stroke="{colour(i)}" stroke-width="2.5" stroke-dasharray="{styles[i]}"/>'
            )
        parts.append(f'<text x="{x + 18:.1f}" y="{row_y + 1:.1f}">{escape(name)}</text>')
        x += entry
    return parts


def legend_height(names: Sequence[str], frame_width: float) -> float:
    """Height the legend rows take (0 for a single series, which needs no legend)."""
    if len(names) <= 1:
        return 0.0
    rows, x = 1, 12.0
    for name in names:
        entry = 18 + text_width(name) + 16
        if x + entry > frame_width - 12 and x > 12:
            rows, x = rows + 1, 12.0
        x += entry
    return rows * FONT * 1.5 + 4


def _axis_titles(frame: _Frame, x_label: str, y_label: str) -> list[str]:
    cx = frame.left + frame.plot_width / 2
    cy = frame.top + frame.plot_height / 2
    return [
        f'<text x="{cx:.1f}" y="{frame.height - 8:.1f}" text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="14" y="{cy:.1f}" text-anchor="middle" transform="rotate(-90 14 {cy:.1f})">{escape(y_label)}</text>',
    ]


def _value_axis(frame: _Frame, ticks: list[float], horizontal: bool) -> tuple[list[str], Callable[[float], float]]:
    """Grid lines and tick labels of the numeric axis; returns them and the value -> pixel function."""
    low, high = ticks[0], ticks[-1]
    span = (high - low) or 1.0
    parts = []
    if horizontal:
        def to_px(v: float) -> float:
            return frame.left + (v - low) / span * frame.plot_width

        for t in ticks:
            x = to_px(t)
            parts.append(f'<line x1="{x:.1f}" y1="{frame.top:.1f}" x2="{x:.1f}" '
                         f'y2="{frame.top + frame.plot_height:.1f}" stroke="#e3e3e3"/>')
            parts.append(f'<text x="{x:.1f}" y="{frame.top + frame.plot_height + FONT + 4:.1f}" '
                         f'text-anchor="middle" fill="#444">{escape(format_number(t))}</text>')
    else:
        def to_px(v: float) -> float:
            return frame.top + frame.plot_height - (v - low) / span * frame.plot_height

        for t in ticks:
            y = to_px(t)
            parts.append(f'<line x1="{frame.left:.1f}" y1="{y:.1f}" x2="{frame.left + frame.plot_width:.1f}" '
                         f'y2="{y:.1f}" stroke="#e3e3e3"/>')
            parts.append(f'<text x="{frame.left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end" '
                         f'fill="#444">{escape(format_number(t))}</text>')
    return parts, to_px


def _axes_lines(frame: _Frame) -> str:
    x0, y0 = frame.left, frame.top + frame.plot_height
    return (f'<path d="M{x0:.1f} {frame.top:.1f} V{y0:.1f} H{x0 + frame.plot_width:.1f}" '
            f'fill="none" stroke="#333"/>')


def _whisker(p_lo: float, p_hi: float, centre: float, horizontal: bool) -> str:
    """An interval as a line with end caps, across the value axis at a bar's centre."""
    cap = 3.0
    if horizontal:
        lines = [(p_lo, centre, p_hi, centre), (p_lo, centre - cap, p_lo, centre + cap),
                 (p_hi, centre - cap, p_hi, centre + cap)]
    else:
        lines = [(centre, p_lo, centre, p_hi), (centre - cap, p_lo, centre + cap, p_lo),
                 (centre - cap, p_hi, centre + cap, p_hi)]
    return "".join(f'<line x1="{a:.1f}" y1="{b:.1f}" x2="{c:.1f}" y2="{d:.1f}" stroke="#333" stroke-width="1.2"/>'
                   for a, b, c, d in lines)


def bar_chart(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    stacked: bool = False,
    horizontal: bool = False,
    width: float = 640,
    colours: Mapping[str, str] | None = None,
    errors: Mapping[str, Sequence[float]] | None = None,
) -> str:
    """Bars per category (non-negative values), one colour per series, grouped side by side or stacked.

    Horizontal charts put the categories on the left (long stage or reason names stay readable);
    `x_label` always names the horizontal axis and `y_label` the vertical one. `colours` overrides
    the palette for named series (padding in grey, say). `errors` (side-by-side bars only) gives a
    series' interval half-widths, drawn as whiskers around each bar's end.
    """
    if errors and stacked:
        raise ValueError("error whiskers need side-by-side bars")
    errors = errors or {}
    names = list(series)
    fills = [(colours or {}).get(name, colour(j)) for j, name in enumerate(names)]
    values = {name: [float(v) for v in series[name]] for name in names}
    if stacked:
        top = max((sum(values[n][i] for n in names) for i in range(len(categories))), default=0.0)
    else:
        top = max((v + (errors[n][i] if n in errors else 0.0) for n in names for i, v in enumerate(values[n])),
                  default=0.0)
    ticks = nice_ticks(0.0, top or 1.0)
    legend_h = legend_height(names, width)
    label_w = max((text_width(c) for c in categories), default=0.0)
    if horizontal:
        band = 22.0 if stacked or len(names) == 1 else 10.0 * len(names) + 8
        left = min(max(label_w + 34, 64), width * 0.45)  # room for the labels and the rotated axis title
        frame = _Frame(width, 64 + legend_h + band * len(categories) + 44, left, 40 + legend_h, 24, 44)
    else:
        rotate = label_w > (width - 80) / max(len(categories), 1) - 4
        bottom = 44 + (label_w * 0.7 if rotate else 0)
        frame = _Frame(width, 300 + legend_h + bottom - 44, 64, 40 + legend_h, 20, bottom)
    parts = _open(frame, title)
    if len(names) > 1:
        parts += _legend(names, width, 40 + FONT * 0.4, fills=fills)
    grid, to_px = _value_axis(frame, ticks, horizontal)
    parts += grid
    n_cat = max(len(categories), 1)
    band_len = (frame.plot_height if horizontal else frame.plot_width) / n_cat
    inner = min(band_len * 0.78, (1 if stacked else len(names)) * 72.0)  # a lone bar need not be a wall
    slot = inner if stacked else inner / max(len(names), 1)
    for i, category in enumerate(categories):
        start = (frame.top if horizontal else frame.left) + i * band_len + (band_len - inner) / 2
        base = 0.0
        for j, name in enumerate(names):
            value = values[name][i]
            lo, hi = (base, base + value) if stacked else (0.0, value)
            offset = start if stacked else start + j * slot
            if value > 0:
                p_lo, p_hi = to_px(lo), to_px(hi)
                rect = (p_lo, offset, p_hi - p_lo, slot) if horizontal else (offset, p_hi, slot, p_lo - p_hi)
                parts.append(
                    f'<rect class="mark" x="{rect[0]:.1f}" y="{rect[1]:.1f}" width="{max(rect[2], 0.8):.1f}" '
                    f'height="{max(rect[3], 0.8):.1f}" fill="{fills[j]}"><title>{escape(category)} / '
                    f"{escape(name)}: {format_number(value)}</title></rect>"
                )
            if name in errors and errors[name][i] > 0:
                parts.append(_whisker(to_px(max(value - errors[name][i], 0.0)), to_px(value + errors[name][i]),
                                      offset + slot / 2, horizontal))
            base += value if stacked else 0.0
        centre = start + inner / 2
        if horizontal:
            parts.append(f'<text x="{frame.left - 6:.1f}" y="{centre + 4:.1f}" text-anchor="end">'
                         f"{escape(category)}</text>")
        elif rotate:
            y = frame.top + frame.plot_height + 12
            parts.append(f'<text x="{centre:.1f}" y="{y:.1f}" text-anchor="end" '
                         f'transform="rotate(-40 {centre:.1f} {y:.1f})">{escape(category)}</text>')
        else:
            parts.append(f'<text x="{centre:.1f}" y="{frame.top + frame.plot_height + FONT + 4:.1f}" '
                         f'text-anchor="middle">{escape(category)}</text>')
    parts.append(_axes_lines(frame))
    parts += _axis_titles(frame, x_label, y_label)
    parts.append("</svg>")
    return "\n".join(parts)


def histogram(
    edges: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    thresholds: Mapping[str, float] | None = None,
    width: float = 640,
) -> str:
    """Counts over numeric bins (len(edges) = bins + 1), series overlaid half-transparent.

    Thresholds are drawn as dashed vertical lines labelled with their name and value.
    """
    names = list(series)
    top = max((float(v) for vs in series.values() for v in vs), default=0.0)
    ticks = nice_ticks(0.0, top or 1.0)
    legend_h = legend_height(names, width) + 14 * len(thresholds or {})  # threshold labels above the plot
    frame = _Frame(width, 300 + legend_h, 64, 40 + legend_h, 20, 44)
    parts = _open(frame, title)
    if len(names) > 1:
        parts += _legend(names, width, 40 + FONT * 0.4)
    grid, to_y = _value_axis(frame, ticks, horizontal=False)
    parts += grid
    lo, hi = float(edges[0]), float(edges[-1])
    span = (hi - lo) or 1.0

    def to_x(v: float) -> float:
        return frame.left + (v - lo) / span * frame.plot_width

    for t in nice_ticks(lo, hi, 5):
        if lo - 1e-9 <= t <= hi + 1e-9:
            parts.append(f'<text x="{to_x(t):.1f}" y="{frame.top + frame.plot_height + FONT + 4:.1f}" '
                         f'text-anchor="middle" fill="#444">{escape(format_number(t))}</text>')
    opacity = 1.0 if len(names) == 1 else 0.55
    for j, name in enumerate(names):
        for i, count in enumerate(series[name]):
            if count <= 0:
                continue
            x0, x1 = to_x(float(edges[i])), to_x(float(edges[i + 1]))
            y = to_y(float(count))
            parts.append(
                f'<rect class="mark" x="{x0 + 0.5:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 1, 0.8):.1f}" '
                f'height="{max(frame.top + frame.plot_height - y, 0.8):.1f}" fill="{colour(j)}" '
                f'fill-opacity="{opacity}"><title>{escape(name)} [{edges[i]:.3g}, {edges[i + 1]:.3g}): '
                f"{format_number(float(count))}</title></rect>"
            )
    for k, (name, value) in enumerate((thresholds or {}).items()):
        x = to_x(value)
        parts.append(f'<line x1="{x:.1f}" y1="{frame.top:.1f}" x2="{x:.1f}" y2="{frame.top + frame.plot_height:.1f}" '
                     f'stroke="#222" stroke-width="1.5" stroke-dasharray="5 3"/>')
        anchor = "end" if x > frame.left + frame.plot_width * 0.7 else "start"
        dx = -4 if anchor == "end" else 4
        parts.append(f'<text x="{x + dx:.1f}" y="{frame.top - 4 - k * 14:.1f}" text-anchor="{anchor}" '
                     f'fill="#222">{escape(name)} = {value:.3g}</text>')
    parts.append(_axes_lines(frame))
    parts += _axis_titles(frame, x_label, y_label)
    parts.append("</svg>")
    return "\n".join(parts)


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    dashed: Sequence[str] = (),
    width: float = 640,
) -> str:
    """One polyline per series of (x, y) points; short series also get point markers.

    Series named in `dashed` are drawn dashed (validation next to training, say).
    """
    names = [n for n in series if series[n]]
    xs = [p[0] for n in names for p in series[n]]
    ys = [p[1] for n in names for p in series[n]]
    x_ticks = nice_ticks(min(xs, default=0.0), max(xs, default=1.0))
    y_ticks = nice_ticks(min(ys, default=0.0), max(ys, default=1.0))
    styles = ["6 4" if n in dashed else "none" for n in names]
    legend_h = legend_height(names, width)
    frame = _Frame(width, 300 + legend_h, 64, 40 + legend_h, 20, 44)
    parts = _open(frame, title)
    if len(names) > 1:
        parts += _legend(names, width, 40 + FONT * 0.4, styles)
    grid, to_y = _value_axis(frame, y_ticks, horizontal=False)
    parts += grid
    x_grid, to_x = _value_axis(frame, x_ticks, horizontal=True)
    parts += x_grid
    for j, name in enumerate(names):
        points = " ".join(f"{to_x(x):.1f},{to_y(y):.1f}" for x, y in series[name])
        parts.append(f'<polyline class="mark" points="{points}" fill="none" stroke="{colour(j)}" stroke-width="2" '
                     f'stroke-dasharray="{styles[j]}"><title>{escape(name)}</title></polyline>')
        if len(series[name]) <= 40:
            for x, y in series[name]:
                parts.append(f'<circle class="mark" cx="{to_x(x):.1f}" cy="{to_y(y):.1f}" r="2.8" '
                             f'fill="{colour(j)}"><title>{escape(name)} at {format_number(x)}: {y:.4g}</title>'
                             f"</circle>")
    parts.append(_axes_lines(frame))
    parts += _axis_titles(frame, x_label, y_label)
    parts.append("</svg>")
    return "\n".join(parts)
