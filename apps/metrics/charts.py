"""Small server-rendered SVG charts: lines over time, stacked bars over time.

No JavaScript and no style attributes (the CSP forbids inline styles): colours come
from CSS classes in static/css/metrics.css; SVG presentation attributes are used
for geometry only. Every piece of text is XML-escaped. Long series are downsampled
for drawing (min and max per pixel column), so 10,000 points draw as fast as 600.

Time runs along x over the range actually shown (`domain`: the range, its end capped
at now). A bucket cut by either end is drawn over the part inside the range only, so a
partial bucket shows as a narrower, lighter bar holding what really happened in it.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from django.utils.safestring import SafeString, mark_safe

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
UTC = ZoneInfo("UTC")

WIDTH = 600
HEIGHT = 240
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_BOTTOM = 58, 14, 30
TITLE_HEIGHT, LEGEND_ROW = 20, 15
MAX_DRAWN_POINTS = 600
CHAR_WIDTH = 6.0  # average advance of a 10 px legend glyph, to lay legends out without a font


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
    value: float | None  # None: a band over the whole plot height (an anomalous hour)
    label: str
    until: datetime | None = None  # a band's end (default: a thin band at `at`)


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
    tz: tzinfo | None = None
    top: float = TITLE_HEIGHT + LEGEND_ROW + 8
    right: float = MARGIN_RIGHT
    parts: list[str] = field(default_factory=list)

    def x(self, t: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return MARGIN_LEFT + (t - self.x0) / span * (self.width - MARGIN_LEFT - self.right)

    def y(self, v: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.height - MARGIN_BOTTOM - (v - self.y0) / span * (self.height - self.top - MARGIN_BOTTOM)

    @property
    def bottom(self) -> float:
        return self.height - MARGIN_BOTTOM

    @property
    def plot_right(self) -> float:
        return self.width - self.right


#
# Numbers and labels
#


def format_ms(value: float | None) -> str:
    """A duration for people: "0.42 ms", "85 ms", "1.2 s", "42 s", "3 min 4 s", "2 h 5 min",
    "30 h", "3 d 4 h"; "—" for none. The one formatter of durations on the dashboard and the panel
    (also the `duration` template filter)."""
    if value is None:
        return "—"
    value = float(value)
    if value < 0:
        return "−" + format_ms(-value)
    if value == 0:
        return "0 ms"
    if value < 0.01:
        return "<0.01 ms"
    if value < 1:
        return f"{value:.2f} ms"
    if round(value) < 1000:
        return f"{value:.0f} ms"
    seconds = value / 1000
    if round(seconds, 1) < 10:
        return f"{seconds:.1f} s"
    if round(seconds) < 60:
        return f"{seconds:.0f} s"
    total = round(seconds)
    if total < 3600:
        minutes, secs = divmod(total, 60)
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    total_minutes = round(seconds / 60)
    if total_minutes < 48 * 60:
        hours, minutes = divmod(total_minutes, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    total_hours = round(seconds / 3600)
    days, hours = divmod(total_hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def format_span(seconds: float) -> str:
    """A length of time in words, for "38 runs in 2 h 5 min": whole minutes or more, else seconds."""
    if seconds < 60:
        return f"{max(0, round(seconds))} s"
    return format_ms(round(seconds / 60) * 60_000)


def format_rate(per_hour: float | None) -> str:
    """Runs per hour with a precision that suits the size: "120/h", "4.5/h", "0.25/h"."""
    if per_hour is None:
        return "—"
    if per_hour >= 100:
        return f"{per_hour:.0f}/h"
    if per_hour >= 10:
        return f"{per_hour:.1f}/h".replace(".0/h", "/h")
    if per_hour >= 0.1:
        return f"{per_hour:.2f}".rstrip("0").rstrip(".") + "/h"
    return f"{per_hour:.3f}".rstrip("0").rstrip(".") + "/h"


def nice_ticks(lo: float, hi: float, count: int = 5, *, integer: bool = False) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5, 5 × 10^n steps; whole steps when `integer`)."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(
        m * magnitude
        for m in (1, 2, 2.5, 5, 10)
        if m * magnitude >= raw and not (integer and m == 2.5 and magnitude < 10)
    )
    if integer:
        step = max(1, round(step))
    start = math.floor(lo / step) * step
    ticks: list[float] = []
    value = start
    while value <= hi + step * 0.5 and len(ticks) < 50:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 10))
    return ticks


# Steps of a duration axis, in ms: whole multiples of the unit they are labelled in.
_DURATION_STEPS = (
    [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500]
    + [s * 1000 for s in (1, 2, 5, 10, 15, 20, 30)]
    + [m * 60_000 for m in (1, 2, 5, 10, 15, 20, 30)]
    + [h * 3_600_000 for h in (1, 2, 3, 6, 12, 24, 48, 96, 168)]
)


def duration_ticks(hi: float, count: int = 5) -> tuple[list[float], str]:
    """Ticks from 0 covering `hi` ms at a step people count in (250 ms, 5 s, 15 min…), and
    the unit they are labelled in ("ms", "s", "min", "h")."""
    if hi < 1:
        return nice_ticks(0, hi or 1, count), "ms"
    step: float | None = next((s for s in _DURATION_STEPS if hi / s <= count), None)
    if step is None:
        step = nice_ticks(0, hi / 3_600_000, count)[1] * 3_600_000
    unit = "ms" if step < 1000 else "s" if step < 60_000 else "min" if step < 3_600_000 else "h"
    n = max(1, math.ceil(hi / step - 1e-9))
    return [i * step for i in range(n + 1)], unit


def _duration_tick_label(value: float, unit: str) -> str:
    if value == 0:
        return "0"
    scale = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000}[unit]
    return f"{value / scale:g} {unit}"


def _tick_label(value: float, unit: str, duration_unit: str) -> str:
    if unit == "ms":
        return _duration_tick_label(value, duration_unit)
    if unit == "%":
        return f"{value:.0f}%"
    return f"{value:g}"


def _value_label(value: float, unit: str) -> str:
    if unit == "ms":
        return format_ms(value)
    if unit == "%":
        return f"{value:.0f}%"
    return f"{value:g}"


def _local(moment: datetime, tz) -> datetime:
    return moment.astimezone(tz or UTC)


def _day_label(moment: datetime) -> str:
    return f"{moment:%b} {moment.day}"


def span_label(start: datetime, end: datetime, tz=None) -> str:
    """ "Nov 23 14:00–15:00", "Nov 23", "Nov 16–22", "Nov 2026": a bucket for a tooltip."""
    a, b = _local(start, tz), _local(end, tz)
    whole_days = a.hour == a.minute == b.hour == b.minute == 0
    if whole_days and b.date() - a.date() == timedelta(days=1):
        return _day_label(a)
    if whole_days and a.day == 1 and b.day == 1 and (b.month - a.month) % 12 == 1:
        return f"{a:%b %Y}"
    if whole_days:
        last = b - timedelta(days=1)
        return f"{_day_label(a)}–{last.day if last.month == a.month else _day_label(last)}"
    if a.date() == b.date() or (b - a <= timedelta(days=1) and b.hour == b.minute == 0):
        return f"{_day_label(a)} {a:%H:%M}–{b:%H:%M}"
    return f"{_day_label(a)} {a:%H:%M} – {_day_label(b)} {b:%H:%M}"


# Steps of a time axis: (seconds, kind) with kind "sub" (within a day), "day" or "month".
_TIME_STEPS = [(s, "sub") for s in (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)] + [
    (86400, "day"),
    (2 * 86400, "day"),
    (7 * 86400, "day"),
    (14 * 86400, "day"),
    (1, "month"),
    (3, "month"),
    (6, "month"),
    (12, "month"),
]


def time_ticks(start: datetime, end: datetime, tz=None, max_ticks: int = 7) -> list[tuple[datetime, str]]:
    """Ticks at round local times inside [start, end] (every 10 min, 4 h, Monday, 1st of the
    month…), with labels: "14:00", a date at midnight ("Nov 23"), "Nov 2026" for months."""
    tz = tz or UTC
    lo, hi = _local(start, tz), _local(end, tz)
    for step, kind in _TIME_STEPS:
        ticks = _ticks_of(lo, hi, step, kind, tz)
        if len(ticks) <= max_ticks:
            break
    out = []
    for t in ticks:
        if kind == "month":
            out.append((t, f"{t:%b %Y}" if t.month == 1 or len(ticks) < 4 else f"{t:%b}"))
        elif kind == "day" or (t.hour == 0 and t.minute == 0):
            out.append((t, _day_label(t)))
        else:
            out.append((t, f"{t:%H:%M}"))
    return out


def _ticks_of(lo: datetime, hi: datetime, step: int, kind: str, tz) -> list[datetime]:
    out: list[datetime] = []
    if kind == "month":
        year, month = lo.year, lo.month
        while len(out) < 100:
            t = datetime(year, month, 1, tzinfo=tz)
            if t > hi:
                break
            if t >= lo and (year * 12 + month - 1) % step == 0:
                out.append(t)
            month += 1
            if month > 12:
                year, month = year + 1, 1
        return out
    day = lo.date()
    while day <= hi.date() and len(out) < 100:
        if kind == "day":
            days = step // 86400
            keep = day.weekday() == 0 if days == 7 else (day.toordinal() - date(2000, 1, 3).toordinal()) % days == 0
            if keep:
                t = datetime(day.year, day.month, day.day, tzinfo=tz)
                if lo <= t <= hi:
                    out.append(t)
        else:
            for second in range(0, 86400, step):
                t = datetime(day.year, day.month, day.day, second // 3600, second // 60 % 60, tzinfo=tz)
                if lo <= t <= hi:
                    out.append(t)
                if len(out) >= 100:
                    break
        day += timedelta(days=1)
    return out


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
    chosen = {
        0,
        len(bucket) - 1,
        min(range(len(bucket)), key=lambda i: bucket[i][1]),
        max(range(len(bucket)), key=lambda i: bucket[i][1]),
    }
    return [bucket[i] for i in sorted(chosen)]


#
# Frame drawing
#


def _legend_rows(items: list[tuple[str, str]], width: int) -> list[list[tuple[str, str, float]]]:
    """Legend entries laid out left to right under the title, wrapping at the chart's width."""
    rows: list[list[tuple[str, str, float]]] = [[]]
    x: float = MARGIN_LEFT
    for name, css in items:
        item_width = 14 + CHAR_WIDTH * len(name) + 12
        if rows[-1] and x + item_width > width - MARGIN_RIGHT:
            rows.append([])
            x = MARGIN_LEFT
        rows[-1].append((name, css, x))
        x += item_width
    return rows if rows[0] else []


