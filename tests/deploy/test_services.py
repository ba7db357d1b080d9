"""deploy/services.py without starting Airflow: the Celery environment, worker names, ports and commands, the
refusals, the scratch environment, and stopping exactly the recorded process groups (also workers of another
executor's start)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deploy.services import (
    Services,
    ServicesError,
    check_environment,
    default_names,
    scratch_environment,
    service_environment,
    worker_names,
)

COMPLETE = {
    "DATABASE_URL": "postgres://etl@127.0.0.1:5432/etl",
    "DJANGO_SECRET_KEY": "x" * 50,
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://postgres@127.0.0.1:5432/airflow",
    "AIRFLOW__CORE__FERNET_KEY": "k",
    "AIRFLOW__API_AUTH__JWT_SECRET": "j",
    "AIRFLOW__API__SECRET_KEY": "s",
    "ETL_AIRFLOW_PASSWORD": "p",
    "AIRFLOW_ADMIN_PASSWORD": "a",
    "ETL_CREDENTIAL_KEYS": "k1:key",
}


def test_service_environment_local_executor_has_no_celery_settings(tmp_path):
    env = service_environment(dict(COMPLETE), tmp_path)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert not any(key.startswith("AIRFLOW__CELERY__") for key in env)
    assert worker_names(env) == ()
    assert default_names(env) == ("api-server", "scheduler", "dag-processor", "triggerer", "admin")


def test_service_environment_celery_fills_broker_results_queues_and_warm_up(tmp_path):
    env = service_environment({**COMPLETE, "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"}, tmp_path)
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/5"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + COMPLETE["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] == "airflow_plugin.celery_config.CELERY_CONFIG"
    assert env["ETL_CELERY_QUEUES"] == env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == "default"
    assert default_names(env, admin=False)[-1] == "worker-1"
    check_environment(env)


def test_services_celery_workers_get_their_own_names_and_log_ports(tmp_path):
    env = service_environment(
        {
            **COMPLETE,
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "ETL_CELERY_WORKERS": "2",
            "ETL_CELERY_QUEUES": "default,warehouse",
        },
        tmp_path,
    )
    services = Services(home=tmp_path, env=env)
    assert services.names == (
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "worker-1",
        "worker-2",
        "admin",
    )
    commands = services.commands()
    for name in ("worker-1", "worker-2"):
        command = commands[name]
        assert command[1:3] == ["celery", "worker"]
        assert command[command.index("--queues") + 1] == "default,warehouse"
    hostnames = {commands[n][commands[n].index("--celery-hostname") + 1] for n in ("worker-1", "worker-2")}
    assert len(hostnames) == 2
    ports = {
        services.environment(n)["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] for n in ("worker-1", "worker-2")
    }
    assert ports == {"8793", "8794"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"ETL_CELERY_WORKERS": "0"}, "ETL_CELERY_WORKERS='0'"),
        ({"AIRFLOW__CELERY__BROKER_URL": "amqp://127.0.0.1"}, "must be a redis:// URL"),
    ],
)
def test_check_environment_refuses_a_bad_celery_setting(tmp_path, extra, message):
    env = service_environment({**COMPLETE, "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor", **extra}, tmp_path)
    with pytest.raises(ServicesError, match=message):
        check_environment(env)


def test_scratch_environment_is_fresh_each_time(tmp_path):
    urls = {"database_url": "postgres://u@127.0.0.1/d", "airflow_database_url": "postgresql://u@127.0.0.1/a"}
    first = scratch_environment(tmp_path / "a", **urls)
    second = scratch_environment(tmp_path / "b", **urls, ETL_DUCKDB_THREADS="1")
    for key in (
        "DJANGO_SECRET_KEY",
        "AIRFLOW__CORE__FERNET_KEY",
        "ETL_AIRFLOW_PASSWORD",
        "ETL_CREDENTIAL_KEYS",
    ):
        assert first[key] != second[key], key
    assert first["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://u@127.0.0.1/a"
    assert second["ETL_DUCKDB_THREADS"] == "1"
    assert (tmp_path / "a" / "dags" / "generated").is_dir()
    check_environment(first)


def test_services_stop_ends_recorded_groups_also_of_workers_not_in_names(tmp_path):
    env = service_environment(dict(COMPLETE), tmp_path)
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    started = Services(
        home=tmp_path,
        env=env,
        names=("scheduler", "worker-1"),
        command_lines={"scheduler": sleeper, "worker-1": sleeper},
    )
    started.pids.mkdir()
    started.logs.mkdir()
    started.start()
    pids = [started.recorded(name) for name in ("scheduler", "worker-1")]
    assert all(pids)
    # `make stop` after `make airflow EXECUTOR=celery`: a LocalExecutor view of the same home still stops the worker.
    later = Services(home=tmp_path, env=env, names=("scheduler",))
    assert set(later.stop(timeout=5)) == {"scheduler", "worker-1"}
    for process in started.started.values():
        process.wait(timeout=10)
    assert not list(Path(tmp_path / "pids").glob("*.pid"))


def test_services_main_help_names_init_and_the_executor():
    result = subprocess.run(
        [sys.executable, "-m", "deploy.services", "--help"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0
    assert "init" in result.stdout and "--executor {celery,local}" in result.stdout
