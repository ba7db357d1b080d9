"""Sample records for looking at the console: a diamond pipeline with a month of runs and one failed run.

Used by ``bench/screenshots.py`` (the pictures in docs/screenshots/) and ``bench/console.py`` (page timings).
The records are what write-back would have written (statuses, metrics, JSON-lines logs, alerts, lineage edges),
made directly: nothing here talks to Airflow.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import timedelta

from django.utils import timezone

DIAMOND_STEPS = [
    # name, type, order, dependencies (names), config
    (
        "extract_orders",
        "extract",
        1,
        [],
        {
            "connector": "CRM database",
            "query": "SELECT id, customer_id, amount, ordered_at\nFROM orders\nWHERE ordered_at >= '{{ ds }}'",
            "output": "orders",
        },
    ),
    (
        "clean_orders",
        "transform",
        2,
        ["extract_orders"],
        {
            "inputs": ["orders"],
            "sql": "SELECT id, customer_id, round(amount, 2) AS amount, ordered_at\nFROM orders\n"
            "WHERE amount > 0",
            "output": "clean_orders",
        },
    ),
    (
        "enrich_customers",
        "transform",
        3,
        ["extract_orders"],
        {
            "inputs": ["orders"],
            "sql": "SELECT o.customer_id, c.segment, sum(o.amount) AS revenue\nFROM orders o\n"
            "JOIN customers_v2 c ON c.id = o.customer_id\nGROUP BY 1, 2",
            "output": "customer_revenue",
        },
    ),
    (
        "load_warehouse",
        "load",
        4,
        ["clean_orders", "enrich_customers"],
        {
            "connector": "Warehouse",
            "input": "clean_orders",
            "table": "analytics.orders",
            "mode": "upsert",
            "key": ["id"],
        },
    ),
]
OTHER_PIPELINES = ["Daily invoices", "Product catalogue sync", "Web events rollup"]
FAILED_ERROR = (
    "ConnectorError: step 'enrich_customers' (sql): Catalog Error: Table with name customers_v2 does not exist! "
    'Did you mean "customers"?'
)


def tries_log(step: str, start, retries: int, *, rows: int, error: str | None = None) -> str:
    """TaskRun.logs of a step tried ``retries + 1`` times: one section per try, as write-back keeps them."""
    from django_etl.runs.logview import with_try

    text = None
    for number in range(1, retries + 2):
        began = start + timedelta(seconds=31.5 * (number - 1))
        text = with_try(text, number, log_lines(step, began, rows=rows, error=error) + "\n")
    return text


def log_lines(step: str, start, *, rows: int, error: str | None = None) -> str:
    """A try's log as Airflow 3 writes it (JSON lines), masked as write-back stores it."""
    events = [
        (0.0, "info", "Task instance is in running state", {}),
        (0.1, "info", f"Running step {step}", {"logger": "airflow_plugin.runtime"}),
        (0.4, "info", "Resolved connectors", {"connectors": ["CRM database"], "password": "***"}),
    ]
    if error:
        events += [
            (1.2, "warning", "Retrying in 30 s (try 1 of 2 failed)", {}),
            (31.5, "error", error, {"logger": "airflow_plugin.runtime"}),
            (31.6, "error", "Task failed with exception", {"error_type": "ConnectorError"}),
        ]
    else:
        events += [
            (1.5, "info", f"Wrote {rows} rows", {"rows_out": rows}),
            (1.6, "info", "Task succeeded", {}),
        ]
    return "\n".join(
        json.dumps(
            {
                "timestamp": (start + timedelta(seconds=offset)).isoformat(timespec="milliseconds"),
                "level": level,
                "event": event,
                **extra,
            }
        )
        for offset, level, event, extra in events
    )


