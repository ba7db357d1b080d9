"""What docker-compose.yaml would run, run here as processes: each service of the project's image with its own
command and environment from the compose file (hosts, ports and paths rewritten to local ones), against the local
PostgreSQL, a Redis and an S3 API server started by the test. Init first, then every long-running service until
its own health check passes, then one pipeline run through the Celery worker, recorded in Django.

No Docker here: the images of PostgreSQL, Redis and MinIO are replaced by the local servers; everything else
(the commands, the variables, the health checks) is the compose file's.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet

from deploy.services import BIN, Services, free_port, read_env_file, sqlalchemy_url
from tests.services.conftest import point_at, session_server, wait_for
from tests.services.test_services_processes import finished, parsed
from tests.support import compose
from tests.support.receivers import SmtpSink
from tests.support.redis_server import redis_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

LONG_RUNNING = (
    "airflow-api",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "admin",
)
PORTS = ("8080", "8000", "8793", "8794", "8974")
SUPERUSER = "compose-admin"


def env_file(settings) -> dict[str, str]:
    """A filled-in .env: .env.example's names, every required one with a fresh value."""
    values = {k: v for k, v in read_env_file(compose.REPO / ".env.example").items() if v}
    for name in compose.required_variables():
        values.setdefault(name, secrets.token_urlsafe(16))
    values.update(
        {
            # The session's key ring: the test process (the admin's side) encrypts the demo's credentials with it.
            "ETL_CREDENTIAL_KEYS": f"{settings.ETL_CREDENTIAL_KEYS},compose:{Fernet.generate_key().decode()}",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "DJANGO_SUPERUSER_USERNAME": SUPERUSER,
            "DJANGO_EMAIL_HOST": "127.0.0.1",
            "DJANGO_EMAIL_USE_TLS": "false",
        }
    )
    return values


def rewriter(values: dict[str, str], *, django_url: str, airflow_url: str, broker: str, s3: str, home: Path):
    """Compose's hosts, ports and container paths mapped to this machine's servers, free ports and folders."""
    ports = {port: str(free_port()) for port in PORTS}
    replacements = [
        (f"postgres://etl:{values['ETL_DB_PASSWORD']}@postgres:5432/etl", django_url),
        (f"postgresql+psycopg2://airflow:{values['AIRFLOW_DB_PASSWORD']}@postgres:5432/airflow", airflow_url),
        (f"redis://:{values['REDIS_PASSWORD']}@redis:6379/0", broker),
        ("http://minio:9000", s3),
        *((f"{host}:{port}", f"127.0.0.1:{local}") for port, local in ports.items() for host in _HOSTS),
        ("/app/dags", str(home / "dags")),
        ("/app/demo_data", str(compose.REPO / "demo_data")),
        ("/var/lib/etl", str(home / "var")),
        ("/opt/airflow", str(home / "airflow")),
    ]

    def rewrite(value: str, key: str = "") -> str:
        if key.endswith("PORT") and value in ports:
            return ports[value]
        if key.endswith("__HOST") and value == "0.0.0.0":
            return "127.0.0.1"
        for old, new in replacements:
            value = value.replace(old, new)
        return value

    return rewrite, ports


_HOSTS = ("airflow-api", "admin", "localhost", "0.0.0.0")


def local_services(document: dict, rewrite) -> dict[str, compose.LocalService]:
    path = os.pathsep.join([str(BIN), *os.environ.get("PATH", "").split(os.pathsep)])
    found = {}
    for name, spec in compose.our_services(document).items():
        service = compose.as_local(name, spec, rewrite)
        env = {key: rewrite(str(value), key) for key, value in (spec.get("environment") or {}).items()}
        # What a container has besides the file's variables: a PATH to the image's tools, a home, a hostname.
        env.update(PATH=path, HOME=str(Path(env["AIRFLOW_HOME"]).parent), HOSTNAME=socket.gethostname())
        found[name] = compose.LocalService(name, service.argv, env, service.healthcheck)
    return found


def healthy(service: compose.LocalService) -> bool:
    result = subprocess.run(
        service.healthcheck, env=service.env, cwd=compose.REPO, capture_output=True, timeout=60
    )
    return result.returncode == 0


