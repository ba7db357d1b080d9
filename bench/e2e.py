"""End to end on real services: "Run now" -> final status, and admin save -> triggerable (edit, new pipeline);
with --celery, the CeleryExecutor with write-back on against off, one run at a time and in a burst.

    python bench/e2e.py [--runs 3]
    python bench/e2e.py --celery [--runs 3] [--burst 50] [--rounds 1]

Starts `make airflow`'s services (deploy/services.py, without the admin server) on scratch databases of the
PostgreSQL at TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres), loads the demo
organization, and measures on its 5-step pipeline "Revenue by customer":

- run now -> Airflow final: trigger to the DAG run's final state in Airflow (what the run costs without
  waiting for Django);
- run now -> Django final: trigger to the final PipelineRun in Django, the same runs (the write-back's share is
  the difference);
- save -> triggerable: an edit saved (regenerated and re-parsed through the API) until a trigger is accepted and
  its first task starts; and the same for a new pipeline (found by the directory scan).

--celery starts two sets of services side by side on one Django database, each with the CeleryExecutor, one
worker and a Redis of its own on a free port: one with ETL_WRITEBACK=false (no callbacks, no listener events: the
baseline), one with write-back on. It measures them in turns, so the machine's changing load falls on both alike:
--runs runs one at a time on each (trigger -> final in Airflow, and in Django when write-back is on), then
--rounds bursts of --burst runs triggered at once (the pipeline's max_active_runs raised to the burst) until every
run is final: runs per minute.

Every process it starts is stopped at the end, also on failure. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def wait(what, check, timeout=300.0, every=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise TimeoutError(what)


def server_url() -> str:
    server = (os.environ.get("TEST_DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres").rsplit(
        "/", 1
    )[0]
    return server.replace("postgres://", "postgresql://")


@contextlib.contextmanager
def scratch_databases(*names: str):
    import psycopg

    server = server_url()

    def recreate(drop_only=False):
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                if not drop_only:
                    admin.execute(f'CREATE DATABASE "{name}"')

    recreate()
    try:
        yield {name: f"{server}/{name}" for name in names}
    finally:
        recreate(drop_only=True)


@contextlib.contextmanager
def running(home: Path, django_url: str, airflow_url: str, *, migrate: bool, **extra: str):
    """deploy/services.py's services without the admin, healthy, stopped when the block ends."""
    from deploy.services import Services, default_names, scratch_environment

    env = scratch_environment(home, database_url=django_url, airflow_database_url=airflow_url, **extra)
    cluster = Services(home=home, env=env, names=default_names(env, admin=False))
    try:
        started = time.monotonic()
        cluster.prepare(django_migrate=migrate)
        cluster.start()
        cluster.wait_healthy(timeout=300)
        print(f"services healthy after {time.monotonic() - started:.1f} s (set-up included)", flush=True)
        yield cluster
    finally:
        cluster.stop()


def point_at(cluster) -> None:
    """This process is the admin's side of ``cluster``: its Airflow API, dags folder and staging."""
    from django.conf import settings

    for name in ("ETL_AIRFLOW_API_URL", "ETL_AIRFLOW_USERNAME", "ETL_AIRFLOW_PASSWORD", "ETL_STAGING_URL"):
        setattr(settings, name, cluster.env[name])
    settings.ETL_DAGS_FOLDER = Path(cluster.env["ETL_DAGS_FOLDER"])
    settings.ETL_REGENERATE_ON_SAVE = True
    settings.ETL_AIRFLOW_API_TIMEOUT = 60.0  # a loaded 2-core machine answers slowly; a bench waits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--celery", action="store_true", help="CeleryExecutor, write-back on against off")
    parser.add_argument("--burst", type=int, default=50, help="runs triggered at once (with --celery)")
    parser.add_argument("--rounds", type=int, default=1, help="bursts per set, in turns (with --celery)")
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    tag = f"{os.getpid()}"
    home = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    if args.celery:
        return celery_bench(home, tag, args.runs, args.burst, args.rounds)
    with (
        scratch_databases(f"bench_e2e_django_{tag}", f"bench_e2e_airflow_{tag}") as urls,
        running(
            home,
            urls[f"bench_e2e_django_{tag}"],
            urls[f"bench_e2e_airflow_{tag}"],
            migrate=True,
            ETL_REGENERATE_ON_SAVE="true",
        ) as cluster,
    ):
        os.environ.update(cluster.env)  # this process is the admin's side
        from django_etl.startup import setup_django

        setup_django()
        point_at(cluster)
        measure(args.runs, cluster)
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


