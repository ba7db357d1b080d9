"""Every migration runs with a lock timeout and a statement timeout, and a lock timeout is retried a few times.

A migration waiting for a lock queues every later query on that table behind it, so it must give up quickly
(``ETL_MIGRATION_LOCK_TIMEOUT``) and try again a bounded number of times (``ETL_MIGRATION_RETRIES``), with a
growing pause. A DDL statement that rewrites a table holds its lock as long as it runs, so statements are
bounded too (``ETL_MIGRATION_STATEMENT_TIMEOUT``). The settings are session settings of the migrating
connection for the whole ``migrate`` run; the ``migrate`` command of ``django_etl.core`` wraps Django's in
:func:`guarded`, so ``manage.py migrate``, ``safe_migrate`` and the test databases all get them.

Only what can run again safely is retried: an atomic migration (PostgreSQL rolled it back entirely), or a
non-atomic one whose every operation says ``retry_safe = True`` (``AddIndexConcurrently`` does). SQLite has
neither setting; its busy timeout (``DATABASES`` OPTIONS) already bounds lock waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError

from django_etl import conf
from django_etl.errors import EtlError, first_line
from django_etl.migrations_kit import catalog, events

LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"
MAX_RETRY_WAIT = 30.0


class MigrationLockTimeout(EtlError):
    """A migration could not get its lock within the lock timeout, and was not (or no longer) retried."""

    retryable_by_default = True


class MigrationStatementTimeout(EtlError):
    """A migration statement ran longer than the statement timeout and was cancelled."""


@dataclass(frozen=True)
class TimeoutPolicy:
    lock_timeout: float
    statement_timeout: float
    retries: int

    @classmethod
    def from_settings(cls) -> TimeoutPolicy:
        return cls(
            lock_timeout=conf.value("ETL_MIGRATION_LOCK_TIMEOUT"),
            statement_timeout=conf.value("ETL_MIGRATION_STATEMENT_TIMEOUT"),
            retries=conf.value("ETL_MIGRATION_RETRIES"),
        )

    def session_values(self) -> dict[str, str]:
        return {
            "lock_timeout": milliseconds(self.lock_timeout),
            "statement_timeout": milliseconds(self.statement_timeout),
        }

    def wait_before(self, attempt: int) -> float:
        """Pause before attempt ``attempt`` (2, 3, ...): 1 s, 2 s, 4 s ... up to 30 s."""
        return min(MAX_RETRY_WAIT, 2.0 ** (attempt - 2))


def milliseconds(seconds: float) -> str:
    """PostgreSQL's spelling of a duration; 0 means no timeout."""
    return f"{round(seconds * 1000)}ms"


@contextmanager
def session_timeouts(connection, policy: TimeoutPolicy) -> Iterator[None]:
    """The policy's timeouts on the connection's session for the block (PostgreSQL only)."""
    if not catalog.is_postgresql(connection):
        yield
        return
    previous = catalog.current_settings(connection, "lock_timeout", "statement_timeout")
    catalog.set_session(connection, policy.session_values())
    try:
        yield
    finally:
        # When the error that ended the block broke the connection, its session (and the settings with it)
        # ends when Django closes it.
        with suppress(DatabaseError):
            catalog.set_session(connection, previous)


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, looking through Django's wrapper to the driver's error."""
    seen: BaseException | None = exc
    while seen is not None:
        state = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if state:
            return state
        seen = seen.__cause__ or seen.__context__
    return None


def is_lock_timeout(exc: BaseException) -> bool:
    return sqlstate(exc) == LOCK_NOT_AVAILABLE


def is_statement_timeout(exc: BaseException) -> bool:
    return sqlstate(exc) == QUERY_CANCELED and "statement timeout" in str(exc)


def retry_safe(migration) -> bool:
    """Whether running ``migration`` again after it failed part-way cannot do harm."""
    if migration is None:
        return True  # failed outside any migration (pre/post-migrate handlers, which are idempotent)
    if migration.atomic:
        return True
    return all(getattr(operation, "retry_safe", False) for operation in migration.operations)


def guarded[T](
    run: Callable[[], T],
    *,
    connection,
    in_flight: Callable[[], Any],
    report: Callable[[str], None],
    policy: TimeoutPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``run`` (a whole migrate) with the timeouts; run it again after a lock timeout, up to the retries.

    ``in_flight()`` names the migration that was running when an error came (None between migrations): it
    decides whether running again is safe and is named in the errors.
    """
    policy = policy or TimeoutPolicy.from_settings()
    attempt = 1
    with session_timeouts(connection, policy):
        while True:
            try:
                return run()
            except DatabaseError as exc:
                migration = in_flight()
                label = str(migration) if migration is not None else "the migrate run"
                if is_statement_timeout(exc):
                    raise MigrationStatementTimeout(
                        statement_timeout_message(label, migration, policy)
                    ) from exc
                if not is_lock_timeout(exc) or not catalog.is_postgresql(connection):
                    raise
                if not retry_safe(migration):
                    raise MigrationLockTimeout(not_retried_message(label, policy, exc)) from exc
                if attempt > policy.retries:
                    raise MigrationLockTimeout(exhausted_message(label, policy, exc)) from exc
                attempt += 1
                wait = policy.wait_before(attempt)
                report(
                    f"  {label}: lock timeout ({first_line(exc)}); "
                    f"retrying in {wait:g} s (attempt {attempt} of {policy.retries + 1})"
                )
                events.lock_retry.send(
                    sender=__name__,
                    migration=label,
                    attempt=attempt,
                    retries=policy.retries,
                    wait=wait,
                    error=exc,
                )
                sleep(wait)


def exhausted_message(label: str, policy: TimeoutPolicy, exc: BaseException) -> str:
    return (
        f"{label}: could not get a lock within ETL_MIGRATION_LOCK_TIMEOUT={policy.lock_timeout:g} s in "
        f"{policy.retries + 1} attempt(s) ({first_line(exc)}). Another session holds a conflicting lock on the "
        "table the migration changes (a long transaction, an idle-in-transaction session): find it with "
        "`SELECT pid, state, xact_start, query FROM pg_stat_activity WHERE state <> 'idle'`, let it finish or "
        "end it, then run the migration again; or run it at a quieter time with a larger "
        "ETL_MIGRATION_LOCK_TIMEOUT or ETL_MIGRATION_RETRIES (docs/migrations.md)."
    )


def not_retried_message(label: str, policy: TimeoutPolicy, exc: BaseException) -> str:
    return (
        f"{label}: could not get a lock within ETL_MIGRATION_LOCK_TIMEOUT={policy.lock_timeout:g} s "
        f"({first_line(exc)}). It is not atomic and some of its operations may have run, so it was not retried: "
        "check what it changed, then run the migration again when the lock is free (docs/migrations.md)."
    )


def statement_timeout_message(label: str, migration, policy: TimeoutPolicy) -> str:
    undone = (
        "It was rolled back"
        if migration is None or migration.atomic
        else "It is not atomic: check what it changed before running it again"
    )
    return (
        f"{label}: a statement ran longer than ETL_MIGRATION_STATEMENT_TIMEOUT="
        f"{policy.statement_timeout:g} s and was cancelled. {undone}. Run it at a quieter time with a larger "
        "ETL_MIGRATION_STATEMENT_TIMEOUT (0 turns it off), or rewrite it so no statement runs long: a chunked "
        "data migration, a concurrent index (docs/migrations.md)."
    )
