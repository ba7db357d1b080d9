"""TaskRun.logs read as a log: one row per line with its time, level and message, whatever the line's shape.

Write-back stores the masked tail of the task's log file (Airflow writes JSON lines) or, when no file was
readable, an indented JSON summary (airflow_plugin/writeback/task_logs.py). Only the last try is kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# "[2026-12-02T07:00:00.123+0000] {taskinstance.py:1} INFO - message": Airflow's classic text format.
TEXT_LINE = re.compile(r"^\[(?P<time>[^\]]+)\]\s+(?:\{[^}]*\}\s+)?(?P<level>[A-Z]+)\s+-\s+(?P<msg>.*)$")
LEVELS = {"debug", "info", "warning", "error", "critical"}


@dataclass
class LogLine:
    time: str
    level: str
    message: str


def parse(text: str) -> tuple[list[LogLine], dict | None]:
    """The log's lines, or (no lines, the summary) when write-back stored a structured summary."""
    text = text or ""
    stripped = text.strip()
    if stripped.startswith("{") and "\n" in stripped:
        try:
            document = json.loads(stripped)
        except ValueError:
            document = None
        if isinstance(document, dict):
            return [], document
    lines: list[LogLine] = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        lines.append(_line(raw))
    return lines, None


def _line(raw: str) -> LogLine:
    if raw.lstrip().startswith("{"):
        try:
            record = json.loads(raw)
        except ValueError:
            record = None
        if isinstance(record, dict):
            level = str(record.pop("level", "") or "").lower()
            time = str(record.pop("timestamp", "") or record.pop("time", "") or "")
            message = str(record.pop("event", "") or record.pop("message", "") or "")
            record.pop("logger", None)
            extra = " ".join(f"{key}={value}" for key, value in record.items())
            return LogLine(time.replace("T", " ")[:23], level, f"{message} {extra}".strip())
    match = TEXT_LINE.match(raw)
    if match:
        return LogLine(match["time"].replace("T", " ")[:23], match["level"].lower(), match["msg"])
    return LogLine("", "", raw)


def error_excerpt(text: str, *, limit: int = 300) -> str:
    """The first error the log names (the summary's ``error``, else the first error-level line), shortened."""
    lines, summary = parse(text)
    found = ""
    if summary is not None:
        found = str(summary.get("error") or "")
    else:
        found = next((line.message for line in lines if line.level in {"error", "critical"}), "")
    return found if len(found) <= limit else found[: limit - 1] + "…"