def celery_bench(home: Path, tag: str, runs: int, burst: int, rounds: int) -> int:
    """Write-back off and on, two sets of Celery services side by side on one Django database, measured in
    turns (off, on; then on, off…) so the machine's changing load falls on both alike."""
    from cryptography.fernet import Fernet

    from tests.support.redis_server import redis_server

    django_db = f"bench_e2e_django_{tag}"
    airflow_dbs = {flag: f"bench_e2e_airflow_{tag}_{flag}" for flag in ("false", "true")}
    # The same Django secrets for both sets: the demo's credentials are encrypted once.
    shared = {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "ETL_CREDENTIAL_KEYS": f"bench:{Fernet.generate_key().decode()}",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
    }
    with scratch_databases(django_db, *airflow_dbs.values()) as urls, contextlib.ExitStack() as stack:
        clusters = {}
        for number, flag in enumerate(("false", "true")):
            cluster_home = home / f"writeback-{flag}"
            broker = stack.enter_context(redis_server(cluster_home / "redis"))
            clusters[flag] = stack.enter_context(
                running(
                    cluster_home,
                    urls[django_db],
                    urls[airflow_dbs[flag]],
                    migrate=number == 0,
                    AIRFLOW__CELERY__BROKER_URL=broker,
                    ETL_WRITEBACK=flag,
                    **shared,
                )
            )
        os.environ.update(clusters["false"].env)
        from django_etl.startup import setup_django

        setup_django()
        pipeline = prepare_pipeline(clusters, burst)
        one = {flag: [] for flag in clusters}
        bursts = {flag: [] for flag in clusters}
        for number in range(runs + 1):  # the first turn warms the workers up and is not counted
            for flag in clusters:
                timing = one_run(clusters[flag], pipeline)
                if number:
                    one[flag].append(timing)
        for number in range(rounds):
            for flag in clusters if number % 2 == 0 else reversed(list(clusters)):
                bursts[flag].append(burst_run(clusters[flag], pipeline, burst))
    off = {k: statistics.median(t[k] for t in one["false"]) for k in ("airflow", "django")}
    on = {k: statistics.median(t[k] for t in one["true"]) for k in ("airflow", "django")}
    off_rate, on_rate = statistics.median(bursts["false"]), statistics.median(bursts["true"])
    print(f"\nCeleryExecutor, one worker each, write-back on against off, in turns (medians of {runs} runs):")
    print(f"  one run, trigger -> final in Airflow: off {off['airflow']:.1f} s, on {on['airflow']:.1f} s")
    overhead = (on["django"] - off["airflow"]) / off["airflow"] * 100
    print(
        f"  one run, trigger -> final where it is read (off: Airflow; on: Django): {off['airflow']:.1f} s -> "
        f"{on['django']:.1f} s = {overhead:+.1f}% (target under 10%)"
    )
    lost = (off_rate - on_rate) / off_rate * 100
    print(
        f"  burst of {burst} (median of {rounds} round(s)): off {off_rate:.1f} runs/min, on {on_rate:.1f} runs/min "
        f"(every run recorded in Django) = {lost:.1f}% of throughput lost (target under 10%)"
    )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def prepare_pipeline(clusters, burst: int):
    """The demo, its 5-step pipeline allowed ``burst`` active runs, its DAG file in each set's dags folder."""
    from django.core.management import call_command

    from django_etl.pipelines.models import Pipeline

    point_at(clusters["false"])
    call_command("load_demo", verbosity=0)
    pipeline = Pipeline.objects.get(name="Revenue by customer")
    pipeline.config = {**pipeline.config, "max_active_runs": min(64, burst)}
    pipeline.save()
    for cluster in clusters.values():
        point_at(cluster)
        call_command("generate_dags", verbosity=0)
        api = client()
        wait("DAG parsed", lambda api=api: _known(api, pipeline.dag_id))
    return Pipeline.objects.get(pk=pipeline.pk)


