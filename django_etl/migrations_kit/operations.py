"""AddIndexConcurrently: an index added without blocking writes, partitioned tables included.

``CREATE INDEX`` holds a SHARE lock on the table for the whole build: on a large ``task_runs`` every write-back
waits minutes. ``CREATE INDEX CONCURRENTLY`` does not block writes, but cannot run in a transaction (the
migration must say ``atomic = False``) nor on a partitioned table. So on PostgreSQL:

- a plain table: ``CREATE INDEX CONCURRENTLY``;
- a partitioned table: ``CREATE INDEX ... ON ONLY`` the parent (an empty, invalid index: instant), each
  partition's index built ``CONCURRENTLY``, then ``ALTER INDEX ... ATTACH PARTITION``; the parent index turns
  valid when the last partition is attached. Partitions created meanwhile get their index from PostgreSQL.

An interrupted build (a lock timeout, a killed process) leaves an INVALID index: running again drops it
(``DROP INDEX CONCURRENTLY``) and builds it anew, keeps the partitions' indexes already attached, and skips an
index that is complete. That makes the operation ``retry_safe``. The builds themselves run without lock and
statement timeouts: they block no reader or writer while they wait, and failing after a long scan would waste
it. On SQLite (and other databases) it is a plain ``CREATE INDEX``.

Reversing drops the index (``DROP INDEX CONCURRENTLY`` on a plain table; on a partitioned table a plain
``DROP INDEX``, which PostgreSQL requires and which is quick, under the migration's lock timeout).
"""

from __future__ import annotations

from django.db import NotSupportedError
from django.db.backends.utils import truncate_name
from django.db.migrations.operations import AddConstraint, AddIndex

from django_etl.migrations_kit import catalog, events

# Builds wait for transactions that started before them; those waits block no other session.
BUILD_SETTINGS = {"lock_timeout": "0", "statement_timeout": "0"}


class AddIndexConcurrently(AddIndex):
    """Same model state as ``AddIndex``; the database work is done without blocking writers."""

    # timeouts.retry_safe: running it again after it failed part-way resumes the build.
    retry_safe = True

    def describe(self) -> str:
        return f"{super().describe()} (concurrently)"

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if not catalog.is_postgresql(schema_editor.connection):
            schema_editor.add_index(model, self.index)
            return
        ensure_not_in_transaction(schema_editor, self.index.name)
        ConcurrentBuild(schema_editor, model, self.index).run()

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        connection = schema_editor.connection
        if not catalog.is_postgresql(connection):
            schema_editor.remove_index(model, self.index)
            return
        ensure_not_in_transaction(schema_editor, self.index.name)
        partitioned = catalog.is_partitioned(connection, model._meta.db_table)
        # DROP INDEX CONCURRENTLY cannot drop a partitioned index; a plain DROP of one is quick.
        schema_editor.remove_index(model, self.index, concurrently=not partitioned)


def ensure_not_in_transaction(schema_editor, index_name: str) -> None:
    if schema_editor.connection.in_atomic_block:
        raise NotSupportedError(
            f"AddIndexConcurrently ({index_name}) cannot run inside a transaction: set `atomic = False` on "
            "its migration, and keep it the only operation there (docs/migrations.md)."
        )


