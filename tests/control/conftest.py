"""Fixtures for the catch-up tests: Airflow's REST API over this session's metadata DB, and a recorder whose own
database connection goes through a TCP proxy the test stops and starts."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from tests.support.tcp_proxy import TcpProxy

RECORDER_DATABASES = ["default", "etl_recorder"]
API_USER = "etl-catchup-test"


@pytest.fixture(scope="session")
def airflow_db():
    from airflow.utils.db import initdb

    initdb()


@pytest.fixture(scope="session")
def airflow_api(airflow_db):
    """(base URL, user, password) of Airflow's API served from this process (tests/support/airflow_api_server.py)."""
    from tests.support.airflow_api_server import serve_api

    password = secrets.token_urlsafe(12)
    with serve_api(Path(os.environ["AIRFLOW_HOME"]), API_USER, password) as url:
        yield url, API_USER, password


@pytest.fixture
def api_settings(airflow_api, settings):
    url, username, password = airflow_api
    settings.ETL_AIRFLOW_API_URL = url
    settings.ETL_AIRFLOW_USERNAME = username
    settings.ETL_AIRFLOW_PASSWORD = password
    settings.ETL_AIRFLOW_API_TIMEOUT = 30.0
    return settings


@pytest.fixture(scope="module")
def recorder_proxy(django_db_setup, django_db_blocker):
    """The recorder's alias (its own connection, as in every Airflow process) through a stoppable TCP proxy."""
    from django.db import connections

    from airflow_plugin.writeback import close_connection, setup

    setup()
    alias = connections.settings["etl_recorder"]
    address = (alias["HOST"], alias["PORT"])
    proxy = TcpProxy(alias["HOST"] or "127.0.0.1", int(alias["PORT"] or 5432)).start()
    close_connection()
    alias["HOST"], alias["PORT"] = "127.0.0.1", str(proxy.port)
    try:
        yield proxy
    finally:
        close_connection()
        alias["HOST"], alias["PORT"] = address
        proxy.stop()