def build(owner, organization, *, history_days: int = 30, seed: int = 7):
    """The diamond pipeline and three others with ``history_days`` of runs; returns (pipeline, failed run)."""
    from django_etl.pipelines.models import Pipeline, PipelineStep
    from django_etl.runs.models import PipelineRun, TaskRun

    rng = random.Random(seed)
    now = timezone.now()
    diamond = Pipeline.objects.create(
        name="Orders diamond",
        description="Orders from the CRM, cleaned and enriched in parallel, loaded to the warehouse.",
        organization=organization,
        created_by=owner,
        status="active",
        config={"schedule": "@hourly", "retries": 1},
    )
    steps = {}
    for name, step_type, order, deps, config in DIAMOND_STEPS:
        steps[name] = PipelineStep.objects.create(
            pipeline=diamond,
            name=name,
            step_type=step_type,
            order_index=order,
            config=config,
            dependencies=[str(steps[d].pk) for d in deps],
            is_parallel=name == "enrich_customers",
        )
    pipelines = [(diamond, list(steps.values()))]
    for name in OTHER_PIPELINES:
        pipeline = Pipeline.objects.create(
            name=name,
            organization=organization,
            created_by=owner,
            status="active",
            config={"schedule": "@daily"},
        )
        made = [
            PipelineStep.objects.create(
                pipeline=pipeline,
                name=step,
                step_type=kind,
                order_index=index,
                config={"sql": "SELECT 1"} if kind == "transform" else {"connector": "CRM database"},
            )
            for index, (step, kind) in enumerate(
                [("extract", "extract"), ("shape", "transform"), ("load", "load")]
            )
        ]
        pipelines.append((pipeline, made))
    task_rows = []
    for pipeline, pipeline_steps in pipelines:
        base = rng.uniform(20, 90)
        for day in range(history_days, 0, -1):
            started = now - timedelta(days=day, minutes=rng.randint(0, 600))
            failed = rng.random() < (0.12 if pipeline is diamond else 0.05)
            took = base * rng.uniform(0.8, 1.3) * (1 + (history_days - day) / history_days / 2)
            run = PipelineRun.objects.create(
                pipeline=pipeline,
                status="failed" if failed else "success",
                trigger_type="scheduled",
                started_at=started,
                completed_at=started + timedelta(seconds=took),
                metrics={"rows_extracted": 1200 + day, "rows_loaded": 0 if failed else 1200 + day},
                airflow_dag_id=pipeline.dag_id,
                airflow_run_id=f"scheduled__{started:%Y-%m-%dT%H:%M:%S}",
            )
            clock = started
            for index, step in enumerate(pipeline_steps):
                seconds = took / len(pipeline_steps)
                status = "failed" if failed and index == len(pipeline_steps) - 1 else "success"
                task_rows.append(
                    TaskRun(
                        pipeline_run=run,
                        pipeline_step=step,
                        status=status,
                        started_at=clock,
                        completed_at=clock + timedelta(seconds=seconds),
                        metrics={"rows_in": 1200, "rows_out": 0 if status == "failed" else 1200},
                        logs=log_lines(
                            step.name, clock, rows=1200, error="Timeout" if status == "failed" else None
                        ),
                    )
                )
                clock += timedelta(seconds=seconds)
    TaskRun.objects.bulk_create(task_rows)
    failed_run = featured_failed_run(owner, diamond, steps, now)
    return diamond, failed_run


def featured_failed_run(owner, diamond, steps, now):
    """The run the screenshots show: enrich_customers failed after a retry, so load_warehouse never ran."""
    from django_etl.lineage.models import DataLineage
    from django_etl.monitoring.models import Alert
    from django_etl.runs.models import PipelineRun, TaskRun

    started = now - timedelta(minutes=42)
    run = PipelineRun.objects.create(
        pipeline=diamond,
        triggered_by=owner,
        status="failed",
        trigger_type="manual",
        started_at=started,
        completed_at=started + timedelta(seconds=47.3),
        context={
            "pipeline_version": "1.0.4",
            "logical_date": started.isoformat(timespec="seconds"),
            "conf": {"full_refresh": False},
            # What the compiled spec records: each task's step id and upstream tasks (the graph's order).
            "steps": {
                name: {"id": str(steps[name].pk), "upstream": deps} for name, _, _, deps, _ in DIAMOND_STEPS
            },
        },
        metrics={"rows_extracted": 1284, "rows_loaded": 0, "tasks_failed": 1, "tasks_upstream_failed": 1},
        airflow_dag_id=diamond.dag_id,
        airflow_run_id=f"manual__{started:%Y-%m-%dT%H:%M:%S}",
    )
    shape = {
        "extract_orders": ("success", 0.0, 4.2, {"rows_in": 1284, "rows_out": 1284}, 0, None),
        "clean_orders": ("success", 4.4, 6.1, {"rows_in": 1284, "rows_out": 1270}, 0, None),
        "enrich_customers": ("failed", 4.4, 42.9, {"rows_in": 1284, "rows_out": 0}, 1, FAILED_ERROR),
        "load_warehouse": ("upstream_failed", None, None, {}, 0, None),
    }
    tasks = {}
    for name, (status, start, end, metrics, retries, error) in shape.items():
        began = started + timedelta(seconds=start) if start is not None else None
        tasks[name] = TaskRun.objects.create(
            pipeline_run=run,
            pipeline_step=steps[name],
            status=status,
            started_at=began,
            completed_at=started + timedelta(seconds=end) if end is not None else None,
            metrics={**metrics, "try_number": retries + 1, "max_tries": retries + 1} if began else {},
            retry_count=retries,
            logs=tries_log(name, began, retries, rows=metrics.get("rows_out", 0), error=error)
            if began
            else "",
        )
    for source, target in (("extract_orders", "clean_orders"), ("extract_orders", "enrich_customers")):
        DataLineage.objects.create(
            source_task=tasks[source],
            target_task=tasks[target],
            relationship_type="filtered" if target == "clean_orders" else "derived",
            metadata={"datasets": ["orders"]},
        )
    Alert.objects.create(
        pipeline_run=run,
        task_run=tasks["enrich_customers"],
        level="error",
        alert_type="task_failed",
        message=FAILED_ERROR,
    )
    Alert.objects.create(
        pipeline_run=run,
        level="critical",
        alert_type="pipeline_failed",
        message="Orders diamond failed: 1 task failed, 1 upstream failed.",
    )
    return run


