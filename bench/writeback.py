"""Benchmark of the write-back recorder on PostgreSQL: per task event, per task, per reconciliation, cold start.

Usage: .venv/bin/python bench/writeback.py [--runs 10] [--steps 20] [--server postgresql://postgres@127.0.0.1:5432]

Creates (and drops at the end) the scratch database etl_bench_writeback, migrates it, makes one pipeline of
``--steps`` steps and records ``--runs`` runs of it by calling the recorder's own functions directly (no
Airflow run around them): an execute and a success event per task, then the end-of-run reconciliation that
re-reads every task, its manifest and log, and writes lineage. Then ``--health-runs`` more runs with the
end-of-run health checks (resources, the baseline comparison of issue 15) alternately on and off, the checks
alone, their query count and the plans of the baseline's history queries. Also times the first write in fresh processes
(Django set-up and first connection included; Airflow already imported, as in a task process).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DB_NAME = "etl_bench_writeback"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def line(label: str, values: list[float]) -> str:
    return (
        f"{label:<34} n={len(values):<5} median {statistics.median(values) * 1000:7.2f} ms   "
        f"p95 {percentile(values, 0.95) * 1000:7.2f} ms"
    )


def admin(server: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def setup(server: str, steps: int):
    os.environ["DATABASE_URL"] = f"{server}/{DB_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_etl.settings")
    # The benchmark's steps are shaped for the recorder, not compiled: no DAG file on save.
    os.environ.setdefault("ETL_REGENERATE_ON_SAVE", "false")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django_etl.connectors.models import Credential
    from django_etl.core.models import Organization, User
    from django_etl.pipelines.models import Pipeline, PipelineStep

    user = User.objects.create_user(username="bench", password="bench-pass")
    org = Organization.objects.create(name="Bench", slug="bench")
    Credential.objects.create_encrypted(name="db", organization=org, data={"password": "bench-secret"})
    pipeline = Pipeline.objects.create(
        name="Twenty steps", organization=org, created_by=user, status="active", config={}
    )
    spec_steps = {}
    for n in range(steps):
        step_type = "extract" if n == 0 else ("load" if n == steps - 1 else "transform")
        step = PipelineStep.objects.create(
            pipeline=pipeline, name=f"step {n:02d}", step_type=step_type, config={}, order_index=n
        )
        spec_steps[f"step_{n:02d}"] = {
            "id": str(step.pk),
            "name": step.name,
            "step_type": step_type,
            "inputs": [f"d{n - 1}"] if n else [],
            "output": f"d{n}" if n < steps - 1 else None,
            "upstream": [f"step_{n - 1:02d}"] if n else [],
        }
    return pipeline, spec_steps


def write_manifests(run_id: str, dag_id: str, steps: dict) -> None:
    from django_etl.dataplane.staging import Staging

    staging = Staging()
    schema = [{"name": "id", "type": "int64"}, {"name": "amount", "type": "double"}]
    for task_id, step in steps.items():
        staging.write_manifest(
            dag_id,
            run_id,
            task_id,
            {
                "step_id": step["id"],
                "task_id": task_id,
                "step_type": step["step_type"],
                "status": "success",
                "metrics": {"rows_in": 1000, "rows_out": 1000, "bytes": 64000, "duration_seconds": 0.1},
                "inputs": [
                    {"dataset": d, "uri": f"staged/{d}", "rows": 1000, "schema": schema}
                    for d in step["inputs"]
                ],
                "outputs": [
                    {
                        "dataset": step["output"],
                        "uri": f"staged/{step['output']}",
                        "rows": 1000,
                        "schema": schema,
                    }
                ]
                if step["output"]
                else [],
                "checks": [],
                "column_mapping": {"amount": ["amount"]},
                "relationship": None,
            },
        )


def run_record(pipeline, run_id: str, start: datetime, state: str = "running"):
    from airflow_plugin.writeback.events import RunInfo

    return RunInfo(**run_dict(pipeline, run_id, start, state))


def task_record(task_id: str, step: dict, event: str, state: str, start: datetime):
    from airflow_plugin.writeback.events import TaskInfo

    return TaskInfo(**task_dict(task_id, step, event, state, start))


def run_dict(pipeline, run_id: str, start: datetime, state: str = "running") -> dict:
    """A run's facts as plain JSON-able data (cold and forked processes rebuild the record from it)."""
    return {
        "dag_id": pipeline.dag_id,
        "run_id": run_id,
        "run_type": "manual",
        "triggered_by": "ui",
        "triggering_user_name": "bench",
        "conf": {},
        "logical_date": start,
        "data_interval_start": start,
        "data_interval_end": start,
        "run_after": start,
        "start_date": start,
        "end_date": start + timedelta(minutes=2) if state != "running" else None,
        "state": state,
    }