class ConcurrentBuild:
    """One index built concurrently on one model's table (see the module docstring)."""

    def __init__(self, schema_editor, model, index) -> None:
        self.editor = schema_editor
        self.connection = schema_editor.connection
        self.model = model
        self.index = index
        self.table = model._meta.db_table

    def run(self) -> None:
        if catalog.is_partitioned(self.connection, self.table):
            self.build_partitioned(self.table, self.index.name)
        else:
            self.build_plain(self.table, self.index.name)
        self.emit("done", 0, 0, self.table)

    def build_plain(self, table: str, name: str) -> None:
        state = catalog.index_state(self.connection, name)
        if state is not None and state.table != table:
            raise NotSupportedError(f"index {name} exists already, on table {state.table}, not on {table}")
        if state is not None and state.valid:
            return  # built by an earlier run that stopped after it
        if state is not None:
            self.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {self.quote(name)}", build=True)
        self.execute(self.create_sql(table, name, concurrently=True), build=True)

    def build_partitioned(self, table: str, name: str) -> None:
        state = catalog.index_state(self.connection, name)
        if state is not None and state.valid:
            return
        if state is None:
            self.emit("parent", 0, 0, table)
            self.execute(self.create_sql(table, name, concurrently=False, only=True))
        # Until every partition has one, loop: a partition created meanwhile gets its index from PostgreSQL.
        for _ in range(3):
            missing = [
                (partition, nested)
                for partition, nested in catalog.partitions(self.connection, table)
                if catalog.attached_index(self.connection, name, partition) is None
            ]
            for position, (partition, nested) in enumerate(missing, start=1):
                child = child_index_name(partition, table, name, self.connection)
                self.emit("build", position, len(missing), partition)
                if nested:
                    self.build_partitioned(partition, child)
                else:
                    self.build_plain(partition, child)
                self.emit("attach", position, len(missing), partition)
                self.execute(f"ALTER INDEX {self.quote(name)} ATTACH PARTITION {self.quote(child)}")
            if self.editor.collect_sql:
                return  # sqlmigrate: the statements are shown, not run
            state = catalog.index_state(self.connection, name)
            if state is not None and state.valid:
                return
        raise NotSupportedError(
            f"index {name} on {table} is still invalid after attaching every partition's index; run the "
            "migration again (it resumes), and see docs/migrations.md if it stays invalid"
        )

    def create_sql(self, table: str, name: str, *, concurrently: bool, only: bool = False) -> str:
        """Django's SQL for the index (fields, order, condition, opclasses), aimed at ``table`` as ``name``."""
        statement = self.index.create_sql(self.model, self.editor, concurrently=concurrently)
        statement.rename_table_references(self.table, table)
        statement.parts["name"] = self.quote(name)
        if only:
            statement.template = statement.template.replace(" ON %(table)s", " ON ONLY %(table)s", 1)
        return str(statement)

    def execute(self, sql: str, *, build: bool = False) -> None:
        if not build:
            self.editor.execute(sql, params=None)
            return
        with catalog.session_settings(self.connection, BUILD_SETTINGS):
            self.editor.execute(sql, params=None)

    def quote(self, name: str) -> str:
        return self.editor.quote_name(name)

    def emit(self, step: str, position: int, total: int, table: str) -> None:
        events.index_build.send(
            sender=__name__, index=self.index.name, table=table, step=step, position=position, total=total
        )


def child_index_name(partition: str, table: str, parent_index: str, connection) -> str:
    """task_runs_status_run_idx on task_runs_y2026m11 -> task_runs_y2026m11_status_run_idx (<= 63 chars)."""
    suffix = parent_index[len(table) + 1 :] if parent_index.startswith(f"{table}_") else parent_index
    return truncate_name(f"{partition}_{suffix}", connection.ops.max_name_length())


class AddUniqueConstraintConcurrently(AddConstraint):
    """A partial (conditional) unique constraint built as ``CREATE UNIQUE INDEX CONCURRENTLY``.

    PostgreSQL enforces a ``UniqueConstraint(condition=...)`` with a unique index, which ``AddConstraint``
    builds under a SHARE lock (every writer of the table waits for the build). This one builds it the way
    ``AddIndexConcurrently`` builds an index (same resumption after an interrupted build, same model state as
    ``AddConstraint``). Plain tables only: PostgreSQL has no concurrent build of a partitioned unique index.
    """

    retry_safe = True

    def describe(self) -> str:
        return f"{super().describe()} (concurrently)"

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        connection = schema_editor.connection
        if not catalog.is_postgresql(connection):
            schema_editor.add_constraint(model, self.constraint)
            return
        if self.constraint.condition is None or catalog.is_partitioned(connection, model._meta.db_table):
            raise NotSupportedError(
                f"AddUniqueConstraintConcurrently ({self.constraint.name}) builds partial unique indexes on "
                "plain tables only"
            )
        ensure_not_in_transaction(schema_editor, self.constraint.name)
        ConcurrentBuild(schema_editor, model, _UniqueIndex(self.constraint)).run()

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if not catalog.is_postgresql(schema_editor.connection):
            schema_editor.remove_constraint(model, self.constraint)
            return
        ensure_not_in_transaction(schema_editor, self.constraint.name)
        name = schema_editor.quote_name(self.constraint.name)
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}", params=None)


class _UniqueIndex:
    """What ConcurrentBuild needs of an index (a name, its SQL), for a partial unique constraint."""

    def __init__(self, constraint) -> None:
        self.constraint = constraint
        self.name = constraint.name

    def create_sql(self, model, schema_editor, concurrently: bool = False):
        statement = self.constraint.create_sql(model, schema_editor)
        if concurrently:
            statement.template = statement.template.replace(
                "CREATE UNIQUE INDEX ", "CREATE UNIQUE INDEX CONCURRENTLY ", 1
            )
        return statement