# ---------------------------------------------------------------- a large history, loaded with COPY
HISTORY_STATUSES = [("success", 0.92), ("failed", 0.06), ("cancelled", 0.01), ("timeout", 0.01)]
NULL = "\\N"
COPY_COLUMNS = {
    "runs": "pipeline_runs (id, pipeline_id, triggered_by_id, status, started_at, completed_at, context, metrics, "
    "trigger_type, airflow_dag_id, airflow_run_id)",
    "tasks": "task_runs (id, pipeline_run_id, pipeline_step_id, status, started_at, completed_at, input_data, "
    "output_data, logs, metrics, retry_count, run_started_at)",
    "alerts": "alerts (id, pipeline_run_id, task_run_id, organization_id, level, alert_type, message, metadata, "
    "is_resolved, created_at, resolved_at, condition_key, occurrences, last_seen_at)",
    "edges": "data_lineage (id, source_task_id, target_task_id, relationship_type, metadata, created_at)",
}


def copy_history(
    connection,
    owner,
    *,
    organizations: int = 20,
    pipelines: int = 1000,
    runs: int = 500_000,
    steps: int = 10,
    days: int = 365,
    lineage_per_run: int = 3,
    skew: float = 1.0,
    seed: int = 11,
    progress=print,
) -> dict:
    """``runs`` pipeline runs of ``steps`` task runs each over ``days`` days, loaded with COPY (bench/dashboard.py).

    Pipelines are picked with a Zipf-like weight 1/rank**``skew`` (a few busy pipelines, a long tail), pipeline
    ``k`` belonging to organization ``k % organizations``. Half the runs of the last two hours are still running;
    an ended run fails about one time in sixteen, at a random step (its later steps upstream-failed, never
    started). Each failed or timed-out run has a run alert and a task alert (open in the last week, resolved
    before), each organization three run-less open alerts; each run ``lineage_per_run`` lineage edges between its
    steps. Organizations, pipelines and steps go through the ORM (a few thousand rows); the rest is generated into
    temporary files (COPY text) and copied. Returns the organizations, the pipelines and the row counts.
    """
    import contextlib
    import tempfile
    import time

    from django_etl.core.models import Organization
    from django_etl.pipelines.models import Pipeline, PipelineStep

    rng = random.Random(seed)
    began = time.perf_counter()
    orgs = Organization.objects.bulk_create(
        [Organization(name=f"Org {n:02d}", slug=f"org-{n:02d}") for n in range(organizations)]
    )
    made = Pipeline.objects.bulk_create(
        [
            Pipeline(
                name=f"pipeline {k:04d}",
                organization=orgs[k % organizations],
                created_by=owner,
                status="active",
                config={"schedule": "@hourly"},
            )
            for k in range(pipelines)
        ]
    )
    step_rows = PipelineStep.objects.bulk_create(
        [
            PipelineStep(
                pipeline=pipeline,
                name=f"step {index:02d}",
                step_type="transform",
                order_index=index,
                config={"sql": "select 1"},
            )
            for pipeline in made
            for index in range(1, steps + 1)
        ]
    )
    shape = {
        "pipeline_ids": [str(p.pk) for p in made],
        "org_of": [str(orgs[k % organizations].pk) for k in range(pipelines)],
        "step_ids": [[str(s.pk) for s in step_rows[k * steps : (k + 1) * steps]] for k in range(pipelines)],
    }
    with contextlib.ExitStack() as stack:
        files = {
            name: stack.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8")) for name in COPY_COLUMNS
        }
        counts = _generate(
            files, rng, shape, runs=runs, days=days, lineage_per_run=lineage_per_run, skew=skew
        )
        for org in orgs:
            for n in range(3):
                now = _stamp(time.time())
                files["alerts"].write(
                    f"{uuid.uuid4()}\t{NULL}\t{NULL}\t{org.pk}\twarning\tcredential_expiring\t"
                    f"credential {n} expires soon\t{{}}\tf\t{now}\t{NULL}\t\t1\t{now}\n"
                )
                counts["alerts"] += 1
        progress(f"  generated {counts} in {time.perf_counter() - began:.0f} s")
        _copy_files(connection, files, counts, progress)
    return {"organizations": orgs, "pipelines": made, "counts": counts}


