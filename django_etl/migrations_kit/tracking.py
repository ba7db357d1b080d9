"""Which migration is running, and (when monitoring) its progress, lock waits and duration, printed as it goes.

``MigrationTracker`` is the ``migrate`` command's progress callback. It always knows the migration in flight
(the retry rule needs it). With ``monitor=True`` it prints one block per migration::

    [2/3] Applying runs.0002_task_runs_status_run_idx
          index task_runs_status_run_idx: building on task_runs_y2026m11 (1/5)
          waiting for a lock held by pid 4242 (idle in transaction for 12 s: UPDATE task_runs SET ...)
          OK in 2.41 s, 1.20 s of it waiting for locks

and a ``LockWatcher`` thread asks PostgreSQL, every quarter second, which sessions block the migrating one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from django_etl.errors import first_line
from django_etl.migrations_kit import catalog, events

POLL_SECONDS = 0.25
QUERY_CHARS = 80


@dataclass
class MigrationTiming:
    label: str
    backwards: bool
    seconds: float = 0.0
    lock_wait_seconds: float = 0.0
    blockers: list[int] = field(default_factory=list)


class MigrationTracker:
    """The progress callback of ``migrate``: remembers the migration in flight; prints when monitoring."""

    def __init__(self, connection, *, write, monitor: bool = False) -> None:
        self.connection = connection
        self.write = write
        self.monitor = monitor
        self.in_flight = None
        self.total: int | None = None
        self.position = 0
        self.timings: list[MigrationTiming] = []
        self._started = 0.0
        self._watcher: LockWatcher | None = None

    def begin(self, total: int | None) -> None:
        """A (new) migrate run of ``total`` migrations starts; a retry starts a new count."""
        self.total = total
        self.position = 0
        self.in_flight = None

    def __call__(self, action: str, migration=None, fake: bool = False) -> None:
        if action in ("apply_start", "unapply_start"):
            self.start(migration, backwards=action == "unapply_start", fake=fake)
        elif action in ("apply_success", "unapply_success"):
            self.finish(fake=fake)

    def start(self, migration, *, backwards: bool, fake: bool) -> None:
        self.in_flight = migration
        self.position += 1
        self._started = time.monotonic()
        self.timings.append(MigrationTiming(label=str(migration), backwards=backwards))
        if not self.monitor:
            return
        counter = f"[{self.position}/{self.total}]" if self.total else f"[{self.position}]"
        verb = "Unapplying" if backwards else "Applying"
        self.write(f"  {counter} {verb} {migration}{' (fake)' if fake else ''}")
        if not fake and catalog.is_postgresql(self.connection):
            self._watcher = LockWatcher(self.connection, label=str(migration), write=self.note)
            self._watcher.start()
        events.index_build.connect(self.on_index_build, dispatch_uid=f"tracker-{id(self)}-index")
        events.chunk_done.connect(self.on_chunk_done, dispatch_uid=f"tracker-{id(self)}-chunk")

    def finish(self, *, fake: bool) -> None:
        timing = self.timings[-1]
        timing.seconds = time.monotonic() - self._started
        self.stop_watching()
        self.in_flight = None
        if not self.monitor:
            return
        waited = (
            f", {timing.lock_wait_seconds:.2f} s of it waiting for locks" if timing.lock_wait_seconds else ""
        )
        self.write(f"        {'FAKED' if fake else 'OK'} in {timing.seconds:.2f} s{waited}")

    def stop_watching(self) -> None:
        """End the lock watcher (also after a failure, when no success callback comes)."""
        events.index_build.disconnect(dispatch_uid=f"tracker-{id(self)}-index")
        events.chunk_done.disconnect(dispatch_uid=f"tracker-{id(self)}-chunk")
        if self._watcher is None:
            return
        self._watcher.stop()
        if self.timings:
            self.timings[-1].lock_wait_seconds = self._watcher.waited
            self.timings[-1].blockers = sorted(self._watcher.blockers)
        self._watcher = None

    def note(self, text: str) -> None:
        self.write(f"        {text}")

    def on_index_build(self, *, index, table, step, position, total, **_) -> None:
        if step == "parent":
            self.note(f"index {index}: created on the partitioned table {table} (invalid until attached)")
        elif step == "build":
            self.note(f"index {index}: building on {table} ({position}/{total})")
        elif step == "done":
            self.note(f"index {index}: valid on {table}")

    def on_chunk_done(self, *, name, done, total, resumed, **_) -> None:
        share = f" ({100 * done // total}%)" if total else ""
        self.note(f"{name}: {done}/{total} rows{share}{' (resumed)' if resumed else ''}")

    def summary(self) -> str:
        done = [timing for timing in self.timings if timing.seconds]
        seconds = sum(timing.seconds for timing in done)
        waited = sum(timing.lock_wait_seconds for timing in done)
        slowest = max(done, key=lambda timing: timing.seconds, default=None)
        text = f"{len(done)} migration(s) in {seconds:.2f} s"
        if waited:
            text += f", {waited:.2f} s waiting for locks"
        if slowest is not None and len(done) > 1:
            text += f"; slowest: {slowest.label} ({slowest.seconds:.2f} s)"
        return text


class LockWatcher(threading.Thread):
    """Polls ``pg_blocking_pids`` of the migrating session from its own connection; reports each blocker once."""

    def __init__(self, connection, *, label: str, write) -> None:
        super().__init__(name=f"lock-watcher {label}", daemon=True)
        self.settings_dict = dict(connection.settings_dict)
        self.wrapper_class = type(connection)
        self.alias = f"{connection.alias}-lock-watcher"
        self.pid = catalog.backend_pid(connection)
        self.label = label
        self.write = write
        self.waited = 0.0
        self.blockers: set[int] = set()
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def run(self) -> None:
        # A connection of its own, made in this thread: Django's connections belong to the thread that made them.
        watcher = self.wrapper_class(self.settings_dict, alias=self.alias)
        try:
            while not self._stop_event.wait(POLL_SECONDS):
                self.poll(watcher)
        except Exception as exc:  # the watcher only reports; a broken watch must not break the migration
            self.write(f"(lock watcher stopped: {first_line(exc)})")
        finally:
            watcher.close()

    def poll(self, watcher) -> None:
        with watcher.cursor() as cursor:
            cursor.execute(
                """
                SELECT pid, state, extract(epoch FROM now() - coalesce(xact_start, query_start)), query
                FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids(%s))
                """,
                [self.pid],
            )
            rows = cursor.fetchall()
        if not rows:
            return
        self.waited += POLL_SECONDS
        for pid, state, seconds, query in rows:
            if pid in self.blockers:
                continue
            self.blockers.add(pid)
            text = " ".join((query or "").split())
            text = text if len(text) <= QUERY_CHARS else text[: QUERY_CHARS - 3] + "..."
            self.write(
                f"waiting for a lock held by pid {pid} ({state} for {float(seconds or 0):.0f} s: {text})"
            )
            events.lock_wait.send(
                sender=__name__, migration=self.label, pid=pid, state=state, query=query, seconds=seconds
            )
