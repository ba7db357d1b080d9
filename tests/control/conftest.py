"""Fixtures for the catch-up tests (Airflow's API in-process and the recorder's proxy come from tests/support)."""

from __future__ import annotations

import pytest

RECORDER_DATABASES = ["default", "etl_recorder"]


@pytest.fixture(scope="session")
def airflow_db():
    from airflow.utils.db import initdb

    initdb()
