"""Signals the migration machinery sends while it works: what the monitor prints and what tests wait for.

Receivers get keyword arguments only; ``sender`` is the module that sends. They may run in another thread
(``lock_wait`` comes from the lock watcher's thread).
"""

from __future__ import annotations

from django.dispatch import Signal

# A migration failed on a lock timeout and will run again: migration (label), attempt, retries, wait, error.
lock_retry = Signal()
# A migrating session waits for a lock another session holds: migration, pid, state, query, seconds.
lock_wait = Signal()
# A concurrent index build moved on: index, table, step ("parent", "build", "attach", "done"), position, total.
index_build = Signal()
# A chunked data migration committed a chunk: name, done, total, resumed.
chunk_done = Signal()
