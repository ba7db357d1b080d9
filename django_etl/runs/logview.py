"""TaskRun.logs, one section per try, read as a log: one row per line with its time, level and message.

Write-back stores, for every try of the step, the masked tail of that try's log file (Airflow writes JSON lines)
or, when no file was readable, an indented JSON summary (airflow_plugin/writeback/task_logs.py). The tries are
sections headed by a line ``=== try N ===`` (:func:`with_try` writes them, :func:`split_tries` reads them); a
text without a heading (stored before tries were kept) is one section of the latest try.
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


TRY_HEADING = re.compile(r"^=== try (?P<number>\d+) ===$", re.MULTILINE)
# A task retried many times keeps its newest tries whole; older ones give their room up first.
MAX_TOTAL_BYTES = 256 * 1024


def heading(try_number: int) -> str:
    return f"=== try {int(try_number)} ===\n"


def split_tries(text: str | None, *, untitled_try: int = 1) -> dict[int, str]:
    """{try number: that try's text}, oldest first; text before any heading belongs to ``untitled_try``."""
    text = text or ""
    tries: dict[int, str] = {}
    matches = list(TRY_HEADING.finditer(text))
    head = text[: matches[0].start()] if matches else text
    if head.strip():
        tries[untitled_try] = head
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        tries[int(match["number"])] = text[match.end() + 1 : end]
    return dict(sorted(tries.items()))


def with_try(previous: str | None, try_number: int, text: str, *, limit: int = MAX_TOTAL_BYTES) -> str:
    """``previous`` with try ``try_number``'s section set to ``text``; the oldest tries are dropped past ``limit``."""
    tries = split_tries(previous, untitled_try=try_number)
    # A line of the log that looks like a heading would split the try: it is indented by one space.
    text = TRY_HEADING.sub(lambda match: " " + match[0], text)
    tries[int(try_number)] = text if text.endswith("\n") or not text else text + "\n"
    tries = dict(sorted(tries.items()))
    dropped = "(this try's log was dropped to keep the record small; Airflow's task log has it)\n"
    while len(_joined(tries).encode("utf-8")) > limit:
        oldest = next(
            (number for number, body in tries.items() if body != dropped and number != try_number), None
        )
        if oldest is None:
            break
        tries[oldest] = dropped
    return _joined(tries)


def _joined(tries: dict[int, str]) -> str:
    return "".join(heading(number) + body for number, body in tries.items())


@dataclass
class TryLog:
    number: int
    lines: list[LogLine]
    summary: dict | None


def parse_tries(text: str | None, *, latest_try: int = 1) -> list[TryLog]:
    """Every stored try's lines (or summary), newest first."""
    result = []
    for number, body in split_tries(text, untitled_try=latest_try).items():
        lines, summary = parse(body)
        result.append(TryLog(number, lines, summary))
    return result[::-1]


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
    """The first error the latest try's log names (the summary's ``error``, else the first error line), shortened."""
    tries = split_tries(text)
    lines, summary = parse(tries[max(tries)] if tries else "")
    found = ""
    if summary is not None:
        found = str(summary.get("error") or "")
    else:
        found = next((line.message for line in lines if line.level in {"error", "critical"}), "")
    return found if len(found) <= limit else found[: limit - 1] + "…"
