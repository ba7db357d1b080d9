"""The recorder's safety net: lazy Django set-up, its own short-timeout connection, one worker thread.

Write-back must never fail a task nor block the scheduler when the Django database is slow or down, so every
write runs on one worker thread per process, through its own database alias whose connection carries a
connect and statement timeout, and the caller waits at most ``ETL_RECORDER_TIMEOUT`` seconds (default 5).
Every exception is logged and swallowed here.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

log = logging.getLogger("airflow_plugin.recorder")

ALIAS = "etl_recorder"
DEFAULT_TIMEOUT_SECONDS = 5.0

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_executor_pid: int | None = None
_django_ready = False


class RecentRow:
    """The last row written for one key, kept a short while: a task process writes its try a few times.

    Only the recorder thread uses it. Anything older than ``seconds`` or under another key is read again.
    """

    def __init__(self, seconds: float = 60.0) -> None:
        self.seconds = seconds
        self._key: Any = None
        self._row: Any = None
        self._at = 0.0

    def get(self, key: Any) -> Any:
        if self._key == key and time.monotonic() - self._at < self.seconds:
            return self._row
        return None

    def put(self, key: Any, row: Any) -> Any:
        self._key, self._row, self._at = key, row, time.monotonic()
        return row

    def clear(self) -> None:
        self._key = self._row = None


def timeout_seconds() -> float:
    """The configured bound on one delivery (and on each database statement and connection attempt)."""
    raw = os.environ.get("ETL_RECORDER_TIMEOUT", "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_SECONDS
    except ValueError:
        log.warning(
            "ETL_RECORDER_TIMEOUT=%r is not a number of seconds; using %s", raw, DEFAULT_TIMEOUT_SECONDS
        )
        value = DEFAULT_TIMEOUT_SECONDS
    return max(value, 0.5)


def setup_django() -> None:
    """Configure Django once per process and register the recorder's own database alias."""
    global _django_ready
    if _django_ready:
        return
    from django_etl.startup import setup_django as setup_django_apps

    setup_django_apps()
    _register_alias()
    _django_ready = True


def _register_alias() -> None:
    from django.db import connections

    if ALIAS in connections.settings:
        return
    # Copy the default alias as it is now (a test run has already pointed it at the test database).
    base = connections["default"].settings_dict
    settings_dict = {**base, "OPTIONS": dict(base.get("OPTIONS") or {})}
    seconds = timeout_seconds()
    if settings_dict["ENGINE"] == "django.db.backends.postgresql":
        options = settings_dict["OPTIONS"]
        options.setdefault("connect_timeout", max(2, round(seconds)))  # libpq's minimum is 2 s
        # synchronous_commit off: a commit does not wait for the WAL flush (the slow part of a small
        # write); a database crash may lose the last instants of write-back, which reconciliation refills.
        extra = (
            f"-c statement_timeout={int(seconds * 1000)} -c lock_timeout={int(seconds * 1000)}"
            " -c synchronous_commit=off"
        )
        options["options"] = f"{options.get('options', '')} {extra}".strip()
    elif settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        settings_dict["OPTIONS"]["timeout"] = seconds
    settings_dict["CONN_MAX_AGE"] = None  # one connection per worker thread, closed on error or shutdown
    connections.settings[ALIAS] = settings_dict


def _get_executor() -> ThreadPoolExecutor:
    global _executor, _executor_pid
    with _lock:
        # After a fork the parent's worker thread does not exist in the child: start a fresh one.
        if _executor is None or _executor_pid != os.getpid():
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-recorder")
            _executor_pid = os.getpid()
        return _executor


def _run_safely(function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    try:
        setup_django()
        return function(*args)
    except Exception as exc:
        log.warning("write-back skipped (%s): %s: %s", function.__name__, type(exc).__name__, exc)
        _forget_cached_rows()
        _drop_connection()
        return None


def _forget_cached_rows() -> None:
    # After a failed write the cached rows may not match the database: read them again next time.
    for module_name in ("airflow_plugin.recorder", "airflow_plugin.recorder_tasks"):
        module = sys.modules.get(module_name)
        for attribute in ("_run_cache", "_task_cache"):
            cache = getattr(module, attribute, None)
            if isinstance(cache, RecentRow):
                cache.clear()


def _drop_connection() -> None:
    try:
        from django.db import connections

        if ALIAS in connections.settings:
            connections[ALIAS].close()
    except Exception:  # a broken connection may fail to close; it is gone either way
        pass


def deliver(function: Callable[..., Any], *args: Any, wait: float | None = None) -> Any:
    """Run ``function(*args)`` on the recorder thread; wait at most the timeout; never raise."""
    try:
        future = _get_executor().submit(_run_safely, function, args)
    except Exception as exc:  # interpreter shutting down
        log.warning("write-back not queued (%s): %s", function.__name__, exc)
        return None
    try:
        return future.result(timeout=timeout_seconds() if wait is None else wait)
    except FutureTimeout:
        log.warning(
            "write-back (%s) still running after %.1f s; continuing without waiting",
            function.__name__,
            timeout_seconds(),
        )
        return None
    except Exception as exc:
        log.warning("write-back failed (%s): %s", function.__name__, exc)
        return None


def flush(timeout: float = 30.0) -> bool:
    """Wait until everything queued so far has been written (tests, the demo). True when it finished."""
    future: Future = _get_executor().submit(lambda: None)
    try:
        future.result(timeout=timeout)
        return True
    except FutureTimeout:
        return False


def close_connection(timeout: float = 30.0) -> None:
    """Close the worker's database connection (before a test database is dropped, at the demo's end)."""
    if _executor is None or _executor_pid != os.getpid():
        return
    future = _executor.submit(_drop_connection)
    try:
        future.result(timeout=timeout)
    except FutureTimeout:
        log.warning("the recorder's connection did not close within %.0f s", timeout)
