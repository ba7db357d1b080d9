"""One started set of real services for every slow test of this folder: `make airflow`'s code path
(deploy/services.py) on a scratch Airflow database and the test session's Django database.

Started once per session (about a minute), stopped at the end of the session — also when a test fails or the
set-up itself fails — process group by process group, by the pids it recorded.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet

from deploy.services import Services, service_environment
from tests.support.airflow_processes import free_port

# What the test session set for its in-process Airflow and Django must not leak into the services.
_SESSION_PREFIXES = ("AIRFLOW", "ETL_", "DJANGO_", "DATABASE_URL", "PYTEST")


@pytest.fixture(scope="session")
def services(django_db_setup, django_db_blocker, tmp_path_factory):
    from django.conf import settings
    from django.db import connection

    home = tmp_path_factory.mktemp("services")
    db = connection.settings_dict
    server = f"postgresql://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    airflow_db = f"airflow_services_{os.getpid()}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{airflow_db}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{airflow_db}"')
    fernet = Fernet.generate_key().decode()
    base = {k: v for k, v in os.environ.items() if not k.startswith(_SESSION_PREFIXES)}
    base.update(
        {
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
            "DATABASE_URL": f"{server}/{db['NAME']}",
            # The session's ring (what its credentials are encrypted with) plus a fresh key: DEBUG off refuses
            # the development ring alone.
            "ETL_CREDENTIAL_KEYS": f"{settings.ETL_CREDENTIAL_KEYS},services:{Fernet.generate_key().decode()}",
            "ETL_CREDENTIAL_CURRENT_KEY": settings.ETL_CREDENTIAL_KEYS.split(":", 1)[0],
            "ETL_VAR_DIR": str(settings.ETL_VAR_DIR),
            "ETL_FILE_ROOTS": ",".join(settings.ETL_FILE_ROOTS),
            "ETL_STAGING_URL": str(home / "staging"),
            "ETL_DAGS_FOLDER": str(home / "dags" / "generated"),
            "ETL_NETWORK_ALLOW": ",".join(getattr(settings, "ETL_NETWORK_ALLOW", []) or []),
            "ETL_DUCKDB_THREADS": "1",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{server}/{airflow_db}".replace(
                "postgresql://", "postgresql+psycopg2://"
            ),
            "AIRFLOW__CORE__FERNET_KEY": fernet,
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW_API_PORT": str(free_port()),
            "ETL_ADMIN_PORT": str(free_port()),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(12),
            "ETL_AIRFLOW_PASSWORD": secrets.token_urlsafe(12),
            # A new file is found within 30 s under `make airflow`; 5 s here keeps the session short.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        }
    )
    (home / "dags" / "generated").mkdir(parents=True)
    cluster = Services(home=home, env=service_environment(base, home))
    try:
        with django_db_blocker.unblock():
            cluster.prepare(django_migrate=False)  # the test session migrated Django's database
        cluster.start()
        cluster.wait_healthy(timeout=240)
        yield cluster
    finally:
        cluster.stop()
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{airflow_db}" WITH (FORCE)')


@pytest.fixture
def controlled(services, settings):
    """This process (the admin's side) pointed at the services: Airflow's API, the same dags folder, regeneration."""
    env = services.env
    settings.ETL_AIRFLOW_API_URL = env["ETL_AIRFLOW_API_URL"]
    settings.ETL_AIRFLOW_USERNAME = env["ETL_AIRFLOW_USERNAME"]
    settings.ETL_AIRFLOW_PASSWORD = env["ETL_AIRFLOW_PASSWORD"]
    settings.ETL_AIRFLOW_API_TIMEOUT = 30.0
    settings.ETL_DAGS_FOLDER = Path(env["ETL_DAGS_FOLDER"])
    settings.ETL_STAGING_URL = env["ETL_STAGING_URL"]
    settings.ETL_REGENERATE_ON_SAVE = True
    return services


def wait_for(what: str, check, services: Services, timeout: float = 240, every: float = 0.5):
    """Poll ``check`` until it returns something truthy; a stopped service or the timeout fails the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        services.check_alive()
        found = check()
        if found:
            return found
        time.sleep(every)
    raise TimeoutError(f"{what} within {timeout} s; see {services.logs}")
