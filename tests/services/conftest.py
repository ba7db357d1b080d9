"""One started set of real services for every slow test of this folder: `make airflow`'s code path
(deploy/services.py) on a scratch Airflow database and the test session's Django database.

Started once per session (about a minute), stopped at the end of the session — also when a test fails or the
set-up itself fails — process group by process group, by the pids it recorded.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from cryptography.fernet import Fernet

from deploy.services import Services, default_names, scratch_environment


def session_server() -> str:
    """``postgresql://user@host:port`` of the test session's Django database."""
    from django.db import connection

    db = connection.settings_dict
    return f"postgresql://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"


def session_environment(home: Path, airflow_db: str, **extra: str) -> dict[str, str]:
    """Scratch services' variables on the session's Django database, its key ring and its file roots."""
    from django.conf import settings
    from django.db import connection

    server = session_server()
    return scratch_environment(
        home,
        database_url=f"{server}/{connection.settings_dict['NAME']}",
        airflow_database_url=f"{server}/{airflow_db}",
        # The session's ring (what its credentials are encrypted with) plus a fresh key: DEBUG off refuses the
        # development ring alone.
        ETL_CREDENTIAL_KEYS=f"{settings.ETL_CREDENTIAL_KEYS},services:{Fernet.generate_key().decode()}",
        ETL_CREDENTIAL_CURRENT_KEY=settings.ETL_CREDENTIAL_KEYS.split(":", 1)[0],
        ETL_VAR_DIR=str(settings.ETL_VAR_DIR),
        ETL_FILE_ROOTS=",".join(settings.ETL_FILE_ROOTS),
        ETL_NETWORK_ALLOW=",".join(getattr(settings, "ETL_NETWORK_ALLOW", []) or []),
        ETL_DUCKDB_THREADS="1",
        # A new file is found within 30 s under `make airflow`; 5 s here keeps the session short.
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        **extra,
    )


@contextlib.contextmanager
def running_services(home: Path, django_db_blocker, *, admin: bool = True, **extra: str):
    """Services of deploy/services.py on a scratch Airflow database and the session's Django database, stopped
    (and the scratch database dropped) when the block ends, also when the set-up itself fails."""
    server = session_server()
    airflow_db = f"airflow_{home.name}_{os.getpid()}".replace("-", "_")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as maintenance:
        maintenance.execute(f'DROP DATABASE IF EXISTS "{airflow_db}" WITH (FORCE)')
        maintenance.execute(f'CREATE DATABASE "{airflow_db}"')
    env = session_environment(home, airflow_db, **extra)
    cluster = Services(home=home, env=env, names=default_names(env, admin=admin))
    try:
        with django_db_blocker.unblock():
            cluster.prepare(django_migrate=False)  # the test session migrated Django's database
        cluster.start()
        cluster.wait_healthy(timeout=240)
        yield cluster
    finally:
        cluster.stop()
        with psycopg.connect(f"{server}/postgres", autocommit=True) as maintenance:
            maintenance.execute(f'DROP DATABASE IF EXISTS "{airflow_db}" WITH (FORCE)')


@pytest.fixture(scope="session")
def services_recorder_proxy(django_db_setup):
    """A TCP proxy in front of PostgreSQL that the session's services write back through (their
    ETL_RECORDER_DATABASE_URL): a test stops it to cut write-back's own connection, as an outage would."""
    from django.db import connection

    from tests.support.tcp_proxy import TcpProxy

    db = connection.settings_dict
    with TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def services(django_db_setup, django_db_blocker, tmp_path_factory, services_recorder_proxy):
    from django.db import connection

    db = connection.settings_dict
    login = quote(db["USER"] or "postgres") + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    recorder_url = f"postgresql://{login}@127.0.0.1:{services_recorder_proxy.port}/{db['NAME']}"
    with running_services(
        tmp_path_factory.mktemp("services"),
        django_db_blocker,
        ETL_RECORDER_DATABASE_URL=recorder_url,
        ETL_CATCHUP_SCHEDULE="off",  # the outage test triggers etl_catchup itself
    ) as cluster:
        yield cluster


def point_at(cluster: Services, settings) -> Services:
    """This process (the admin's side) pointed at ``cluster``: Airflow's API, its dags folder and staging."""
    env = cluster.env
    settings.ETL_AIRFLOW_API_URL = env["ETL_AIRFLOW_API_URL"]
    settings.ETL_AIRFLOW_USERNAME = env["ETL_AIRFLOW_USERNAME"]
    settings.ETL_AIRFLOW_PASSWORD = env["ETL_AIRFLOW_PASSWORD"]
    settings.ETL_AIRFLOW_API_TIMEOUT = 30.0
    settings.ETL_DAGS_FOLDER = Path(env["ETL_DAGS_FOLDER"])
    settings.ETL_STAGING_URL = env["ETL_STAGING_URL"]
    for name in (
        "ETL_STAGING_S3_ENDPOINT_URL",
        "ETL_STAGING_S3_ACCESS_KEY_ID",
        "ETL_STAGING_S3_SECRET_ACCESS_KEY",
    ):
        if env.get(name):
            setattr(settings, name, env[name])
    settings.ETL_REGENERATE_ON_SAVE = True
    return cluster


@pytest.fixture
def controlled(services, settings):
    """This process (the admin's side) pointed at the session's services."""
    return point_at(services, settings)


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