def task_dict(task_id: str, step: dict, event: str, state: str, start: datetime) -> dict:
    return {
        "task_id": task_id,
        "map_index": -1,
        "event": event,
        "state": state,
        "try_number": 1,
        "max_tries": 0,
        "start_date": start,
        "end_date": start + timedelta(seconds=3) if state == "success" else None,
        "step_id": step["id"],
        "step_type": step["step_type"],
        "error": None,
        "error_type": None,
    }


COLD = """
import time, os, sys, json
import airflow.configuration  # a task process has Airflow loaded already
from datetime import datetime, UTC
args = json.loads(sys.argv[1])
t0 = time.perf_counter()
from airflow_plugin.writeback import recorder, setup
from airflow_plugin.writeback.events import RunInfo, TaskInfo
setup()
t1 = time.perf_counter()
recorder.record_task(RunInfo(**args["run"]), TaskInfo(**args["task"]), {"pipeline": {}})
t2 = time.perf_counter()
print(json.dumps({"setup": t1 - t0, "first_write": t2 - t1, "total": t2 - t0}))
"""


FORKED = """
import time, os, sys, json
import airflow.configuration
from airflow_plugin.writeback import listener
t0 = time.perf_counter()
listener.on_starting(component=None)  # what the scheduler and dag-processor do when they start
warm = time.perf_counter() - t0
from airflow_plugin.writeback import recorder
from airflow_plugin.writeback.events import RunInfo, TaskInfo
for args in json.loads(sys.argv[1]):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a task process forked from the executor's worker, as LocalExecutor and Celery do
        t1 = time.perf_counter()
        recorder.record_task(RunInfo(**args["run"]), TaskInfo(**args["task"]), {"pipeline": {}})
        os.write(write, json.dumps({"first_write": time.perf_counter() - t1}).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    print(json.dumps({"warm_up": warm, **json.loads(os.read(read, 1000))}))
"""


