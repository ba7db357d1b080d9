"""Migrations match the models, and both SQLite and PostgreSQL migrate from zero."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command

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
