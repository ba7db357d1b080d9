"""Migrations match the models, both SQLite and PostgreSQL migrate from zero, and every migration reverses."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.db.migrations.executor import MigrationExecutor

from tests.migrations_kit import scratch
from tests.migrations_kit.seed import seed_rows

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args: str, database_url: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url, "ETL_VAR_DIR": str(tmp_path), "DJANGO_DEBUG": "true"}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.django_db
def test_makemigrations_check_is_clean():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_sqlite_migrates_from_zero(tmp_path):
    result = run_manage("migrate", database_url=f"sqlite:///{tmp_path / 'fresh.sqlite3'}", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Applying runs.0001_initial... OK" in result.stdout
    # The concurrent index falls back to a plain CREATE INDEX on SQLite.
    assert "Applying runs.0002_task_runs_status_run_idx... OK" in result.stdout
    with sqlite3.connect(tmp_path / "fresh.sqlite3") as db:
        [sql] = db.execute("SELECT sql FROM sqlite_master WHERE name = 'task_runs_status_run_idx'").fetchone()
    assert '"status", "run_started_at"' in sql


@pytest.mark.integration
def test_postgresql_migrates_from_zero_and_back(tmp_path):
    from django.conf import settings

    base = settings.DATABASES["default"]
    name = f"etl_migrate_{uuid.uuid4().hex[:8]}"
    conninfo = dict(host=base["HOST"], port=base["PORT"] or 5432, user=base["USER"], dbname="postgres")
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgres://{base['USER']}@{base['HOST']}:{base['PORT'] or 5432}/{name}"
    try:
        forward = run_manage("migrate", database_url=url, tmp_path=tmp_path)
        assert forward.returncode == 0, forward.stderr
        backward = run_manage("migrate", "runs", "zero", database_url=url, tmp_path=tmp_path)
        assert backward.returncode == 0, backward.stderr
        again = run_manage("migrate", database_url=url, tmp_path=tmp_path)
        assert again.returncode == 0, again.stderr
    finally:
        with psycopg.connect(**conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def table_rows(connection) -> dict[str, set[str]]:
    """Every table's primary keys (as text)."""
    rows = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            key = connection.introspection.get_primary_key_column(cursor, table)
            qn = connection.ops.quote_name
            cursor.execute(f"SELECT {qn(key)}::text FROM {qn(table)}")
            rows[table] = {row[0] for row in cursor.fetchall()}
    return rows


def parent_in_app(graph, key) -> str | None:
    """The target that unapplies ``key`` and nothing before it: its parent in the same app, or zero."""
    parents = [parent for parent in graph.node_map[key].parents if parent.key[0] == key[0]]
    return parents[0].key[1] if parents else None


def one_step(connection, target, expected) -> None:
    """Migrate to ``target``; the plan must be exactly ``expected`` [(app, name, backwards)]; rows must survive."""
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan([target])
    assert [(m.app_label, m.name, backwards) for m, backwards in plan] == expected
    before = table_rows(connection)
    executor.migrate([target], plan=plan)
    after = table_rows(connection)
    step = f"{'unapplying' if expected[0][2] else 'applying'} {expected[0][0]}.{expected[0][1]}"
    for table in (before.keys() & after.keys()) - {"django_migrations"}:  # the bookkeeping changes, of course
        lost = before[table] - after[table]
        assert not lost, f"{step} lost {len(lost)} row(s) of {table}"


@pytest.mark.integration
def test_every_migration_unapplies_and_reapplies_keeping_rows(django_db_blocker):
    """Down one step, up again, down again, for every migration of every app, with rows in the tables."""
    with django_db_blocker.unblock(), scratch.scratch_database(prefix="etl_walk") as connection:
        scratch.migrate(connection.alias)
        seed_rows(connection.alias)
        from django.apps import apps

        rows = table_rows(connection)
        model_tables = {model._meta.db_table for model in apps.get_models(include_auto_created=True)}
        assert not [table for table in sorted(model_tables) if not rows.get(table)]

        executor = MigrationExecutor(connection)
        graph = executor.loader.graph
        full_plan = [m for m, _ in executor.migration_plan(graph.leaf_nodes(), clean_start=True)]
        assert {m.app_label for m in full_plan} >= {
            "auth",
            "contenttypes",
            "admin",
            "sessions",
            "core",
            "runs",
        }
        for migration in reversed(full_plan):
            key = (migration.app_label, migration.name)
            below = (key[0], parent_in_app(graph, key))
            one_step(connection, below, [(*key, True)])
            one_step(connection, key, [(*key, False)])
            one_step(connection, below, [(*key, True)])

        assert table_rows(connection).keys() <= {"django_migrations"}
        scratch.migrate(connection.alias)
        assert MigrationExecutor(connection).migration_plan(graph.leaf_nodes()) == []
