"""Server-rendered SVG charts: no JavaScript, no external service, CSP-safe (classes, no style).

Each chart is a ``<figure>`` with an SVG (role="img", title and desc) and the same
numbers as a data table, so screen-reader and keyboard users get the data too.

    {% load charts %}
    {% line_chart series title="Assigned seats" x_label="Day" y_label="Seats" %}
    {% bar_chart points title="Spend by month" y_label="USD" %}

``series`` is either a list of (label, value) pairs or a list of
{"name": ..., "points": [(label, value), ...]} dicts sharing the same labels.
"""

from __future__ import annotations

import itertools
import math
from decimal import Decimal, InvalidOperation

from django import template
from django.utils import numberformat
from django.utils.formats import get_format, localize
from django.utils.html import format_html_join
from django.utils.text import slugify
from django.utils.translation import get_language

register = template.Library()

WIDTH, HEIGHT = 640, 260
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 16, 16, 36
MAX_X_LABELS = 7
MAX_SERIES = 6  # distinct colours in the stylesheet
_ids = itertools.count(1)

# The per-point markup (a dot per day and series, a table cell per day and series) is built here, not by the
# template engine: a year of three licenses is thousands of values, and resolving each through a template
# variable took most of the usage page's rendering. Values are localised and escaped as a template would.
_DOT = '<circle class="chart-dot" cx="{}" cy="{}" r="3"><title>{}{}: {}</title></circle>'
_ROW = '<tr><th scope="row">{}</th>{}</tr>'
_CELL = '<td class="num">{}</td>'


def _localizer():
    """``localize`` for one chart's values: the active language's number formats looked up once, not for each
    of thousands of numbers (per value they were most of the chart's cost)."""
    lang = get_language()
    decimal_sep, grouping, thousand_sep = (get_format(name, lang) for name in (
        "DECIMAL_SEPARATOR", "NUMBER_GROUPING", "THOUSAND_SEPARATOR"))

    def local(value):
        if isinstance(value, bool) or not isinstance(value, (Decimal, float, int)):
            return localize(value)
        return numberformat.format(value, decimal_sep, None, grouping, thousand_sep)

    return local


def _dots_html(name: str, dots: list[dict]):
    prefix = f"{name}, " if name else ""
    local = _localizer()
    return format_html_join("", _DOT, ((local(d["x"]), local(d["y"]), prefix, d["label"], local(d["value"]))
                                       for d in dots))


def _table_body(labels: list[str], series: list[dict]):
    local = _localizer()
    return format_html_join("", _ROW, (
        (label, format_html_join("", _CELL, ((local(s["raw"][i]) if i < len(s["raw"]) else "",) for s in series)))
        for i, label in enumerate(labels)))


