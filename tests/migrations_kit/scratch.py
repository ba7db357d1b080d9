"""Throwaway PostgreSQL databases on the test server, each reachable in-process as its own connection alias.

The migration tests unapply, lock and restore schemas; they do it in a database of their own, never in the
session's test database. ``migrated_template()`` migrates one database per session; ``scratch_database()``
copies it (``CREATE DATABASE ... TEMPLATE``, a file copy: fast) or starts empty.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.core.management import call_command
from django.db import connections


def server_settings() -> dict:
    return dict(connections["default"].settings_dict)


def admin_connection() -> psycopg.Connection:
    base = server_settings()
    return psycopg.connect(
        host=base["HOST"] or None,
        port=base["PORT"] or None,
        user=base["USER"] or None,
        password=base["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


def psycopg_connect(name: str, **kwargs) -> psycopg.Connection:
    """A plain psycopg connection to database ``name`` (another session, e.g. one that holds a lock)."""
    base = server_settings()
    return psycopg.connect(
        host=base["HOST"] or None,
        port=base["PORT"] or None,
        user=base["USER"] or None,
        password=base["PASSWORD"] or None,
        dbname=name,
        **kwargs,
    )


def register(name: str):
    """A Django connection to database ``name`` under the alias ``name`` (this thread)."""
    wrapper_class = type(connections["default"])
    wrapper = wrapper_class({**server_settings(), "NAME": name}, alias=name)
    connections[name] = wrapper
    return wrapper


def unregister(name: str) -> None:
    wrapper = connections[name]
    wrapper.close()
    del connections[name]


def drop(name: str) -> None:
    with admin_connection() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_database(*, template: str | None = None, prefix: str = "etl_scratch") -> Iterator:
    """A new database (a copy of ``template`` if given), registered as a connection; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        wrapper = register(name)
        try:
            yield wrapper
        finally:
            unregister(name)
    finally:
        drop(name)


def migrate(alias: str, *args: str, **options) -> None:
    options.setdefault("verbosity", 0)
    call_command("migrate", *args, database=alias, interactive=False, **options)


def create_migrated_template() -> str:
    """A fully migrated database to copy from; the caller drops it (``drop(name)``)."""
    name = f"etl_template_{uuid.uuid4().hex[:10]}"
    with admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    register(name)
    try:
        migrate(name)
    finally:
        unregister(name)  # no session may be left on a template database
    return name


def runs_after_initial() -> list[str]:
    """The runs app's migrations after 0001_initial, in order (what migrating back to 0001 leaves pending)."""
    from django.db.migrations.loader import MigrationLoader

    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    leaf = next(node for node in graph.leaf_nodes() if node[0] == "runs")
    return [name for app, name in graph.forwards_plan(leaf) if app == "runs" and name != "0001_initial"]
