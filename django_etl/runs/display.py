"""How run records read in the console: durations, status badges and small server-side SVG charts."""

from __future__ import annotations

import json
from datetime import timedelta

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

# One colour per status, used by badges, timelines and charts (contrast checked against white text).
STATUS_COLOURS = {
    "success": "#1a7f37",
    "failed": "#cf222e",
    "timeout": "#bc4c00",
    "cancelled": "#6e7781",
    "running": "#0969da",
    "pending": "#8c959f",
    "skipped": "#8c959f",
    "upstream_failed": "#9a6700",
}
# Inline, so a badge reads the same on pages that do not load console.css (the admin's lists).
BADGE_STYLE = (
    "display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;font-size:11px;font-weight:600;"
    "line-height:16px;white-space:nowrap;background:{}"
)
LEVEL_COLOURS = {"info": "#0969da", "warning": "#9a6700", "error": "#cf222e", "critical": "#82071e"}


def seconds_of(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def readable_duration(value) -> str:
    """``0:00:10.961909`` → ``11.0 s``; ``1:02:03`` → ``1 h 2 min``; None → ``—`` (no-break spaces: one cell line)."""
    return _duration(value).replace(" ", "\u00a0")


def _duration(value) -> str:
    seconds = seconds_of(value)
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


def status_badge(status: str, label: str | None = None) -> SafeString:
    colour = STATUS_COLOURS.get(status, "#6e7781")
    return format_html(
        '<span class="etl-badge" style="{}">{}</span>',
        BADGE_STYLE.format(colour),
        label or status.replace("_", " "),
    )


def level_badge(level: str, count: int | None = None) -> SafeString:
    colour = LEVEL_COLOURS.get(level, "#6e7781")
    text = level if count is None else f"{count} {level}"
    return format_html('<span class="etl-badge" style="{}">{}</span>', BADGE_STYLE.format(colour), text)


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "—"


def sparkline(points: list[tuple[float, str]], *, width: int = 160, height: int = 32) -> SafeString:
    """A bar chart of durations (seconds, status), oldest first, as inline SVG: no JavaScript, no library."""
    if not points:
        return mark_safe('<span class="etl-muted">no finished runs</span>')
    top = max(value for value, _ in points) or 1.0
    slot = width / len(points)
    bar = max(slot - 1, 1)
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
        (
            (
                f"{index * slot:.1f}",
                f"{height - max(value / top * height, 1):.1f}",
                f"{bar:.1f}",
                f"{max(value / top * height, 1):.1f}",
                STATUS_COLOURS.get(status, "#6e7781"),
                f"{readable_duration(value)} ({status})",
            )
            for index, (value, status) in enumerate(points)
        ),
    )
    return format_html(
        '<svg class="etl-spark" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="durations of the last {} runs, longest {}">{}</svg>',
        width,
        height,
        width,
        height,
        len(points),
        readable_duration(top),
        bars,
    )


def timeline(rows: list[dict], *, width: int = 640) -> SafeString:
    """Task bars on one time axis (rows: name, status, start, end as datetimes), as inline SVG."""
    timed = [row for row in rows if row["start"] is not None]
    if not timed:
        return mark_safe('<p class="etl-muted">No task has started.</p>')
    origin = min(row["start"] for row in timed)
    finish = max((row["end"] or row["start"]) for row in timed)
    span = max((finish - origin).total_seconds(), 0.001)
    label_width, row_height = 180, 20
    chart = width - label_width - 70
    parts = []
    for index, row in enumerate(timed):
        start = (row["start"] - origin).total_seconds()
        length = ((row["end"] or row["start"]) - row["start"]).total_seconds()
        y = index * row_height
        parts.append(
            format_html(
                '<text x="0" y="{}" class="etl-tl-label">{}</text>'
                '<rect x="{}" y="{}" width="{}" height="14" rx="2" fill="{}"><title>{}</title></rect>'
                '<text x="{}" y="{}" class="etl-tl-time">{}</text>',
                y + 14,
                row["name"][:26],
                f"{label_width + start / span * chart:.1f}",
                y + 3,
                f"{max(length / span * chart, 2):.1f}",
                STATUS_COLOURS.get(row["status"], "#6e7781"),
                f"{row['name']}: {row['status']}, {readable_duration(length)}",
                f"{label_width + (start + length) / span * chart + 4:.1f}",
                y + 14,
                readable_duration(length),
            )
        )
    height = len(timed) * row_height + 4
    return format_html(
        '<svg class="etl-timeline" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="task timeline">{}</svg>',
        width,
        height,
        width,
        height,
        mark_safe("".join(parts)),
    )


def fields(value) -> SafeString:
    """A JSON object as a list of name/value pairs (nested values indented JSON), instead of a one-line blob."""
    if value in (None, {}, []):
        return mark_safe('<span class="etl-muted">—</span>')
    if not isinstance(value, dict):
        return format_html('<pre class="etl-code">{}</pre>', json.dumps(value, indent=2, default=str))
    rows = format_html_join(
        "",
        "<dt>{}</dt><dd>{}</dd>",
        (
            (
                key,
                item
                if isinstance(item, str)
                else json.dumps(item, indent=2, default=str, ensure_ascii=False),
            )
            for key, item in value.items()
        ),
    )
    return format_html('<dl class="etl-fields">{}</dl>', rows)
