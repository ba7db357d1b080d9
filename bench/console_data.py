"""Sample records for looking at the console: a diamond pipeline with a month of runs and one failed run.

Used by ``bench/screenshots.py`` (the pictures in docs/screenshots/) and ``bench/console.py`` (page timings).
The records are what write-back would have written (statuses, metrics, JSON-lines logs, alerts, lineage edges),
made directly: nothing here talks to Airflow.
"""

from __future__ import annotations

import json
import random
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
            logs=tries_log(name, began, retries, rows=metrics.get("rows_out", 0), error=error) if began else "",
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
