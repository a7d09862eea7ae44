"""The dashboard's daily chart, drawn on the server as inline SVG (no script, nothing from another host)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from config.money import money_display

WIDTH = 640
HEIGHT = 180
LEFT = 80  # room for the y-axis labels
RIGHT = 26  # room for the last date label
TOP = 10
BOTTOM = 24
SERIES = [("charged", "Charged", "#417690"), ("granted", "Granted", "#5b9a4a"), ("refunded", "Refunded", "#c4623a")]


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    colour: str
    points: str  # the polyline's "x,y x,y ..."
    dots: list[dict]


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    series: list[Series]
    grid: list[dict]  # y and label of each horizontal rule
    ticks: list[dict]  # x and label of each dated tick
    label: str  # the chart as a sentence, for screen readers
    clipped: bool  # some day's grants exceed the scale and are drawn at the top


def daily_chart(days: list, credit_type) -> Chart:
    """Charged, granted and refunded per day, as polylines on a shared scale (0 at the bottom).

    The scale is set by charges and refunds, the daily trend staff read; a
    day's grants above it (a large top-up) are drawn at the top edge, and
    the caption says so (each point's exact value is in its tooltip).
    """
    spend = max((max(p.charged, p.refunded) for p in days), default=Decimal(0))
    top = spend or max((p.granted for p in days), default=Decimal(0)) or Decimal(1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(days) - 1, 1)

    def y(value: Decimal) -> float:
        return round(TOP + plot_h - float(min(value, top) / top) * plot_h, 1)

    series = []
    for key, label, colour in SERIES:
        dots = [
            {
                "x": round(LEFT + i * step, 1),
                "y": y(getattr(p, key)),
                "title": f"{p.day:%d %b}: {label.lower()} {money_display(getattr(p, key), credit_type)}",
            }
            for i, p in enumerate(days)
        ]
        series.append(Series(key, label, colour, " ".join(f"{d['x']},{d['y']}" for d in dots), dots))
    grid = [
        {"y": y(top * f), "label": money_display(top * f, credit_type)}
        for f in (Decimal(0), Decimal("0.5"), Decimal(1))
    ]
    ticks = [
        {"x": round(LEFT + i * step, 1), "label": f"{p.day:%d %b}"}
        for i, p in enumerate(days)
        if i % 7 == (len(days) - 1) % 7
    ]
    total = {key: sum((getattr(p, key) for p in days), Decimal(0)) for key, _, _ in SERIES}
    label = (
        f"Daily {credit_type.name}: "
        + ", ".join(f"{name.lower()} {money_display(total[key], credit_type)}" for key, name, _ in SERIES)
        + f" over {len(days)} days"
    )
    return Chart(WIDTH, HEIGHT, series, grid, ticks, label, clipped=any(p.granted > top for p in days))


def chart_svg(chart: Chart) -> SafeString:
    """The chart as inline SVG markup, every value escaped.

    Built here rather than in the template: ninety points with a tooltip
    each are a few hundred template nodes, the larger part of the
    dashboard's rendering time.
    """
    grid = format_html_join(
        "",
        '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#ddd"/>'
        '<text x="{}" y="{}" dy="4" text-anchor="end" font-size="10" fill="#666">{}</text>',
        ((LEFT, chart.width, g["y"], g["y"], LEFT - 6, g["y"], g["label"]) for g in chart.grid),
    )
    ticks = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="middle" font-size="10" fill="#666">{}</text>',
        ((t["x"], chart.height - 6, t["label"]) for t in chart.ticks),
    )
    series = format_html_join(
        "",
        '<g class="dash-series" data-series="{}">'
        '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>{}</g>',
        (
            (
                s.key,
                s.points,
                s.colour,
                format_html_join(
                    "",
                    '<circle cx="{}" cy="{}" r="2.5" fill="{}"><title>{}</title></circle>',
                    ((d["x"], d["y"], s.colour, d["title"]) for d in s.dots),
                ),
            )
            for s in chart.series
        ),
    )
    return format_html(
        '<svg width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="{}" '
        'xmlns="http://www.w3.org/2000/svg">{}{}{}</svg>',
        chart.width,
        chart.height,
        chart.width,
        chart.height,
        chart.label,
        grid,
        ticks,
        series,
    )
