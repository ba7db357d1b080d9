"""Settings come from the environment and refuse development secrets when DEBUG is off."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def load_settings(tmp_path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ETL_", "DATABASE_URL"))}
    clean.update({"ETL_VAR_DIR": str(tmp_path), **env})
    code = "import django_etl.settings as s; print(s.DATABASES['default']['ENGINE'], s.DEBUG)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)


def test_settings_default_to_embedded_sqlite(tmp_path):
    result = load_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "True"]


def test_settings_refuse_dev_secret_key_without_debug(tmp_path):
    result = load_settings(tmp_path, DJANGO_DEBUG="false")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_settings_refuse_dev_credential_key_without_debug(tmp_path):
    result = load_settings(tmp_path, DJANGO_DEBUG="false", DJANGO_SECRET_KEY="x" * 50)
    assert result.returncode != 0
    assert "ETL_CREDENTIAL_KEYS" in result.stderr


def test_settings_production_with_postgres_url(tmp_path):
    result = load_settings(
        tmp_path,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="x" * 50,
        ETL_CREDENTIAL_KEYS=f"k1:{Fernet.generate_key().decode()}",
        DATABASE_URL="postgres://etl:pw@db.internal:5432/etl",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "False"]


def test_settings_reject_non_boolean_debug(tmp_path):
    result = load_settings(tmp_path, DJANGO_DEBUG="maybe")
    assert "DJANGO_DEBUG='maybe' is not a boolean" in result.stderr