def _number(value) -> float:
    try:
        number = float(Decimal(str(value)))
    except (InvalidOperation, TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def nice_max(value: float) -> float:
    """The smallest 1/2/2.5/5 x 10^n at or above ``value``, so gridlines land on round numbers."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.2f}".rstrip("0")


def _normalise(series) -> tuple[list[str], list[dict]]:
    series = list(series or [])
    if series and not isinstance(series[0], dict):
        series = [{"name": "", "points": series}]
    series = series[:MAX_SERIES]
    labels = [str(label) for label, _ in series[0]["points"]] if series else []
    normalised = []
    for s in series:
        raw = [value for _, value in s["points"]][: len(labels)]
        normalised.append({"name": str(s.get("name", "")), "raw": raw, "values": [_number(v) for v in raw]})
    return labels, normalised


def _y_axis(maximum: float) -> tuple[float, list[dict]]:
    top = nice_max(maximum)
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    ticks = []
    for i in range(5):
        value = top * i / 4
        ticks.append({"y": round(PAD_TOP + plot_h - plot_h * i / 4, 2), "label": _fmt(value)})
    return top, ticks


def _x_label_indexes(count: int) -> set[int]:
    if count <= MAX_X_LABELS:
        return set(range(count))
    step = (count - 1) / (MAX_X_LABELS - 1)
    return {round(i * step) for i in range(MAX_X_LABELS)}


def _describe(kind: str, title: str, labels: list[str], series: list[dict]) -> str:
    if not labels:
        return f"{kind} chart: no data."
    parts = [f"{kind} chart of {title or 'values'}, {len(labels)} points from {labels[0]} to {labels[-1]}."]
    for s in series:
        if s["values"]:
            name = f"{s['name']}: " if s["name"] else ""
            parts.append(f"{name}lowest {_fmt(min(s['values']))}, highest {_fmt(max(s['values']))}.")
    return " ".join(parts)


def _base(kind, title, labels, series, x_label, y_label, chart_id):
    chart_id = chart_id or f"chart-{slugify(title) or 'data'}-{next(_ids)}"
    return {
        "chart_id": chart_id,
        "title": title,
        "description": _describe(kind, title, labels, series),
        "labels": labels,
        "series": series,
        "x_label": x_label,
        "y_label": y_label,
        "width": WIDTH,
        "height": HEIGHT,
        "plot_left": PAD_LEFT,
        "plot_right": WIDTH - PAD_RIGHT,
        "plot_bottom": HEIGHT - PAD_BOTTOM,
        "label_y": HEIGHT - PAD_BOTTOM + 20,
        "table_body": _table_body(labels, series),
        "empty": not labels,
    }


@register.inclusion_tag("components/chart_line.html")
def line_chart(series, title="", x_label="", y_label="", chart_id=""):
    labels, series = _normalise(series)
    top, ticks = _y_axis(max((v for s in series for v in s["values"]), default=0))
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    count = len(labels)
    xs = [PAD_LEFT + (plot_w * i / (count - 1) if count > 1 else plot_w / 2) for i in range(count)]
    shown = _x_label_indexes(count)
    for index, s in enumerate(series):
        s["class"] = f"series-{index}"
        s["dots"] = [
            {
                "x": round(xs[i], 2),
                "y": round(PAD_TOP + plot_h - plot_h * max(v, 0) / top, 2),
                "label": labels[i],
                "value": s["raw"][i],
            }
            for i, v in enumerate(s["values"])
        ]
        s["points_attr"] = " ".join(f"{d['x']},{d['y']}" for d in s["dots"])
        s["dots_html"] = _dots_html(s["name"], s["dots"])
    context = _base("Line", title, labels, series, x_label, y_label, chart_id)
    context.update(
        {
            "ticks": ticks,
            "x_labels": [{"x": round(xs[i], 2), "label": labels[i]} for i in sorted(shown)],
            "legend": len(series) > 1,
        }
    )
    return context


@register.inclusion_tag("components/chart_bar.html")
def bar_chart(points, title="", x_label="", y_label="", chart_id=""):
    labels, series = _normalise(points)
    values = series[0]["values"] if series else []
    raw = series[0]["raw"] if series else []
    top, ticks = _y_axis(max(values, default=0))
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    count = len(labels)
    slot = plot_w / count if count else plot_w
    bar_w = max(2.0, slot * 0.7)
    shown = _x_label_indexes(count)
    bars = []
    for i, value in enumerate(values):
        height = plot_h * max(value, 0) / top
        bars.append(
            {
                "x": round(PAD_LEFT + slot * i + (slot - bar_w) / 2, 2),
                "y": round(PAD_TOP + plot_h - height, 2),
                "width": round(bar_w, 2),
                "height": round(height, 2),
                "label": labels[i],
                "value": raw[i],
                "center": round(PAD_LEFT + slot * i + slot / 2, 2),
                "show_label": i in shown,
            }
        )
    context = _base("Bar", title, labels, series, x_label, y_label, chart_id)
    context.update({"ticks": ticks, "bars": bars})
    return context
