"""pytest plugin loaded before Django settings (``-p tests.support.bootstrap``): picks the test database.

Order of choice: TEST_DATABASE_URL, then DATABASE_URL if it is PostgreSQL, else a throwaway PostgreSQL
started from the local binaries. Each test session gets its own database name, so parallel runs on one
server do not collide.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_etl.settings")

_url = os.environ.get("TEST_DATABASE_URL") or ""
if not _url and os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
    _url = os.environ["DATABASE_URL"]
if not _url:
    from tests.support import throwaway_postgres

    _url = throwaway_postgres.start()
os.environ["DATABASE_URL"] = _url
os.environ.setdefault("TEST_DATABASE_NAME", f"test_django_etl_{os.getpid()}")

# Everything a test writes to disk goes to one temporary folder per session.
SESSION_DIR = tempfile.mkdtemp(prefix="etl-tests-")
os.environ.setdefault("ETL_VAR_DIR", SESSION_DIR)

# Airflow reads its configuration when first imported: one metadata DB (SQLite) and dags folder per session.
_airflow_home = os.path.join(SESSION_DIR, "airflow")
os.makedirs(os.path.join(_airflow_home, "dags"), exist_ok=True)
os.environ.setdefault("AIRFLOW_HOME", _airflow_home)
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", os.path.join(_airflow_home, "dags"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_airflow_home}/airflow.db")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ.setdefault("ETL_DAGS_FOLDER", os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
# Saving a pipeline writes its DAG file on commit (pipelines/signals.py); tests that want it turn it on, so no
# other test finds generated files it did not ask for in the shared dags folder.
os.environ.setdefault("ETL_REGENERATE_ON_SAVE", "false")
