"""A wall-clock limit on each statement of a tenant's source query, kept by the client (the query cannot undo it).

A server-side ``statement_timeout`` is a session setting, and a tenant's query can change session settings
(PostgreSQL's ``set_config('statement_timeout', '0', false)`` inside a ``SELECT`` turns it off for every later
``FETCH`` of the cursor); SQLite has no timeout at all. So the adapters also arm this watchdog around each
statement they send (the query, each fetch): when one runs past the limit, a timer thread cancels it through
the driver (psycopg's ``cancel_safe()``, sqlite3's ``interrupt()``), and the driver raises its usual
"cancelled" error, which the adapter reports as a time-out. docs/security.md, "Source queries".
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django_etl import conf

__all__ = ["StatementWatchdog", "source_timeout"]


def source_timeout() -> float:
    """Seconds one statement of a source query may run (``ETL_SOURCE_STATEMENT_TIMEOUT``; 0 or less: no limit)."""
    return float(conf.value("ETL_SOURCE_STATEMENT_TIMEOUT"))


class StatementWatchdog:
    """Calls ``cancel`` when a statement run inside :meth:`statement` lasts longer than ``seconds``."""

    def __init__(self, seconds: float, cancel: Callable[[], object]) -> None:
        self.seconds = seconds
        self.cancel = cancel
        self.fired = False

    @contextmanager
    def statement(self) -> Iterator[None]:
        if self.seconds <= 0:
            yield
            return
        timer = threading.Timer(self.seconds, self._fire)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def _fire(self) -> None:
        self.fired = True
        # The statement may have just ended, or the connection closed: then there is nothing to cancel.
        with contextlib.suppress(Exception):
            self.cancel()
