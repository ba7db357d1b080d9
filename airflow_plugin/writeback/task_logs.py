"""One try's section of TaskRun.logs: the last 64 KiB of its log file with secrets masked, or a structured summary."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from airflow_plugin.writeback.events import TaskInfo
from django_etl.connectors import secrets as credential_secrets

MAX_LOG_BYTES = 64 * 1024


def log_path(dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str | None:
    """Where Airflow's file task handler writes this try (default filename template only), or None."""
    try:
        from airflow.configuration import conf

        folder = conf.get("logging", "base_log_folder")
    except Exception:  # Airflow not configured in this process: nothing to read
        return None
    mapped = f"map_index={map_index}/" if map_index is not None and map_index >= 0 else ""
    name = f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/{mapped}attempt={try_number}.log"
    return os.path.join(folder, name)


def tail(path: str | None, limit: int = MAX_LOG_BYTES) -> str | None:
    """The last ``limit`` bytes of a file, cut at a line start; None when the file does not exist."""
    if not path or not os.path.isfile(path):
        return None
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - limit))
        data = handle.read(limit)
    text = data.decode("utf-8", errors="replace")
    if size > limit and "\n" in text:
        text = text[text.index("\n") + 1 :]
    return text


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask what Airflow's secrets masker knows in this process, then the given secret values (the one rule)."""
    try:
        from airflow.sdk._shared.secrets_masker.secrets_masker import redact

        text = str(redact(text))
    except Exception:  # masker unavailable: the explicit secrets below still apply
        pass
    return credential_secrets.mask(text, secrets)


SUMMARY_NOTE = "no task log file was readable; structured summary instead"


def summary(task: TaskInfo, manifest: dict[str, Any] | None) -> str:
    """A structured stand-in when no log file is readable (e.g. dag.test() logs to the console)."""
    document = {
        "summary": SUMMARY_NOTE,
        "state": task.state,
        "try_number": task.try_number,
        "error": task.error or (manifest or {}).get("error"),
        "metrics": (manifest or {}).get("metrics"),
    }
    return json.dumps(document, default=str, indent=1)


def is_summary(text: str | None) -> bool:
    """Whether a try's stored log is the stand-in (no file was readable where it was captured)."""
    return SUMMARY_NOTE in (text or "")[:200]


def capture(
    dag_id: str, run_id: str, task: TaskInfo, manifest: dict[str, Any] | None, secrets: Iterable[str]
) -> str:
    """TaskRun.logs for one try: masked log tail, else a masked summary; never longer than 64 KiB."""
    text = tail(log_path(dag_id, run_id, task.task_id, task.try_number or 1, task.map_index))
    if text is None:
        text = summary(task, manifest)
    masked = mask(text, secrets)
    encoded = masked.encode("utf-8")
    if len(encoded) > MAX_LOG_BYTES:
        masked = encoded[-MAX_LOG_BYTES:].decode("utf-8", errors="ignore")
    return masked
