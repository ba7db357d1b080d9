"""The data plane imports in a bare interpreter: no Django, no Airflow, no driver until an adapter needs one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES = [
    "django_etl.dataplane",
    "django_etl.dataplane.api",
    "django_etl.dataplane.base",
    "django_etl.dataplane.batches",
    "django_etl.dataplane.files",
    "django_etl.dataplane.formats",
    "django_etl.dataplane.ledger",
    "django_etl.dataplane.objectstore",
    "django_etl.dataplane.postgres",
    "django_etl.dataplane.sqlite",
    "django_etl.dataplane.staging",
]


def test_dataplane_imports_without_django_or_airflow(tmp_path):
    import sqlite3

    sqlite3.connect(tmp_path / "w.db").close()  # checks open the file read-only: it must exist
    code = (
        f"import {', '.join(MODULES)}\n"
        "import sys\n"
        "from django_etl.dataplane import adapter_for\n"
        "adapter = adapter_for({'type': 'database', 'name': 'w', 'secret': {},\n"
        "    'config': {'engine': 'sqlite', 'path': sys.argv[1]}})\n"
        "print(adapter.check())\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules})\n"
        "heavy = [m for m in ('django', 'airflow', 'psycopg', 'boto3', 'requests') if m in loaded]\n"
        "assert not heavy, heavy\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "w.db")],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT), "ETL_FILE_ROOTS": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "opened SQLite file with 0 table(s)" in result.stdout


def test_dataplane_reads_file_roots_from_the_environment_without_django(tmp_path):
    (tmp_path / "a.csv").write_text("id\n1\n2\n")
    code = (
        "import sys\n"
        "from django_etl.dataplane import adapter_for\n"
        "adapter = adapter_for({'type': 'file', 'name': 'f', 'secret': {}, 'config': {'root': sys.argv[1]}})\n"
        "print(sum(b.num_rows for b in adapter.read({'path': 'a.csv'}, 10)))\n"
        "assert 'django' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT), "ETL_FILE_ROOTS": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"
