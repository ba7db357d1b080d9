"""Real Airflow processes for slow tests: scheduler, dag-processor and api-server on a scratch PostgreSQL DB.

Everything is bound to 127.0.0.1, runs with LocalExecutor and parallelism 2, and is stopped (process group
by process group) by ``stop()``, which the tests call in a ``finally``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from cryptography.fernet import Fernet

from deploy.services import free_port

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")


class AirflowCluster:
    """One Airflow deployment in ``home``, its metadata in PostgreSQL database ``db_name`` (recreated)."""

    def __init__(self, home: Path, pg_url: str, db_name: str, extra_env: dict[str, str]) -> None:
        self.home = home
        self.pg_url = pg_url  # a URL to the server's maintenance database, e.g. .../postgres
        self.db_name = db_name
        self.dags = home / "dags"
        self.dags.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.processes: list[subprocess.Popen] = []
        server = pg_url.rsplit("/", 1)[0]
        self.env = {
            **os.environ,
            **extra_env,
            "PYTHONPATH": str(REPO),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{server}/{db_name}".replace(
                "postgres://", "postgresql://"
            ),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        }

    def _admin(self, sql: str) -> None:
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            conn.execute(sql)

    def start(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{self.db_name}"')
        subprocess.run([AIRFLOW, "db", "migrate"], env=self.env, check=True, capture_output=True, timeout=300)
        for command in (
            ["api-server", "--host", "127.0.0.1", "--port", str(self.port)],
            ["scheduler"],
            ["dag-processor"],
        ):
            log = open(self.home / f"{command[0]}.log", "wb")  # noqa: SIM115 -- closed with the process
            self.processes.append(
                subprocess.Popen(
                    [AIRFLOW, *command],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def airflow_db(self):
        server = self.pg_url.rsplit("/", 1)[0]
        return psycopg.connect(f"{server}/{self.db_name}", autocommit=True)

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with self.airflow_db() as conn:
                    if conn.execute("SELECT 1 FROM serialized_dag WHERE dag_id = %s", (dag_id,)).fetchone():
                        return
            except psycopg.Error:
                pass
            time.sleep(1)
        raise TimeoutError(f"Airflow did not parse {dag_id} within {timeout} s; see {self.home}/*.log")

    def trigger(self, dag_id: str) -> None:
        subprocess.run(
            [AIRFLOW, "dags", "trigger", dag_id], env=self.env, check=True, capture_output=True, timeout=120
        )

    def check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{process.args[1]} exited with {process.returncode}; see {self.home}/*.log"
                )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        for process in self.processes:  # children the parents left behind (workers, parsers)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(psycopg.Error):
            self._admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
