"""Fixtures of the catch-up tests in this folder: Airflow's REST API served in-process, the recorder behind a proxy."""

from __future__ import annotations

from tests.support.airflow_api_server import airflow_api, api_settings  # noqa: F401 (fixtures)
from tests.support.tcp_proxy import recorder_proxy  # noqa: F401 (fixture)
