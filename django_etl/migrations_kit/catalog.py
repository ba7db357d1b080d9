"""What the migration machinery asks PostgreSQL's catalog, and session settings changed for a while.

Names are unqualified and resolved through the session's ``search_path``, as Django resolves them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


def is_postgresql(connection) -> bool:
    return connection.vendor == "postgresql"


def quoted(connection, name: str) -> str:
    return connection.ops.quote_name(name)


def is_partitioned(connection, table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [quoted(connection, table)]
        )
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def partitions(connection, table: str) -> list[tuple[str, bool]]:
    """The direct partitions of ``table``, each with whether it is partitioned itself, by name."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname, child.relkind = 'p'
            FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid
            WHERE pg_inherits.inhparent = to_regclass(%s)
            ORDER BY child.relname
            """,
            [quoted(connection, table)],
        )
        return [(name, nested) for name, nested in cursor.fetchall()]


@dataclass(frozen=True)
class IndexState:
    table: str
    valid: bool


def index_state(connection, index: str) -> IndexState | None:
    """The table an index belongs to and whether it is valid; None when there is no such index."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT table_class.relname, pg_index.indisvalid
            FROM pg_index JOIN pg_class table_class ON table_class.oid = pg_index.indrelid
            WHERE pg_index.indexrelid = to_regclass(%s)
            """,
            [quoted(connection, index)],
        )
        row = cursor.fetchone()
    return IndexState(table=row[0], valid=row[1]) if row else None


def attached_index(connection, parent_index: str, partition: str) -> str | None:
    """The index of ``partition`` attached to the partitioned index ``parent_index``, if there is one."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname
            FROM pg_inherits
            JOIN pg_class child ON child.oid = pg_inherits.inhrelid
            JOIN pg_index ON pg_index.indexrelid = child.oid
            WHERE pg_inherits.inhparent = to_regclass(%s) AND pg_index.indrelid = to_regclass(%s)
            """,
            [quoted(connection, parent_index), quoted(connection, partition)],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def current_settings(connection, *names: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(["current_setting(%s)"] * len(names)), list(names))
        return dict(zip(names, cursor.fetchone(), strict=True))


def set_session(connection, values: dict[str, str]) -> None:
    """SET each setting for the session (not ``SET LOCAL``: it must outlive the migration's transaction)."""
    with connection.cursor() as cursor:
        for name, value in values.items():
            cursor.execute("SELECT set_config(%s, %s, false)", [name, value])


@contextmanager
def session_settings(connection, values: dict[str, str]) -> Iterator[dict[str, str]]:
    """Set session settings for the block and put back what was there; yields the previous values."""
    previous = current_settings(connection, *values)
    set_session(connection, values)
    try:
        yield previous
    finally:
        set_session(connection, previous)


def backend_pid(connection) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]
