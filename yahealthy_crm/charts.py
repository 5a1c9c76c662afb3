"""Server-side SVG charts (pygal) for the staff pages: markup to inline in a template, nothing loaded
from the internet.

pygal adds a `<script>` with its configuration (and, by default, links its tooltip script from a CDN)
and comments naming its web site. The charts here pass `js=[]` and strip every script and comment
from the tree, so the SVG holds only shapes, text and an inline `<style>`; values are printed on the
chart instead of shown by tooltips. Labels and titles are escaped by the XML serializer.
"""

from __future__ import annotations

from collections.abc import Sequence

import pygal
from django.utils.safestring import SafeString, mark_safe
from pygal.style import Style

CHART_STYLE = Style(
    background="transparent",
    plot_background="#ffffff",
    foreground="#333333",
    foreground_strong="#222222",
    foreground_subtle="#888888",
    font_family="-apple-system, 'Segoe UI', system-ui, Roboto, 'Helvetica Neue', Arial, sans-serif",
    title_font_size=15,
    label_font_size=11,
    major_label_font_size=11,
    value_font_size=11,
    legend_font_size=12,
    colors=("#417690", "#c0392b", "#e67e22", "#27ae60", "#8e44ad", "#7f8c8d"),
    opacity=0.9,
    opacity_hover=1,
    transition="0ms",
)


def _without_scripts_and_comments(root):
    """pygal xml filter: drop <script> elements and comments (their text names pygal's web site)."""
    for parent in list(root.iter()):
        for child in list(parent):
            if not isinstance(child.tag, str) or child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return root


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _percent(value: float) -> str:
    return f"{value * 100:.0f} %"


def _style_with(colors: Sequence[str]) -> Style:
    return Style(**{**CHART_STYLE.to_dict(), "colors": tuple(colors)})


def _config(**options) -> dict:
    return {
        "style": CHART_STYLE,
        "js": [],  # no tooltip script from a CDN
        "disable_xml_declaration": True,  # inline in HTML
        "width": 560,
        "height": 280,
        "explicit_size": False,  # scales with its container (viewBox)
        "margin": 12,
        "print_values": True,
        "print_zeroes": False,
        "show_legend": False,
        "truncate_label": -1,
        **options,
    }


def _render(chart) -> SafeString:
    chart.add_xml_filter(_without_scripts_and_comments)
    return mark_safe(chart.render(is_unicode=True))  # noqa: S308 - pygal's serializer escapes every text


def bar_chart_svg(
    *,
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    colors: Sequence[str] | None = None,
    series_colors: Sequence[str] | None = None,
    stacked: bool = False,
    percent: bool = False,
    **options,
) -> SafeString:
    """Vertical bars, one series per entry of `series` (side by side, or `stacked`). `colors` colours
    the bars of a single series one by one (e.g. the churn bands), `series_colors` the series; `percent`
    shows values 0..1 as percentages."""
    config = _config(
        title=title,
        show_legend=len(series) > 1,
        legend_at_bottom=True,
        value_formatter=_percent if percent else _count,
        **options,
    )
    if percent:
        config["range"] = (0, 1)
    if series_colors:
        config["style"] = _style_with(series_colors)
    chart = (pygal.StackedBar if stacked else pygal.Bar)(**config)
    chart.x_labels = list(labels)
    for name, values in series.items():
        if colors and len(series) == 1:
            chart.add(name, [{"value": v, "color": c} for v, c in zip(values, colors, strict=False)])
        else:
            chart.add(name, list(values))
    return _render(chart)


def histogram_svg(*, title: str, bins: Sequence[tuple[int, float, float]], **options) -> SafeString:
    """A histogram from (count, start, end) bins."""
    chart = pygal.Histogram(**_config(title=title, value_formatter=_count, print_values=False, **options))
    chart.add("users", list(bins))
    return _render(chart)


def line_chart_svg(
    *, title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]], percent: bool = False, **options
) -> SafeString:
    """Lines over `labels` (None: no point); `percent` shows values 0..1 as percentages."""
    chart = pygal.Line(
        **_config(
            title=title,
            value_formatter=_percent if percent else _count,
            show_legend=len(series) > 1,
            legend_at_bottom=True,
            x_label_rotation=30,
            include_x_axis=True,  # a trend drawn from zero: no exaggerated slope
            **options,
        )
    )
    chart.x_labels = list(labels)
    for name, values in series.items():
        chart.add(name, list(values))
    return _render(chart)
