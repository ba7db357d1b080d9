"""Fixtures for the catch-up tests: Airflow's REST API over this session's metadata DB, and a recorder whose own
database connection goes through a TCP proxy the test stops and starts."""

from __future__ import annotations

import pytest

from tests.support.airflow_api_server import airflow_api, api_settings  # noqa: F401 (fixtures)
from tests.support.tcp_proxy import recorder_proxy  # noqa: F401 (fixture)

RECORDER_DATABASES = ["default", "etl_recorder"]


@pytest.fixture(scope="session")
def airflow_db():
    from airflow.utils.db import initdb

    initdb()
