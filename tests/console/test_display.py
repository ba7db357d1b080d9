"""How records read: durations, logs in their three shapes, error excerpts, and the SVG charts' escaping."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from django_etl.runs import display, logview


def test_readable_duration_reads_like_a_person_would_say_it():
    assert display.readable_duration(125) == "2\u00a0min\u00a05\u00a0s"  # one line in a table cell
    readable = lambda value: display.readable_duration(value).replace("\u00a0", " ")  # noqa: E731
    assert readable(timedelta(seconds=10.961909)) == "11.0 s"
    assert readable(timedelta(milliseconds=250)) == "250 ms"
    assert readable(125) == "2 min 5 s"
    assert readable(timedelta(hours=1, minutes=2, seconds=3)) == "1 h 2 min"
    assert readable(timedelta(days=3, hours=1)) == "3 d 1 h"
    assert display.readable_duration(None) == "—"


def test_logview_parse_reads_airflow_json_lines_and_text_lines():
    text = "\n".join(
        [
            json.dumps(
                {"timestamp": "2026-12-02T07:00:00.123456Z", "level": "info", "event": "Started", "n": 3}
            ),
            "[2026-12-02T07:00:01.000+0000] {taskinstance.py:12} ERROR - Boom: it broke",
            "a plain line",
        ]
    )
    lines, summary = logview.parse(text)
    assert summary is None
    assert [(line.level, line.message) for line in lines] == [
        ("info", "Started n=3"),
        ("error", "Boom: it broke"),
        ("", "a plain line"),
    ]
    assert lines[0].time == "2026-12-02 07:00:00.123"
    assert logview.error_excerpt(text) == "Boom: it broke"


def test_logview_parse_returns_write_backs_summary_as_fields():
    summary = {"summary": "no task log file was readable", "state": "failed", "error": "x" * 500}
    lines, parsed = logview.parse(json.dumps(summary, indent=1))
    assert lines == [] and parsed == summary
    excerpt = logview.error_excerpt(json.dumps(summary, indent=1))
    assert len(excerpt) == 300 and excerpt.endswith("…")


def test_logview_parse_keeps_a_broken_json_line_as_text():
    lines, summary = logview.parse('{"level": "info", "event": \n{not json')
    assert summary is None and [line.message for line in lines] == [
        '{"level": "info", "event": ',
        "{not json",
    ]


def test_timeline_and_sparkline_escape_names_and_place_bars():
    start = datetime(2026, 12, 2, 7, tzinfo=UTC)
    rows = [
        {
            "name": "<script>x</script>",
            "status": "failed",
            "start": start,
            "end": start + timedelta(seconds=10),
        },
        {"name": "later", "status": "success", "start": start + timedelta(seconds=5), "end": None},
    ]
    svg = str(display.timeline(rows))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert display.STATUS_COLOURS["failed"] in svg
    spark = str(display.sparkline([(10.0, "success"), (20.0, "failed")], width=100, height=20))
    assert 'height="20.0"' in spark and 'height="10.0"' in spark  # the longest run is full height
    assert "no finished runs" in str(display.sparkline([]))


def test_fields_renders_a_json_object_as_pairs_and_escapes_values():
    html = str(display.fields({"rows": 3, "note": "<b>x</b>", "nested": {"a": [1, 2]}}))
    assert "<dt>rows</dt><dd>3</dd>" in html and "&lt;b&gt;" in html and "&quot;a&quot;" in html
    assert "—" in str(display.fields({}))


def test_logview_with_try_keeps_every_try_and_replaces_a_rewritten_one():
    text = logview.with_try(None, 1, "first try failed\n")
    text = logview.with_try(text, 2, "second try ran")
    text = logview.with_try(text, 2, "second try succeeded\n")  # a later event of the same try
    assert logview.split_tries(text) == {1: "first try failed\n", 2: "second try succeeded\n"}
    assert [entry.number for entry in logview.parse_tries(text)] == [2, 1]  # newest first


def test_logview_with_try_reads_an_untitled_log_as_the_latest_try():
    assert logview.split_tries("stored before tries were kept\n", untitled_try=3) == {
        3: "stored before tries were kept\n"
    }
    assert logview.split_tries(logview.with_try("old\n", 1, "new\n")) == {1: "new\n"}


def test_logview_with_try_cannot_be_split_by_a_forged_heading():
    text = logview.with_try(None, 1, "ok\n=== try 7 ===\nforged\n")
    assert list(logview.split_tries(text)) == [1]


def test_logview_with_try_drops_the_oldest_tries_past_the_limit():
    text = None
    for number in range(1, 6):
        text = logview.with_try(text, number, f"try {number}: " + "x" * 300 + "\n", limit=1000)
    tries = logview.split_tries(text)
    assert len(text.encode()) <= 1000
    assert tries[5].startswith("try 5:") and tries[4].startswith("try 4:")
    assert "dropped" in tries[1]
