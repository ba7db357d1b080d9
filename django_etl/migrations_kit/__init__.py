"""The migration machinery: concurrent indexes, lock timeouts with retries, chunked data migrations, checks, backups.

One room for what makes a migration safe on a busy database (docs/migrations.md):

- ``operations.AddIndexConcurrently``: an index built without blocking writes (partitioned tables included);
- ``timeouts``: every migration runs with a lock timeout and a statement timeout, retried a bounded number of times
  (the ``migrate`` command of ``django_etl.core`` applies it to every migration);
- ``chunked.migrate_in_chunks`` (from a ``ResumableRunPython``): data migrations in resumable chunks;
- ``precheck``: counts the existing rows a pending constraint would reject, before anything changes;
- ``backup``, ``archive``, ``restore``: a ``pg_dump`` of the critical tables and the migration state, read back
  and restored;
- ``tracking``: progress, lock waits and duration per migration; ``events``: the signals they send;
- ``safe``: ``safe_migrate`` put together from the above.
"""
