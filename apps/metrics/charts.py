"""Small server-rendered SVG charts: lines over time, stacked bars over time.

No JavaScript and no style attributes (the CSP forbids inline styles): colours come
from CSS classes in static/css/metrics.css; SVG presentation attributes are used
for geometry only. Every piece of text is XML-escaped. Long series are downsampled
for drawing (min and max per pixel column), so 10,000 points draw as fast as 600.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.utils.safestring import SafeString, mark_safe

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")

WIDTH = 720
HEIGHT = 220
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 28, 36
MAX_DRAWN_POINTS = 600


def esc(value: object) -> str:
    return html.escape(_INVALID_XML.sub("\ufffd", str(value)), quote=True)


@dataclass
class Series:
    name: str
    css: str  # a class from metrics.css: s1 … s6, ok, fail, f1 … f6
    points: list[tuple[datetime, float | None]]


@dataclass
class Marker:
    at: datetime
    value: float | None  # None: a vertical band over the whole plot (an anomalous hour)
    label: str


@dataclass
class Stack:
    name: str
    css: str
    values: list[float]


@dataclass
class _Frame:
    x0: float
    x1: float
    y0: float
    y1: float
    width: int = WIDTH
    height: int = HEIGHT
    tz: object = None
    parts: list[str] = field(default_factory=list)

    def x(self, t: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return MARGIN_LEFT + (t - self.x0) / span * (self.width - MARGIN_LEFT - MARGIN_RIGHT)

    def y(self, v: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.height - MARGIN_BOTTOM - (v - self.y0) / span * (self.height - MARGIN_TOP - MARGIN_BOTTOM)


#
# Numbers and labels
#


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5, 5 × 10^n steps)."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    value = start
    while value <= hi + step * 0.5 and len(ticks) < 50:
        ticks.append(round(value, 10))
        value += step
    return ticks


def format_ms(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{value:.2f} ms"
    if value < 1000:
        return f"{value:.0f} ms"
    if value < 60_000:
        return f"{value / 1000:.1f} s"
    if value < 3_600_000:
        return f"{value / 60_000:.1f} min"
    return f"{value / 3_600_000:.1f} h"


def _format_value(value: float, unit: str) -> str:
    if unit == "ms":
        return format_ms(value)
    if unit == "%":
        return f"{value:.0f}%"
    return f"{value:g}"


def _time_label(moment: datetime, span_seconds: float) -> str:
    if span_seconds <= 2 * 3600:
        return moment.strftime("%H:%M")
    if span_seconds <= 2 * 86400:
        return moment.strftime("%d %H:%M")
    if span_seconds <= 120 * 86400:
        return moment.strftime("%b %d")
    return moment.strftime("%b %Y")


def downsample(points: Sequence[tuple[float, float]], columns: int) -> list[tuple[float, float]]:
    """Keep the first, min, max and last point of each of `columns` equal time slices."""
    if len(points) <= columns * 2:
        return list(points)
    x0, x1 = points[0][0], points[-1][0]
    width = (x1 - x0) / columns or 1.0
    out: list[tuple[float, float]] = []
    bucket: list[tuple[float, float]] = []
    current = 0
    for point in points:
        col = min(int((point[0] - x0) / width), columns - 1)
        if col != current and bucket:
            out.extend(_keep(bucket))
            bucket = []
        current = col
        bucket.append(point)
    if bucket:
        out.extend(_keep(bucket))
    return out


def _keep(bucket: list[tuple[float, float]]) -> list[tuple[float, float]]:
    chosen = {0, len(bucket) - 1, min(range(len(bucket)), key=lambda i: bucket[i][1]), max(range(len(bucket)), key=lambda i: bucket[i][1])}
    return [bucket[i] for i in sorted(chosen)]


#
# Frame drawing
#


def _open(frame: _Frame, title: str, desc: str) -> None:
    frame.parts.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {frame.width} {frame.height}" role="img" aria-labelledby="t d" preserveAspectRatio="xMidYMid meet">'
        f"<title>{esc(title)}</title><desc>{esc(desc)}</desc>"
        f'<text class="chart-title" x="{MARGIN_LEFT}" y="16">{esc(title)}</text>'
    )


def _axes(frame: _Frame, y_ticks: list[float], unit: str, x_ticks: list[tuple[float, str]]) -> None:
    bottom = frame.height - MARGIN_BOTTOM
    right = frame.width - MARGIN_RIGHT
    for value in y_ticks:
        y = frame.y(value)
        frame.parts.append(f'<line class="grid" x1="{MARGIN_LEFT}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        frame.parts.append(f'<text class="tick" x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{esc(_format_value(value, unit))}</text>')
    frame.parts.append(f'<line class="axis" x1="{MARGIN_LEFT}" x2="{right}" y1="{bottom}" y2="{bottom}"/>')
    frame.parts.append(f'<line class="axis" x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT}" y1="{MARGIN_TOP}" y2="{bottom}"/>')
    for x, label in x_ticks:
        frame.parts.append(f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}"/>')
        frame.parts.append(f'<text class="tick" x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{esc(label)}</text>')


def _x_ticks(frame: _Frame, count: int = 6) -> list[tuple[float, str]]:
    span = frame.x1 - frame.x0
    if span <= 0:
        return [(frame.x(frame.x0), _time_label(datetime.fromtimestamp(frame.x0, tz=frame.tz), 0))]
    out = []
    for i in range(count + 1):
        t = frame.x0 + span * i / count
        out.append((frame.x(t), _time_label(datetime.fromtimestamp(t, tz=frame.tz), span)))
    return out


def _legend(frame: _Frame, items: list[tuple[str, str]]) -> None:
    x = frame.width - MARGIN_RIGHT
    for name, css in reversed(items):
        width = 14 + 7 * len(name)
        x -= width + 12
        frame.parts.append(f'<rect class="{esc(css)} legend-key" x="{x:.0f}" y="8" width="10" height="10"/>')
        frame.parts.append(f'<text class="legend" x="{x + 14:.0f}" y="17">{esc(name)}</text>')


def _empty(title: str, message: str = "No runs in this range.", width: int = WIDTH, height: int = HEIGHT) -> SafeString:
    frame = _Frame(0, 1, 0, 1, width, height)
    _open(frame, title, message)
    frame.parts.append(f'<text class="chart-empty" x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle">{esc(message)}</text></svg>')
    return mark_safe("".join(frame.parts))


#
# Charts
#


def line_chart(series: list[Series], *, title: str, unit: str = "ms", markers: Sequence[Marker] = (), tz=None, width: int = WIDTH, height: int = HEIGHT) -> SafeString:
    """Lines over time; gaps where a value is None; markers as red dots (or bands when value is None)."""
    values = [v for s in series for _, v in s.points if v is not None] + [m.value for m in markers if m.value is not None]
    times = [t.timestamp() for s in series for t, _ in s.points]
    if not values or not times:
        return _empty(title, width=width, height=height)
    ticks = nice_ticks(0, max(values))
    frame = _Frame(min(times), max(times), 0, ticks[-1], width, height, tz)
    _open(frame, title, f"{', '.join(s.name for s in series)} over time")
    _axes(frame, ticks, unit, _x_ticks(frame))
    for marker in markers:
        if marker.value is None:
            x = frame.x(marker.at.timestamp())
            frame.parts.append(f'<rect class="anomaly-band" x="{x - 3:.1f}" y="{MARGIN_TOP}" width="6" height="{height - MARGIN_TOP - MARGIN_BOTTOM}"><title>{esc(marker.label)}</title></rect>')
    columns = max(50, width - MARGIN_LEFT - MARGIN_RIGHT)
    for s in series:
        segments: list[list[tuple[float, float]]] = [[]]
        for t, v in s.points:
            if v is None:
                if segments[-1]:
                    segments.append([])
                continue
            segments[-1].append((t.timestamp(), v))
        for segment in segments:
            if not segment:
                continue
            drawn = downsample(segment, min(columns, MAX_DRAWN_POINTS // 2))
            if len(drawn) == 1:
                x, y = frame.x(drawn[0][0]), frame.y(drawn[0][1])
                frame.parts.append(f'<circle class="{esc(s.css)} dot" cx="{x:.1f}" cy="{y:.1f}" r="2.5"/>')
                continue
            path = " ".join(f"{frame.x(t):.1f},{frame.y(v):.1f}" for t, v in drawn)
            frame.parts.append(f'<polyline class="{esc(s.css)} line" points="{path}"/>')
    for marker in markers:
        if marker.value is not None:
            x, y = frame.x(marker.at.timestamp()), frame.y(min(marker.value, ticks[-1]))
            frame.parts.append(f'<circle class="anomaly" cx="{x:.1f}" cy="{y:.1f}" r="4"><title>{esc(marker.label)}</title></circle>')
    _legend(frame, [(s.name, s.css) for s in series] + ([("anomaly", "anomaly")] if markers else []))
    frame.parts.append("</svg>")
    return mark_safe("".join(frame.parts))


def stacked_bars(times: Sequence[datetime], stacks: list[Stack], *, title: str, unit: str = "", tz=None, overlay: Series | None = None, overlay_unit: str = "%", width: int = WIDTH, height: int = HEIGHT, markers: Sequence[Marker] = ()) -> SafeString:
    """Bars over time, one stack per series (drawn bottom up), optional line overlay on a 0-100 right scale."""
    if not times or not any(any(v for v in s.values) for s in stacks):
        return _empty(title, width=width, height=height)
    n = len(times)
    # Too many bars for the width: merge neighbours (sums) so each bar is at least 2 px.
    plot_width = width - MARGIN_LEFT - MARGIN_RIGHT
    group = max(1, math.ceil(n / (plot_width / 2)))
    if group > 1:
        times = [times[i] for i in range(0, n, group)]
        stacks = [Stack(s.name, s.css, [sum(s.values[i:i + group]) for i in range(0, n, group)]) for s in stacks]
        n = len(times)
    totals = [sum(s.values[i] for s in stacks) for i in range(n)]
    ticks = nice_ticks(0, max(totals) or 1)
    t0 = times[0].timestamp()
    t1 = times[-1].timestamp() if n > 1 else t0 + 1
    slot = (t1 - t0) / max(n - 1, 1)
    frame = _Frame(t0 - slot / 2, t1 + slot / 2, 0, ticks[-1], width, height, tz)
    _open(frame, title, f"{', '.join(s.name for s in stacks)} per bucket")
    _axes(frame, ticks, unit, _x_ticks(frame))
    bar_width = max(1.0, plot_width / n * 0.8)
    for marker in markers:
        x = frame.x(marker.at.timestamp())
        frame.parts.append(f'<rect class="anomaly-band" x="{x - bar_width / 2 - 1:.1f}" y="{MARGIN_TOP}" width="{bar_width + 2:.1f}" height="{height - MARGIN_TOP - MARGIN_BOTTOM}"><title>{esc(marker.label)}</title></rect>')
    for i, moment in enumerate(times):
        x = frame.x(moment.timestamp()) - bar_width / 2
        base = 0.0
        for s in stacks:
            v = s.values[i]
            if not v:
                continue
            y_top, y_bottom = frame.y(base + v), frame.y(base)
            frame.parts.append(f'<rect class="{esc(s.css)}" x="{x:.1f}" y="{y_top:.1f}" width="{bar_width:.1f}" height="{max(0.5, y_bottom - y_top):.1f}"><title>{esc(s.name)}: {esc(_format_value(v, unit))}</title></rect>')
            base += v
    if overlay is not None:
        right = width - MARGIN_RIGHT
        scale = _Frame(frame.x0, frame.x1, 0, 100, width, height)
        pts = [(t.timestamp(), v) for t, v in overlay.points if v is not None]
        if pts:
            path = " ".join(f"{frame.x(t):.1f},{scale.y(v):.1f}" for t, v in downsample(pts, MAX_DRAWN_POINTS // 2))
            frame.parts.append(f'<polyline class="{esc(overlay.css)} line" points="{path}"/>')
            frame.parts.append(f'<text class="tick" x="{right}" y="{MARGIN_TOP - 4}" text-anchor="end">{esc(overlay.name)} (0–100{esc(overlay_unit)})</text>')
    _legend(frame, [(s.name, s.css) for s in stacks] + ([(overlay.name, overlay.css)] if overlay else []))
    frame.parts.append("</svg>")
    return mark_safe("".join(frame.parts))