def client():
    from django_etl.control.airflow_api import AirflowClient

    return AirflowClient.from_settings()


def _known(api, dag_id):
    from django_etl.control.airflow_api import AirflowRefused

    try:
        return api.dag(dag_id)
    except AirflowRefused:
        return None


def one_run(cluster, pipeline) -> dict[str, float]:
    """Trigger -> final in Airflow, and -> final in Django when write-back is on."""
    from django_etl.control.runs import start_run

    point_at(cluster)
    api = client()
    t0 = time.monotonic()
    run = start_run(pipeline)
    airflow_done = wait("Airflow final", lambda: _airflow_final(api, pipeline, run))
    if cluster.env["ETL_WRITEBACK"] == "true":
        wait("Django final", lambda: _django_final(run))
    django_done = time.monotonic()
    state = api.dag_run(pipeline.dag_id, run.airflow_run_id)["state"]
    if state != "success":
        raise RuntimeError(f"run {run.airflow_run_id} ended {state} in Airflow; see {cluster.logs}")
    timing = {"airflow": airflow_done - t0, "django": django_done - t0}
    label = "on " if cluster.env["ETL_WRITEBACK"] == "true" else "off"
    print(
        f"write-back {label}: one run -> Airflow final {timing['airflow']:.1f} s, -> Django {timing['django']:.1f} s"
    )
    return timing


def burst_run(cluster, pipeline, burst: int) -> float:
    """``burst`` runs triggered at once; runs per minute until every one is final (in Django too when on)."""
    from django_etl.control.runs import start_run
    from django_etl.runs.models import PipelineRun

    point_at(cluster)
    api = client()
    writeback = cluster.env["ETL_WRITEBACK"] == "true"
    t0 = time.monotonic()
    ids = {start_run(pipeline).airflow_run_id for _ in range(burst)}
    triggered = time.monotonic() - t0

    def all_final():
        states = {
            r["dag_run_id"]: r["state"] for r in _dag_runs(api, pipeline.dag_id) if r["dag_run_id"] in ids
        }
        return len(states) == len(ids) and all(s in {"success", "failed"} for s in states.values()) and states

    states = wait("burst final in Airflow", all_final, timeout=3600, every=1.0)
    if writeback:
        wait(
            "burst final in Django",
            lambda: (
                PipelineRun.objects.filter(airflow_run_id__in=ids, completed_at__isnull=False).count()
                == len(ids)
            ),
            timeout=600,
            every=1.0,
        )
    elapsed = time.monotonic() - t0
    failed = [run_id for run_id, state in states.items() if state != "success"]
    if failed:
        raise RuntimeError(f"{len(failed)} burst runs failed, e.g. {failed[0]}; see {cluster.logs}")
    rate = burst / elapsed * 60
    label = "on " if writeback else "off"
    print(
        f"write-back {label}: burst of {burst} (triggered in {triggered:.1f} s) final after {elapsed:.0f} s: "
        f"{rate:.1f} runs/min (load {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    return rate


def _dag_runs(api, dag_id: str) -> list[dict]:
    return list(api.pages(f"/api/v2/dags/{dag_id}/dagRuns", "dag_runs", {"order_by": "id"}))


if __name__ == "__main__":
    sys.exit(main())