@pytest.fixture(scope="module")
def compose_services(django_db_setup, django_db_blocker, tmp_path_factory, s3_server):
    from django.conf import settings
    from django.db import connection

    home = tmp_path_factory.mktemp("compose")
    (home / "dags" / "generated").mkdir(parents=True)
    shutil.copy(compose.REPO / "dags" / "etl_maintenance.py", home / "dags")  # the image's dags folder
    server = session_server()
    airflow_db = f"airflow_compose_{os.getpid()}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as maintenance:
        maintenance.execute(f'DROP DATABASE IF EXISTS "{airflow_db}" WITH (FORCE)')
        maintenance.execute(f'CREATE DATABASE "{airflow_db}"')
    values = env_file(settings)
    values["ETL_STAGING_BUCKET"] = f"etl-compose-{uuid.uuid4().hex[:8]}"
    sink = SmtpSink(port=free_port()).start()  # the notify step's SMTP server
    values["DJANGO_EMAIL_PORT"] = str(sink.port)
    document = compose.load(values)
    cluster = None
    try:
        with redis_server(home / "redis") as broker:
            rewrite, ports = rewriter(
                values,
                django_url=f"{server}/{connection.settings_dict['NAME']}",
                airflow_url=sqlalchemy_url(f"{server}/{airflow_db}"),
                broker=broker,
                s3=s3_server,
                home=home,
            )
            services = local_services(document, rewrite)
            init = services["init"]
            with django_db_blocker.unblock():
                result = subprocess.run(
                    init.argv, env=init.env, cwd=compose.REPO, capture_output=True, text=True, timeout=900
                )
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
            assert "init: done" in result.stdout
            cluster = Services(
                home=home,
                env=services["admin"].env,
                names=LONG_RUNNING,
                command_lines={name: services[name].argv for name in LONG_RUNNING},
                environments={name: services[name].env for name in LONG_RUNNING},
            )
            cluster.pids.mkdir(exist_ok=True)
            cluster.logs.mkdir(exist_ok=True)
            cluster.start()
            # As compose does: each service is up when its own health check passes.
            waiting = {name: services[name] for name in LONG_RUNNING}
            deadline = time.monotonic() + 300
            while waiting and time.monotonic() < deadline:
                cluster.check_alive()
                for name, service in list(waiting.items()):
                    if healthy(service):
                        del waiting[name]
                time.sleep(2)
            assert not waiting, f"unhealthy after 300 s: {sorted(waiting)}; see {cluster.logs}"
            cluster.compose = services
            cluster.init_output = result.stdout
            cluster.values = values
            cluster.ports = ports
            cluster.smtp = sink
            yield cluster
    finally:
        if cluster is not None:
            cluster.stop()
        sink.stop()
        with psycopg.connect(f"{server}/postgres", autocommit=True) as maintenance:
            maintenance.execute(f'DROP DATABASE IF EXISTS "{airflow_db}" WITH (FORCE)')


def test_compose_init_prepares_what_the_services_need(compose_services):
    from django_etl.core.models import User

    env = compose_services.compose["init"].env
    output = compose_services.init_output
    assert f"'{SUPERUSER}' created" in output or f"'{SUPERUSER}' exists" in output
    assert User.objects.get(username=SUPERUSER).is_superuser
    assert Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).stat().st_mode & 0o077 == 0
    assert f"staging: s3://{compose_services.values['ETL_STAGING_BUCKET']}/staging" in output
    assert healthy(compose_services.compose["init"])  # its own check: both databases answer
    # The admin (gunicorn, DEBUG off) serves the static files init collected onto the var volume.
    admin_url = compose_services.compose["admin"].env["ETL_ADMIN_URL"]
    with urllib.request.urlopen(f"{admin_url}/static/admin/css/base.css", timeout=10) as response:
        assert response.status == 200


def test_compose_services_run_a_pipeline_through_the_celery_worker(compose_services, settings, user):
    from django_etl.control.runs import start_run
    from django_etl.pipelines.models import Pipeline

    admin = compose_services.compose["admin"]
    cluster = point_at(compose_services, settings)
    # As `docker compose exec admin python manage.py load_demo`: the demo's files land on the var volume, inside
    # the file roots, and saving its pipelines writes their DAG files onto the dags volume.
    result = subprocess.run(
        ["python", "manage.py", "load_demo"], env=admin.env, cwd=compose.REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (Path(admin.env["ETL_VAR_DIR"]) / "demo" / "crm.sqlite3").exists()
    demo = Pipeline.objects.get(name="Daily orders")
    parsed(demo, cluster)

    run = finished(start_run(demo, user=user), cluster)

    assert run.status == "success"
    tasks = list(run.task_runs.select_related("pipeline_step"))
    assert len(tasks) == 6 and {t.status for t in tasks} == {"success"}
    worker_log = (cluster.logs / "airflow-worker.log").read_bytes()
    assert b"execute_workload" in worker_log
    assert (
        b"Django set up in worker pool process" in worker_log
    )  # the warm-up of airflow_plugin.celery_config
    # The notify step sent its mail through SMTP (the compose file's backend), not to a console.
    assert any("succeeded" in m.message["Subject"] for m in compose_services.smtp.messages)
    bucket = compose_services.values["ETL_STAGING_BUCKET"]
    staged = [
        d["uri"]
        for t in tasks
        if t.pipeline_step.step_type != "load"
        for d in (t.output_data or {}).get("datasets", [])
    ]
    assert staged and all(uri.startswith(f"s3://{bucket}/staging/") for uri in staged)
    wait_for(
        "the PipelineRun's metrics", lambda: run.refresh_from_db() or run.metrics.get("task_count"), cluster
    )