def forked_starts(pipeline, steps: dict, count: int) -> list[dict]:
    """First write in task processes forked from a warmed-up parent (the LocalExecutor's shape)."""
    task_id, step = next(iter(steps.items()))
    payloads = []
    for n in range(count):
        start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=200 + n)
        run = run_dict(pipeline, f"forked_{n}", start)
        payloads.append({"run": run, "task": task_dict(task_id, step, "execute", "running", start)})
    out = subprocess.run(
        [sys.executable, "-c", FORKED, json.dumps(payloads, default=str)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return [json.loads(line) for line in out.stdout.strip().splitlines() if line.startswith("{")]


def cold_starts(pipeline, steps: dict, count: int) -> list[dict]:
    results = []
    task_id, step = next(iter(steps.items()))
    for n in range(count):
        start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=100 + n)
        run = run_dict(pipeline, f"cold_{n}", start)
        task = task_dict(task_id, step, "execute", "running", start)
        payload = json.dumps({"run": run, "task": task}, default=str)
        out = subprocess.run(
            [sys.executable, "-c", COLD, payload],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def round_trips(count: int) -> list[float]:
    """The machine's own database latency, to read the other figures against."""
    from django.db import connections

    from airflow_plugin.writeback.delivery import ALIAS

    times = []
    with connections[ALIAS].cursor() as cursor:
        for _ in range(count):
            t0 = time.perf_counter()
            cursor.execute("SELECT 1")
            cursor.fetchone()
            times.append(time.perf_counter() - t0)
    return times


def queries_per_task(pipeline, steps: dict, spec: dict) -> float:
    """Database round trips of one task's two events, in a run whose row this process already wrote."""
    from django.db import connections

    from airflow_plugin.writeback import recorder
    from airflow_plugin.writeback.delivery import ALIAS

    start = datetime(2027, 1, 1, tzinfo=UTC)
    run = run_record(pipeline, "manual__bench_queries", start)
    write_manifests(run.run_id, pipeline.dag_id, steps)
    items = list(steps.items())
    recorder.record_task(run, task_record(*items[0], "execute", "running", start), {**spec, "steps": steps})
    count = [0]

    def counter(execute, sql, params, many, context):
        count[0] += 1
        return execute(sql, params, many, context)

    with connections[ALIAS].execute_wrapper(counter):
        for task_id, step in items[1:]:
            recorder.record_task(run, task_record(task_id, step, "execute", "running", start), spec)
            recorder.record_task(run, task_record(task_id, step, "success", "success", start), spec)
    return count[0] / (len(items) - 1)


def baseline_checks(pipeline, steps: dict, spec: dict, runs: int) -> dict:
    """The end-of-run health checks (issue 15): reconciliation with them on and off, and the checks alone.

    Records ``runs`` more runs (so the baseline window of 30 is full), alternating the checks on and off
    (ETL_MONITORING_ENABLED) so both sides share the same database state; then times the checks alone on the
    newest run, counts their queries and shows the plan of the history query.
    """
    from django.conf import settings
    from django.db import connections

    from airflow_plugin.writeback import health, recorder
    from airflow_plugin.writeback.delivery import ALIAS
    from django_etl.monitoring import performance
    from django_etl.runs.models import PipelineRun, TaskRun

    timings: dict[str, list[float]] = {"on": [], "off": []}
    run = None
    for n in range(runs):
        start = datetime(2026, 6, 1, tzinfo=UTC) + timedelta(hours=n)
        run_id = f"manual__bench_health_{n}"
        write_manifests(run_id, pipeline.dag_id, steps)
        side = "on" if n % 2 else "off"
        settings.ETL_MONITORING_ENABLED = side == "on"
        tasks = [task_record(t, s, "reconcile", "success", start) for t, s in steps.items()]
        t0 = time.perf_counter()
        recorder.reconcile(
            run_record(pipeline, run_id, start, "success"), tasks, "success", {**spec, "steps": steps}
        )
        timings[side].append(time.perf_counter() - t0)
        run = run_id
    settings.ETL_MONITORING_ENABLED = True
    pipeline_run = PipelineRun.objects.using(ALIAS).get(airflow_run_id=run)
    task_runs = {
        str(tr.pipeline_step_id): tr for tr in TaskRun.objects.using(ALIAS).filter(pipeline_run=pipeline_run)
    }
    alone, checks = [], []
    for _ in range(20):
        t0 = time.perf_counter()
        performance.check_finished_run(pipeline_run, list(task_runs.values()), using=ALIAS)
        alone.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        health.after_run(pipeline_run, task_runs, {})
        checks.append(time.perf_counter() - t0)
    count = [0]

    def counter(execute, sql, params, many, context):
        count[0] += 1
        return execute(sql, params, many, context)

    with connections[ALIAS].execute_wrapper(counter):
        health.after_run(pipeline_run, task_runs, {})
    history = performance.recent_history(pipeline_run, 30, ALIAS)
    plans = {}
    from django.db.models.fields.json import KT

    runs_query = (
        PipelineRun.objects.using(ALIAS)
        .filter(pipeline_id=pipeline.pk, status="success", started_at__lt=pipeline_run.started_at)
        .order_by("-started_at")
        .annotate(duration=KT("metrics__duration_seconds"))
        .values_list("pk", "duration")[:30]
    )
    plans["runs"] = runs_query.explain(analyze=True)
    ids = [pk for pk, _ in runs_query]
    plans["task runs"] = (
        TaskRun.objects.using(ALIAS)
        .filter(pipeline_run_id__in=ids, status="success", run_started_at__lte=pipeline_run.started_at)
        .values_list("pipeline_step_id")
        .explain(analyze=True)
    )
    return {
        "on": timings["on"],
        "off": timings["off"],
        "alone": alone,
        "after_run": checks,
        "queries": count[0],
        "history": len(history),
        "plans": plans,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cold", type=int, default=5)
    parser.add_argument(
        "--health-runs", type=int, default=40, help="runs recorded for the health-check figures"
    )
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    os.environ["ETL_STAGING_URL"] = tempfile.mkdtemp(prefix="bench-writeback-")
    os.environ["ETL_VAR_DIR"] = os.environ["ETL_STAGING_URL"]
    os.environ.setdefault("AIRFLOW_HOME", os.path.join(os.environ["ETL_STAGING_URL"], "airflow"))
    admin(args.server, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    admin(args.server, f'CREATE DATABASE "{DB_NAME}"')
    try:
        pipeline, steps = setup(args.server, args.steps)
        import airflow.configuration  # noqa: F401 -- as in a task process; not part of the timings

        from airflow_plugin import writeback
        from airflow_plugin.writeback import recorder

        writeback.setup()
        spec = {
            "pipeline": {"id": str(pipeline.pk), "version": pipeline.version, "spec_hash": "sha256:bench"}
        }
        execute, success, per_task, reconcile = [], [], [], []
        for n in range(args.runs):
            start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=n)
            run_id = f"manual__bench_{n}"
            write_manifests(run_id, pipeline.dag_id, steps)
            run = run_record(pipeline, run_id, start)
            first = {**spec, "steps": steps}
            for task_id, step in steps.items():
                t0 = time.perf_counter()
                recorder.record_task(run, task_record(task_id, step, "execute", "running", start), first)
                t1 = time.perf_counter()
                recorder.record_task(run, task_record(task_id, step, "success", "success", start), spec)
                t2 = time.perf_counter()
                execute.append(t1 - t0)
                success.append(t2 - t1)
                per_task.append(t2 - t0)
                first = spec
            tasks = [task_record(t, s, "reconcile", "success", start) for t, s in steps.items()]
            t0 = time.perf_counter()
            recorder.reconcile(run_record(pipeline, run_id, start, "success"), tasks, "success", {})
            reconcile.append(time.perf_counter() - t0)
        from django_etl.lineage.models import DataLineage
        from django_etl.runs.models import PipelineRun, TaskRun

        print(f"write-back recorder on PostgreSQL, {args.runs} runs x {args.steps} steps")
        print(line("baseline: SELECT 1 round trip", round_trips(200)))
        print(f"{'queries per task (execute+success)':<34} {queries_per_task(pipeline, steps, spec):.1f}")
        print(line("task event: execute", execute))
        print(line("task event: success (manifest, log)", success))
        print(line("per task (execute + success)", per_task))
        print(line(f"reconciliation ({args.steps} tasks)", reconcile))
        print(line("reconciliation per task", [r / args.steps for r in reconcile]))
        print(
            f"rows: {PipelineRun.objects.count()} runs, {TaskRun.objects.count()} task runs, "
            f"{DataLineage.objects.count()} lineage edges"
        )
        health = baseline_checks(pipeline, steps, spec, args.health_runs)
        print(f"end-of-run health checks (issue 15), baseline window full ({health['history']} runs):")
        print(line("reconciliation, checks off", health["off"]))
        print(line("reconciliation, checks on", health["on"]))
        print(line("checks alone (resources + baseline)", health["after_run"]))
        print(line("baseline comparison alone", health["alone"]))
        print(f"{'queries of the checks per run end':<34} {health['queries']}")
        for name, plan in health["plans"].items():
            print(f"plan of the history query ({name}):")
            print("  " + plan.replace("\n", "\n  "))
        cold = cold_starts(pipeline, steps, args.cold)
        print(line("cold: Django set-up", [c["setup"] for c in cold]))
        print(line("cold: first write (connect + rows)", [c["first_write"] for c in cold]))
        print(line("cold: total first write", [c["total"] for c in cold]))
        forked = forked_starts(pipeline, steps, args.cold)
        print(line("forked from a warmed-up parent: parent warm-up", [f["warm_up"] for f in forked]))
        print(line("forked from a warmed-up parent: first write", [f["first_write"] for f in forked]))
        from django.db import connections

        connections.close_all()
    finally:
        admin(args.server, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


if __name__ == "__main__":
    main()