def _stamp(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def _generate(
    files, rng, shape, *, runs: int, days: int, lineage_per_run: int, skew: float
) -> dict[str, int]:
    import itertools
    import time

    pipeline_ids, org_of, step_ids = shape["pipeline_ids"], shape["org_of"], shape["step_ids"]
    pipelines = len(pipeline_ids)
    base_seconds = [rng.uniform(20, 900) for _ in range(pipelines)]
    cumulative = list(itertools.accumulate(1 / (rank + 1) ** skew for rank in range(pipelines)))
    now = time.time()
    starts = sorted(now - rng.random() * days * 86400.0 for _ in range(runs))
    chosen = rng.choices(range(pipelines), cum_weights=cumulative, k=runs)
    statuses = [status for status, _ in HISTORY_STATUSES]
    weights = [weight for _, weight in HISTORY_STATUSES]
    week_ago, two_hours_ago = now - 7 * 86400, now - 7200
    counts = dict.fromkeys(files, 0)
    write_run, write_task = files["runs"].write, files["tasks"].write
    write_alert, write_edge = files["alerts"].write, files["edges"].write
    for start_ts, k in zip(starts, chosen, strict=True):
        run_id, start = str(uuid.uuid4()), _stamp(start_ts)
        took = base_seconds[k] * rng.lognormvariate(0, 0.25)
        active = start_ts > two_hours_ago and rng.random() < 0.5
        status = "running" if active else rng.choices(statuses, weights=weights)[0]
        steps = step_ids[k]
        failing = rng.randrange(len(steps)) if status in ("failed", "timeout") else None
        current = rng.randrange(len(steps)) if active else None
        end = NULL if active else _stamp(start_ts + took)
        rows = int(took * 10)
        write_run(
            f"{run_id}\t{pipeline_ids[k]}\t{NULL}\t{status}\t{start}\t{end}\t{{}}\t"
            f'{{"rows_extracted": {rows}, "rows_loaded": {rows}}}\tscheduled\tetl_p{k:04d}\tscheduled__{start}\n'
        )
        clock, seconds, task_ids = start_ts, took / len(steps), []
        for index, step_id in enumerate(steps):
            task_id = str(uuid.uuid4())
            task_ids.append(task_id)
            if failing is not None and index > failing:
                task_status, began_at, ended_at = "upstream_failed", NULL, NULL
            elif current is not None and index >= current:
                task_status = "running" if index == current else "pending"
                began_at, ended_at = (_stamp(clock) if index == current else NULL), NULL
            else:
                task_status = status if index == failing else "success"
                began_at, ended_at = _stamp(clock), _stamp(clock + seconds)
            write_task(
                f"{task_id}\t{run_id}\t{step_id}\t{task_status}\t{began_at}\t{ended_at}\t{NULL}\t{NULL}\t\t"
                f'{{"rows_in": 100, "rows_out": 100}}\t0\t{start}\n'
            )
            clock += seconds
        counts["runs"] += 1
        counts["tasks"] += len(steps)
        for index in range(min(lineage_per_run, len(steps) - 1)):
            write_edge(f"{uuid.uuid4()}\t{task_ids[index]}\t{task_ids[index + 1]}\tdirect\t{{}}\t{start}\n")
            counts["edges"] += 1
        if failing is not None:
            resolved = "f" if start_ts > week_ago else "t"
            resolved_at = NULL if resolved == "f" else end
            for task, alert_type in ((NULL, "pipeline_failed"), (task_ids[failing], "task_failed")):
                write_alert(
                    f"{uuid.uuid4()}\t{run_id}\t{task}\t{org_of[k]}\terror\t{alert_type}\t"
                    f"{alert_type} in pipeline {k:04d}\t{{}}\t{resolved}\t{start}\t{resolved_at}\t\t1\t{end}\n"
                )
                counts["alerts"] += 1
    return counts


def _copy_files(connection, files, counts, progress) -> None:
    import time

    connection.ensure_connection()
    raw = connection.connection  # psycopg's own connection, in autocommit: each COPY commits
    with raw.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        # The generator's references are right by construction: skip the per-row foreign-key triggers (10M
        # lookups for 5M task runs); the indexes are maintained as usual.
        cursor.execute("SET session_replication_role = replica")
        for name, columns in COPY_COLUMNS.items():
            began = time.perf_counter()
            handle = files[name]
            handle.seek(0)
            with cursor.copy(f"COPY {columns} FROM STDIN") as copy:
                while chunk := handle.read(1 << 20):
                    copy.write(chunk)
            table = columns.split()[0]
            progress(f"  copied {counts[name]:,} rows into {table} in {time.perf_counter() - began:.0f} s")
        cursor.execute("SET session_replication_role = DEFAULT")
