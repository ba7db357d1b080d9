"""Airflow's real REST API served from the test process (uvicorn on a thread) over the session's metadata DB.

What ``dag.test()`` runs in this process is what the API answers, so Django's client (django_etl.control.
airflow_api) is tested against Airflow itself, not a stand-in, without starting an api-server process (about
3 s instead of 15). The simple auth manager signs in one service account whose password the caller chooses.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.airflow_processes import free_port

API_USER = "etl-catchup-test"


@contextlib.contextmanager
def serve_api(home: Path, username: str, password: str) -> Iterator[str]:
    """Start the core API (``/api/v2``, ``/auth/token``) on a free loopback port; yields its base URL."""
    import uvicorn
    from airflow.configuration import conf

    passwords = home / "catchup_api_passwords.json"
    passwords.write_text(json.dumps({username: password}))
    conf.set("core", "simple_auth_manager_users", f"{username}:admin")
    conf.set("core", "simple_auth_manager_passwords_file", str(passwords))
    if not conf.get("api_auth", "jwt_secret", fallback=""):
        conf.set("api_auth", "jwt_secret", secrets.token_hex(32))
    from airflow.api_fastapi.app import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app("core"), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="airflow-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("Airflow's API did not start in this process")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        with contextlib.suppress(OSError):
            os.unlink(passwords)


@pytest.fixture(scope="session")
def airflow_api(airflow_db):
    """(base URL, user, password) of Airflow's API served from this process over the session's metadata DB."""
    password = secrets.token_urlsafe(12)
    with serve_api(Path(os.environ["AIRFLOW_HOME"]), API_USER, password) as url:
        yield url, API_USER, password


@pytest.fixture
def api_settings(airflow_api, settings):
    """Django's client of Airflow (ETL_AIRFLOW_*) pointed at that API."""
    url, username, password = airflow_api
    settings.ETL_AIRFLOW_API_URL = url
    settings.ETL_AIRFLOW_USERNAME = username
    settings.ETL_AIRFLOW_PASSWORD = password
    settings.ETL_AIRFLOW_API_TIMEOUT = 30.0
    return settings
