"""End to end on real services: "Run now" -> final status, and admin save -> triggerable (edit, new pipeline).

    python bench/e2e.py [--runs 3]

Starts `make airflow`'s services (deploy/services.py, without the admin server) on scratch databases of the
PostgreSQL at TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres), loads the demo
organization, and measures on its 5-step pipeline "Revenue by customer":

- run now -> Airflow final: trigger to the DAG run's final state in Airflow (what the run costs without
  waiting for Django);
- run now -> Django final: trigger to the final PipelineRun in Django, the same runs (the write-back's share is
  the difference);
- save -> triggerable: an edit saved (regenerated and re-parsed through the API) until a trigger is accepted and
  its first task starts; and the same for a new pipeline (found by the directory scan).

Every process it starts is stopped at the end, also on failure. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SESSION_PREFIXES = ("AIRFLOW", "ETL_", "DJANGO_", "DATABASE_URL")


def wait(what, check, timeout=300.0, every=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise TimeoutError(what)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import psycopg
    from cryptography.fernet import Fernet

    from deploy.services import Services, service_environment
    from tests.support.airflow_processes import free_port

    server = (os.environ.get("TEST_DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres").rsplit(
        "/", 1
    )[0]
    server = server.replace("postgres://", "postgresql://")
    tag = f"{os.getpid()}"
    django_db, airflow_db = f"bench_e2e_django_{tag}", f"bench_e2e_airflow_{tag}"
    home = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    (home / "dags" / "generated").mkdir(parents=True)
    key = Fernet.generate_key().decode()
    base = {k: v for k, v in os.environ.items() if not k.startswith(SESSION_PREFIXES)}
    base.update(
        {
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
            "DATABASE_URL": f"{server}/{django_db}",
            "ETL_CREDENTIAL_KEYS": f"bench:{key}",
            "ETL_VAR_DIR": str(home / "var"),
            "ETL_STAGING_URL": str(home / "staging"),
            "ETL_DAGS_FOLDER": str(home / "dags" / "generated"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{server}/{airflow_db}".replace(
                "postgresql://", "postgresql+psycopg2://"
            ),
            "AIRFLOW__CORE__FERNET_KEY": key,
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW_API_PORT": str(free_port()),
            "ETL_ADMIN_PORT": str(free_port()),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(12),
            "ETL_AIRFLOW_PASSWORD": secrets.token_urlsafe(12),
            "ETL_REGENERATE_ON_SAVE": "true",
        }
    )
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        for name in (django_db, airflow_db):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    env = service_environment(base, home)
    cluster = Services(home=home, env=env, names=("api-server", "scheduler", "dag-processor", "triggerer"))
    try:
        started = time.monotonic()
        cluster.prepare()
        cluster.start()
        cluster.wait_healthy(timeout=300)
        print(f"services healthy after {time.monotonic() - started:.1f} s (set-up included)")
        os.environ.update(env)  # this process is the admin's side
        from django_etl.startup import setup_django

        setup_django()
        measure(args.runs, cluster)
    finally:
        cluster.stop()
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            for name in (django_db, airflow_db):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


def _airflow_final(api, pipeline, run):
    finished = api.dag_run(pipeline.dag_id, run.airflow_run_id)["state"] in {"success", "failed"}
    return time.monotonic() if finished else None


def _django_final(run):
    run.refresh_from_db()
    return run.completed_at is not None


def measure(runs: int, cluster) -> None:
    from django.core.management import call_command
    from django.db import transaction

    from django_etl.control.airflow_api import AirflowClient, AirflowRefused
    from django_etl.control.runs import start_run
    from django_etl.pipelines import versioning
    from django_etl.pipelines.models import Pipeline

    call_command("load_demo", verbosity=0)
    call_command("generate_dags", verbosity=0)
    api = AirflowClient.from_settings()
    pipeline = Pipeline.objects.get(name="Revenue by customer")

    def known(dag_id):
        try:
            return api.dag(dag_id)
        except AirflowRefused:
            return None

    wait("DAG parsed", lambda: known(pipeline.dag_id))
    airflow_times, django_times = [], []
    for _ in range(runs + 1):  # the first run warms the workers up and is not counted
        t0 = time.monotonic()
        run = start_run(pipeline)
        airflow_done = wait("Airflow final", lambda run=run: _airflow_final(api, pipeline, run))
        wait("Django final", lambda run=run: _django_final(run))
        django_done = time.monotonic()
        if run.status != "success":
            raise RuntimeError(f"run {run.airflow_run_id} ended {run.status}")
        airflow_times.append(airflow_done - t0)
        django_times.append(django_done - t0)
    airflow_times, django_times = airflow_times[1:], django_times[1:]
    a, d = statistics.median(airflow_times), statistics.median(django_times)
    print(f"run now -> Airflow final (median of {runs}): {a:.1f} s")
    print(
        f"run now -> Django final  (median of {runs}): {d:.1f} s  (+{(d - a) / a * 100:.1f}% for write-back)"
    )

    def triggerable(target) -> float:
        t0 = time.monotonic()
        wait("parsed", lambda: known(target.dag_id), timeout=120)
        run = start_run(target)
        wait(
            "first task started",
            lambda: any(
                t["state"] in {"running", "success", "failed"}
                for t in api.task_instances(target.dag_id, run.airflow_run_id)
            ),
            timeout=120,
        )
        return time.monotonic() - t0

    t0 = time.monotonic()
    with transaction.atomic(), versioning.batch():  # as the admin saves: one version, the file after it
        edited = Pipeline.objects.get(pk=pipeline.pk)
        edited.description = f"{edited.description} (edited)"
        edited.save()
    version = Pipeline.objects.get(pk=pipeline.pk).version
    wait(
        "edit parsed",
        lambda: f"version:{version}" in {t["name"] for t in (known(pipeline.dag_id) or {}).get("tags", [])},
    )
    edit = time.monotonic() - t0 + triggerable(pipeline)
    print(f"admin save -> triggerable, edit: {edit:.1f} s (target 5 s)")

    t0 = time.monotonic()
    with transaction.atomic():
        clone = Pipeline.objects.get(pk=pipeline.pk)
        steps = list(clone.steps.all())
        clone.pk = None
        clone.name = "Revenue by customer (copy)"
        clone.save()
        for s in steps:
            s.pk = None
            s.pipeline = clone
            s.save()
    new = time.monotonic() - t0 + triggerable(clone)
    print(f"admin save -> triggerable, new pipeline: {new:.1f} s (target 30 s; directory scan every 30 s)")


if __name__ == "__main__":
    sys.exit(main())