def _open(frame: _Frame, title: str, desc: str, legend: Sequence[tuple[str, str]] = ()) -> None:
    rows = _legend_rows(list(legend), frame.width)
    frame.top = TITLE_HEIGHT + LEGEND_ROW * max(1, len(rows)) + 8
    frame.parts.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {frame.width} {frame.height}" '
        f'role="img" aria-label="{esc(title)}" preserveAspectRatio="xMidYMid meet">'
        f"<title>{esc(title)}</title><desc>{esc(desc)}</desc>"
        f'<text class="chart-title" x="{MARGIN_LEFT}" y="14">{esc(title)}</text>'
    )
    for i, row in enumerate(rows):
        y = TITLE_HEIGHT + LEGEND_ROW * i
        for name, css, x in row:
            frame.parts.append(f'<rect class="{esc(css)} legend-key" x="{x:.0f}" y="{y:.0f}" width="10" height="10"/>')
            frame.parts.append(f'<text class="legend" x="{x + 14:.0f}" y="{y + 9:.0f}">{esc(name)}</text>')


def _axes(frame: _Frame, y_ticks: list[float], unit: str, duration_unit: str = "ms") -> None:
    for value in y_ticks:
        y = frame.y(value)
        frame.parts.append(f'<line class="grid" x1="{MARGIN_LEFT}" x2="{frame.plot_right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        frame.parts.append(
            f'<text class="tick" x="{MARGIN_LEFT - 6}" y="{y + 3.5:.1f}" '
            f'text-anchor="end">{esc(_tick_label(value, unit, duration_unit))}</text>'
        )
    frame.parts.append(
        f'<line class="axis" x1="{MARGIN_LEFT}" x2="{frame.plot_right}" y1="{frame.bottom}" y2="{frame.bottom}"/>'
    )
    frame.parts.append(
        f'<line class="axis" x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT}" y1="{frame.top}" y2="{frame.bottom}"/>'
    )
    start = datetime.fromtimestamp(frame.x0, tz=frame.tz or UTC)
    end = datetime.fromtimestamp(frame.x1, tz=frame.tz or UTC)
    max_ticks = max(2, int((frame.plot_right - MARGIN_LEFT) // 70))
    for moment, label in time_ticks(start, end, frame.tz, max_ticks):
        x = frame.x(moment.timestamp())
        anchor = "end" if x > frame.plot_right - 18 else "start" if x < MARGIN_LEFT + 18 else "middle"
        frame.parts.append(
            f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" y1="{frame.bottom}" y2="{frame.bottom + 4}"/>'
        )
        frame.parts.append(
            f'<text class="tick" x="{x:.1f}" y="{frame.bottom + 15}" text-anchor="{anchor}">{esc(label)}</text>'
        )


def _bands(frame: _Frame, markers: Sequence[Marker], min_width: float = 3.0) -> None:
    """Anomalous hours: a pink band over the hour (clipped to the plot), with its tooltip."""
    for marker in markers:
        if marker.value is not None:
            continue
        a = frame.x(max(marker.at.timestamp(), frame.x0))
        b = frame.x(min((marker.until or marker.at).timestamp(), frame.x1))
        if b - a < min_width:
            a, b = (a + b) / 2 - min_width / 2, (a + b) / 2 + min_width / 2
        frame.parts.append(
            f'<rect class="anomaly-band" x="{a:.1f}" y="{frame.top}" width="{b - a:.1f}" '
            f'height="{frame.bottom - frame.top:.1f}"><title>{esc(marker.label)}</title></rect>'
        )


def _empty(title: str, message: str, width: int = WIDTH, height: int = HEIGHT) -> SafeString:
    frame = _Frame(0, 1, 0, 1, width, height)
    _open(frame, title, message)
    frame.parts.append(
        f'<text class="chart-empty" x="{width / 2:.0f}" y="{height / 2:.0f}" '
        f'text-anchor="middle">{esc(message)}</text></svg>'
    )
    return mark_safe("".join(frame.parts))


def _domain(times: list[float], domain: tuple[datetime, datetime] | None) -> tuple[float, float]:
    if domain is not None:
        return domain[0].timestamp(), domain[1].timestamp()
    return min(times), max(times)


#
# Charts
#


def line_chart(
    series: list[Series],
    *,
    title: str,
    unit: str = "ms",
    markers: Sequence[Marker] = (),
    tz=None,
    domain: tuple[datetime, datetime] | None = None,
    empty: str = "No runs in this range.",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> SafeString:
    """Lines over time (x from `domain`, default the points' extent); gaps where a value is None;
    a lone point as a dot. Markers with a value: red dots; without: bands (anomalous hours)."""
    values = [v for s in series for _, v in s.points if v is not None]
    times = [t.timestamp() for s in series for t, _ in s.points]
    if not values or not times:
        return _empty(title, empty, width, height)
    in_view = [
        m
        for m in markers
        if domain is None or domain[0] <= m.at <= domain[1] or (m.until and m.until > domain[0] and m.at < domain[1])
    ]
    values += [m.value for m in in_view if m.value is not None]
    if unit == "ms":
        ticks, duration_unit = duration_ticks(max(values))
    else:
        ticks, duration_unit = nice_ticks(0, max(values)), "ms"
    x0, x1 = _domain(times, domain)
    frame = _Frame(x0, x1, 0, ticks[-1], width, height, tz)
    legend = [(s.name, s.css) for s in series]
    if any(m.value is not None for m in in_view):
        legend.append(("slow run", "anomaly"))
    if any(m.value is None for m in in_view):
        legend.append(("failure hour", "anomaly-band"))
    _open(frame, title, f"{', '.join(s.name for s in series)} over time", legend)
    _axes(frame, ticks, unit, duration_unit)
    _bands(frame, in_view)
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
                when = datetime.fromtimestamp(drawn[0][0], tz=tz or UTC)
                label = f"{s.name}: {_value_label(drawn[0][1], unit)} ({_day_label(when)} {when:%H:%M})"
                frame.parts.append(
                    f'<circle class="{esc(s.css)} dot" cx="{x:.1f}" cy="{y:.1f}" '
                    f'r="2.5"><title>{esc(label)}</title></circle>'
                )
                continue
            path = " ".join(f"{frame.x(t):.1f},{frame.y(v):.1f}" for t, v in drawn)
            frame.parts.append(f'<polyline class="{esc(s.css)} line" points="{path}"/>')
    for marker in in_view:
        if marker.value is not None:
            x, y = frame.x(marker.at.timestamp()), frame.y(min(marker.value, ticks[-1]))
            frame.parts.append(
                f'<circle class="anomaly" cx="{x:.1f}" cy="{y:.1f}" r="4"><title>{esc(marker.label)}</title></circle>'
            )
    frame.parts.append("</svg>")
    return mark_safe("".join(frame.parts))


def stacked_bars(
    times: Sequence[datetime],
    stacks: list[Stack],
    *,
    title: str,
    unit: str = "",
    tz=None,
    overlay: Series | None = None,
    overlay_unit: str = "%",
    width: int = WIDTH,
    height: int = HEIGHT,
    markers: Sequence[Marker] = (),
    ends: Sequence[datetime] | None = None,
    partial: Sequence[bool] | None = None,
    domain: tuple[datetime, datetime] | None = None,
    empty: str = "No runs in this range.",
) -> SafeString:
    """Bars over time, one stack per series (drawn bottom up); each bar spans [times[i], ends[i])
    (default: up to the next bar). `partial` bars (a bucket cut by the range or by now) are drawn
    lighter and say so. Optional line overlay on a 0-100 right scale. Values are counts."""
    if not times or not any(any(v for v in s.values) for s in stacks):
        return _empty(title, empty, width, height)
    n = len(times)
    starts = list(times)
    if ends is None:
        slot = (starts[-1] - starts[0]) / (n - 1) if n > 1 else timedelta(hours=1)
        ends = [starts[i + 1] if i + 1 < n else starts[i] + slot for i in range(n)]
    ends = list(ends)
    cut = list(partial) if partial is not None else [False] * n
    # Too many bars for the width: merge neighbours (sums) so each bar is at least 2 px.
    plot_width = width - MARGIN_LEFT - MARGIN_RIGHT
    group = max(1, math.ceil(n / (plot_width / 2)))
    if group > 1:
        starts, ends, cut = (
            starts[::group],
            [ends[min(i + group, n) - 1] for i in range(0, n, group)],
            [any(cut[i : i + group]) for i in range(0, n, group)],
        )
        stacks = [Stack(s.name, s.css, [sum(s.values[i : i + group]) for i in range(0, n, group)]) for s in stacks]
        n = len(starts)
    totals = [sum(s.values[i] for s in stacks) for i in range(n)]
    ticks = nice_ticks(0, max(totals) or 1, integer=True)
    x0, x1 = (domain[0].timestamp(), domain[1].timestamp()) if domain else (starts[0].timestamp(), ends[-1].timestamp())
    frame = _Frame(x0, x1, 0, ticks[-1], width, height, tz, right=(40 if overlay is not None else MARGIN_RIGHT))
    legend = [(s.name, s.css) for s in stacks if any(s.values)] + ([(overlay.name, overlay.css)] if overlay else [])
    if any(m.value is None for m in markers):
        legend.append(("failure hour", "anomaly-band"))
    if any(c and any(s.values[i] for s in stacks) for i, c in enumerate(cut)):
        legend.append(("lighter: partial bucket", "partial-key"))
    _open(frame, title, f"{', '.join(s.name for s in stacks)} per bucket", legend)
    _axes(frame, ticks, unit)
    _bands(frame, markers)
    for i in range(n):
        a, b = frame.x(max(starts[i].timestamp(), x0)), frame.x(min(ends[i].timestamp(), x1))
        gap = min(2.0, (b - a) * 0.15)
        x, bar_width = a + gap / 2, max(1.0, b - a - gap)
        when = span_label(starts[i], ends[i], tz) + (" (partial)" if cut[i] else "")
        base = 0.0
        for s in stacks:
            v = s.values[i]
            if not v:
                continue
            y_top, y_bottom = frame.y(base + v), frame.y(base)
            css = f"{s.css} partial" if cut[i] else s.css
            frame.parts.append(
                f'<rect class="{esc(css)}" x="{x:.1f}" y="{y_top:.1f}" width="{bar_width:.1f}" '
                f'height="{max(0.5, y_bottom - y_top):.1f}"><title>{esc(when)} · {esc(s.name)}: '
                f"{esc(_value_label(v, unit))}</title></rect>"
            )
            base += v
    if overlay is not None:
        scale = _Frame(frame.x0, frame.x1, 0, 100, width, height, top=frame.top, right=frame.right)
        for value in (0, 50, 100):
            frame.parts.append(
                f'<text class="tick overlay-tick" x="{frame.plot_right + 4}" '
                f'y="{scale.y(value) + 3.5:.1f}">{value}{esc(overlay_unit)}</text>'
            )
        pts = [(t.timestamp(), v) for t, v in overlay.points if v is not None]
        if len(pts) == 1:
            frame.parts.append(
                f'<circle class="{esc(overlay.css)} dot" cx="{frame.x(pts[0][0]):.1f}" '
                f'cy="{scale.y(pts[0][1]):.1f}" r="2.5"><title>{esc(overlay.name)}: '
                f"{pts[0][1]:.0f}{esc(overlay_unit)}</title></circle>"
            )
        elif pts:
            path = " ".join(f"{frame.x(t):.1f},{scale.y(v):.1f}" for t, v in downsample(pts, MAX_DRAWN_POINTS // 2))
            frame.parts.append(f'<polyline class="{esc(overlay.css)} line" points="{path}"/>')
    frame.parts.append("</svg>")
    return mark_safe("".join(frame.parts))
