"""Delivery of write-backs: one worker thread per process, its own short-timeout DB alias, bounded waits.

Write-back must never fail a task nor block the scheduler when the Django database is slow or down, so every
write runs on one worker thread per process, through its own database alias whose connection carries a
connect, statement and lock timeout, and the caller waits at most ``ETL_RECORDER_TIMEOUT`` seconds (default
5). When an Airflow component or task process stops, :func:`drain` gives what is still queued one more
bounded wait. Every exception is logged and swallowed here.

The per-process state (worker thread, cached rows, cached secrets, Django readiness) is one
:class:`WriteBack` object; a forked child (LocalExecutor and Celery fork task processes from a warmed-up
parent) gets a fresh one, keeping only the knowledge that Django is already set up.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from django_etl import conf

log = logging.getLogger("airflow_plugin.writeback")

ALIAS = "etl_recorder"
MIN_TIMEOUT_SECONDS = 0.5


class RecentRow:
    """The last row written for one key, kept a short while: a task process writes its try a few times.

    Only the worker thread uses it. Anything older than ``seconds`` or under another key is read again.
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


class WriteBack:
    """Everything write-back keeps per process: the worker thread and what it caches."""

    def __init__(self, *, django_ready: bool = False) -> None:
        self.pid = os.getpid()
        self.django_ready = django_ready
        self.run_row = RecentRow()  # the last PipelineRun written (task events reuse it)
        self.task_row = RecentRow()  # the last TaskRun written
        # pipeline id -> (monotonic time, secret values); short-lived so rotated credentials are seen soon.
        self.secrets: dict[str, tuple[float, list[str]]] = {}
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-recorder")
            return self._executor

    @property
    def started(self) -> bool:
        return self._executor is not None

    def forget_rows(self) -> None:
        """After a failed write the cached rows may not match the database: read them again next time."""
        self.run_row.clear()
        self.task_row.clear()


_state = WriteBack()


def state() -> WriteBack:
    """This process's write-back state."""
    return _state


def _reset_after_fork() -> None:
    # The parent's worker thread does not exist in the child, and its lock may have been held at the fork;
    # its cached rows belong to the parent's writes. Django stays set up: that is what the warm-up is for.
    global _state
    _state = WriteBack(django_ready=_state.django_ready)


os.register_at_fork(after_in_child=_reset_after_fork)


def timeout_seconds() -> float:
    """The configured bound on one delivery (and on each database statement and connection attempt)."""
    try:
        value = float(conf.value("ETL_RECORDER_TIMEOUT"))
    except (ValueError, TypeError) as exc:  # a bad environment value must not stop write-back
        default = conf.SETTINGS["ETL_RECORDER_TIMEOUT"].default()
        log.warning("%s; using %s", exc, default)
        value = default
    return max(value, MIN_TIMEOUT_SECONDS)


def setup_django() -> None:
    """Configure Django once per process and register the recorder's own database alias."""
    current = state()
    if current.django_ready:
        return
    from django_etl.startup import setup_django as setup_django_apps

    setup_django_apps()
    _register_alias()
    current.django_ready = True


def _register_alias() -> None:
    from django.db import connections

    if ALIAS in connections.settings:
        return
    # Copy the default alias as it is now (a test run has already pointed it at the test database).
    base = connections["default"].settings_dict
    settings_dict = {**base, "OPTIONS": dict(base.get("OPTIONS") or {})}
    settings_dict.update(_own_address())
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


def _own_address() -> dict[str, Any]:
    """ETL_RECORDER_DATABASE_URL's engine, database and address, when write-back has a URL of its own."""
    url = str(conf.value("ETL_RECORDER_DATABASE_URL") or "").strip()
    if not url:
        return {}
    import dj_database_url

    parsed = dj_database_url.parse(url)
    return {
        key: parsed[key] for key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT") if key in parsed
    }


def _run_safely(function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    try:
        setup_django()
        return function(*args)
    except Exception as exc:
        log.warning("write-back skipped (%s): %s: %s", function.__name__, type(exc).__name__, exc)
        state().forget_rows()
        _drop_connection()
        return None


def _drop_connection() -> None:
    try:
        from django.db import connections

        if ALIAS in connections.settings:
            connections[ALIAS].close()
    except Exception:  # a broken connection may fail to close; it is gone either way
        pass


def deliver(function: Callable[..., Any], *args: Any, wait: float | None = None) -> Any:
    """Run ``function(*args)`` on the worker thread; wait at most the timeout; never raise."""
    try:
        future = state().executor().submit(_run_safely, function, args)
    except Exception as exc:  # interpreter shutting down
        log.warning("write-back not queued (%s): %s", function.__name__, exc)
        return None
    try:
        bound = timeout_seconds() if wait is None else wait
        return future.result(timeout=bound)
    except FutureTimeout:
        log.warning(
            "write-back (%s) still running after %.1f s; continuing without waiting", function.__name__, bound
        )
        return None
    except Exception as exc:
        log.warning("write-back failed (%s): %s", function.__name__, exc)
        return None


def _wait_for_queue(timeout: float) -> bool:
    """True once everything queued before this call has run (or nothing was ever queued)."""
    current = state()
    if not current.started:
        return True
    future: Future = current.executor().submit(lambda: None)
    try:
        future.result(timeout=timeout)
        return True
    except FutureTimeout:
        return False


def flush(timeout: float = 30.0) -> bool:
    """Wait until everything queued so far has been written (tests, the demo). True when it finished."""
    return _wait_for_queue(timeout)


def drain(component: Any = None) -> bool:
    """Before a component or task process stops: let the queued writes finish, waiting a bounded time.

    A task process ends with ``os._exit()``, which kills the worker thread with whatever it still holds:
    a write the caller stopped waiting for (a slow database) would be lost. The wait is at most
    ``ETL_RECORDER_TIMEOUT`` seconds; what is still running then is logged and given up.
    """
    if not state().started:
        return True
    bound = timeout_seconds()
    if _wait_for_queue(bound):
        return True
    log.warning(
        "write-back still queued after %.1f s while %s stops; giving it up",
        bound,
        type(component).__name__ if component is not None else "the process",
    )
    return False


def close_connection(timeout: float = 30.0) -> None:
    """Close the worker's database connection (before a test database is dropped, at the demo's end)."""
    current = state()
    if not current.started:
        return
    future = current.executor().submit(_drop_connection)
    try:
        future.result(timeout=timeout)
    except FutureTimeout:
        log.warning("the recorder's connection did not close within %.0f s", timeout)
