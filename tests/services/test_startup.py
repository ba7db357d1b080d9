"""With DEBUG off every process refuses to start without its database URL and key ring (no silent SQLite)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def start_django(tmp_path, **env: str) -> subprocess.CompletedProcess:
    """A fresh process that sets Django up the way every Airflow component and the admin do."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ETL_", "DATABASE_URL"))}
    clean.update({"ETL_VAR_DIR": str(tmp_path), **env})
    code = "from django_etl.startup import setup_django; setup_django(); print('started')"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)


PRODUCTION = {"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "x" * 50}


def test_startup_without_debug_refuses_missing_database_url(tmp_path):
    result = start_django(tmp_path, **PRODUCTION, ETL_CREDENTIAL_KEYS=f"k1:{Fernet.generate_key().decode()}")
    assert result.returncode != 0
    assert "DATABASE_URL is not set" in result.stderr
    assert not (tmp_path / "db.sqlite3").exists()


def test_startup_without_debug_refuses_missing_key_ring(tmp_path):
    result = start_django(tmp_path, **PRODUCTION, DATABASE_URL="postgres://etl@127.0.0.1:5432/etl")
    assert result.returncode != 0
    assert "ETL_CREDENTIAL_KEYS" in result.stderr


def test_startup_without_debug_accepts_complete_environment(tmp_path):
    result = start_django(
        tmp_path,
        **PRODUCTION,
        DATABASE_URL="postgres://etl@127.0.0.1:5432/etl",
        ETL_CREDENTIAL_KEYS=f"k1:{Fernet.generate_key().decode()}",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"


def test_startup_with_debug_keeps_embedded_sqlite(tmp_path):
    result = start_django(tmp_path)
    assert result.returncode == 0, result.stderr
