"""Template filters of the metrics dashboard and panel: one way to write a duration, a rate, a change.

{% load metrics_format %}
{{ s.p95_ms|duration }}           -> "85 ms", "1.2 s", "3 min 4 s", "—" for none
{{ s.throughput_per_hour|rate }}  -> "4.5/h"
{{ s.elapsed_hours|hours_span }}  -> "24 h", "7 d", "25 min"
{{ s.trend.count_change_pct|signed:"%" }} -> "+12.5%", "−3%", "0%"
"""

from __future__ import annotations

from django import template

from ..charts import format_ms, format_rate, format_span

register = template.Library()


@register.filter
def duration(value) -> str:
    return format_ms(None if value in (None, "") else float(value))


@register.filter
def rate(value) -> str:
    return format_rate(None if value in (None, "") else float(value))


@register.filter
def hours_span(value) -> str:
    return "—" if value in (None, "") else format_span(float(value) * 3600)


@register.filter
def signed(value, suffix: str = "") -> str:
    """A change with its sign (and a typographic minus); whole numbers lose their ".0"."""
    if value in (None, ""):
        return "—"
    number = float(value)
    text = f"{abs(number):.1f}".removesuffix(".0")
    sign = "+" if number > 0 else "−" if number < 0 else ""
    return f"{sign}{text}{suffix}"
