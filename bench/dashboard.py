"""The console's queries on a year of history (5M task runs), partitioned task_runs against an unpartitioned copy.

    .venv/bin/python bench/dashboard.py [--runs 500000] [--steps 10] [--pipelines 1000] [--organizations 20]
                                        [--lineage-per-run 3] [--repeat 30] [--inserts 2000] [--keep]

It creates the database ``etl_bench_dashboard`` on ``--server`` (dropped first, and at the end unless ``--keep``),
migrates it, creates the twelve past months' partitions, and loads with COPY ``--runs`` pipeline runs of
``--steps`` task runs each over a year (``bench/console_data.copy_history``: skewed, a few busy pipelines and a
long tail; alerts; lineage), then ANALYZE. The same task runs are copied into ``plain.task_runs``, an
unpartitioned table with the same columns, indexes and foreign keys; the console's statements run once with
``search_path`` ``public`` (partitioned) and once ``plain, public`` (unpartitioned), the same SQL text.

The statements are the console's own: those ``dashboard.build()`` sends for the busiest organization, and those
of the admin's lists (active runs, runs in a date range, one pipeline's task runs of last week) requested through
Django's test client as a viewer of that organization — captured, then each timed ``--repeat`` times after a
warm-up (median, p95). Statements on task_runs print the partitions their plan reads. Then the write-back's
insert (``upsert_task_run``, a try's first event) is timed into each table, alternating, and one month past a
12-month retention is archived, dropped and restored (``runs/retention.py``) with its alerts and lineage.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
DB_NAME = "etl_bench_dashboard"
TARGET_MS = 10.0
RUN_TABLES = ("pipeline_runs", "task_runs", "alerts", "data_lineage", "task_runs_daily")


def admin(server: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def setup(server: str) -> None:
    os.environ["DATABASE_URL"] = f"{server}/{DB_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_etl.settings")
    os.environ["ETL_REGENERATE_ON_SAVE"] = "false"
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def execute(cursor, sql: str) -> None:
    cursor.execute(sql)
    if cursor.description:
        cursor.fetchall()


def past_partitions(months: int) -> None:
    from django.db import connection

    from django_etl.runs import partitioning

    this_month = partitioning.month_start(time_now())
    present = partitioning.existing_partitions(connection)
    for back in range(1, months + 1):
        month = partitioning.add_months(this_month, -back)
        if partitioning.partition_name(month) not in present:
            partitioning.create_month(connection, month)


def time_now():
    from django.utils import timezone

    return timezone.now()


def unpartitioned_copy(progress=print) -> None:
    """plain.task_runs: the same rows, columns, indexes and foreign keys, in one table."""
    from django.db import connection

    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '256MB'")
        cursor.execute("DROP SCHEMA IF EXISTS plain CASCADE")
        cursor.execute("CREATE SCHEMA plain")
        cursor.execute(
            "CREATE TABLE plain.task_runs (LIKE public.task_runs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        cursor.execute("INSERT INTO plain.task_runs SELECT * FROM public.task_runs")
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'task_runs'"
        )
        for (definition,) in cursor.fetchall():
            cursor.execute(definition.replace(" ON ONLY public.task_runs ", " ON plain.task_runs "))
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'public.task_runs'::regclass "
            "AND contype = 'f'"
        )
        for (definition,) in cursor.fetchall():
            cursor.execute(f"ALTER TABLE plain.task_runs ADD {definition}")
        cursor.execute("VACUUM ANALYZE plain.task_runs")
    progress(f"  unpartitioned copy plain.task_runs in {time.perf_counter() - began:.0f} s")


def partitioning_table_exists(name: str) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def capture(run) -> list[str]:
    """The SQL statements ``run()`` sends on run tables (what PostgreSQL receives: parameters bound)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        run()
    return [q["sql"] for q in captured.captured_queries if any(f'"{t}"' in q["sql"] for t in RUN_TABLES)]


def plan_partitions(cursor, sql: str) -> list[str] | None:
    """The task_runs partitions (or the plain table) a statement's plan reads; None when it reads none."""
    cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
    plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    found, stack = [], [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        name = str(node.get("Relation Name", ""))
        if re.fullmatch(r"task_runs(_y\d{4}m\d{2}|_default)?", name) and name not in found:
            found.append(name)
        stack.extend(node.get("Plans", []))
    return sorted(found) or None


def timed(cursor, sql: str, repeat: int) -> list[float]:
    began = time.perf_counter()
    for _ in range(3):
        execute(cursor, sql)  # warm: plan caches, buffers
    if time.perf_counter() - began > 3:
        repeat = min(repeat, 5)  # a statement of seconds (the unpartitioned copy's worst): enough to see it
    timings = []
    for _ in range(repeat):
        began = time.perf_counter()
        execute(cursor, sql)
        timings.append((time.perf_counter() - began) * 1000)
    return timings


def console_statements(organization, viewer, busy_pipeline) -> list[tuple[str, str]]:
    """(label, SQL) of the console's queries, captured from the dashboard module and the admin's lists."""
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from django_etl.runs import dashboard

    now = time_now()
    labels = [
        "latest run per pipeline",
        "latest runs' rows",
        "success rates 7/30 d",
        "duration trend (last 20 runs)",
        "open alerts by level",
        "step figures 30 d: rollup",
        "step figures 30 d: since the rollup (live)",
    ]
    board = capture(lambda: dashboard.build(organization, now=now))
    statements = list(zip(labels, board, strict=False))
    client = Client(HTTP_HOST="localhost")
    client.force_login(viewer)
    runs_url = reverse("admin:runs_pipelinerun_changelist")
    tasks_url = reverse("admin:runs_taskrun_changelist")
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)

    def window(field: str, start, end) -> str:  # as the list's date filter links send them (aware)
        return urlencode({f"{field}__gte": str(start), f"{field}__lt": str(end)})

    pages = {
        "active runs (runs list)": f"{runs_url}?status__exact=running",
        "runs in a date range (a week, 2 months ago)": f"{runs_url}?"
        + window("started_at", midnight - timedelta(days=63), midnight - timedelta(days=56)),
        "one pipeline's task runs, last week": f"{tasks_url}?pipeline={busy_pipeline.pk}&"
        + window("run_started_at", midnight - timedelta(days=7), midnight + timedelta(days=1)),
    }
    from django_etl.runs.models import PipelineRun

    failed = (
        PipelineRun.objects.filter(pipeline=busy_pipeline, status="failed").order_by("-started_at").first()
    )
    pages["run page (a failed run of the busiest pipeline)"] = reverse(
        "admin:runs_pipelinerun_change", args=[failed.pk]
    )
    for label, url in pages.items():
        client.get(url)  # warm-up: session, content types, templates

        def get(url=url, label=label):
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"{label}: {url} answered {response.status_code}")

        for index, sql in enumerate(capture(get), start=1):
            statements.append((f"{label} #{index}", sql))
    return statements


def measure_queries(statements, repeat: int) -> list[dict]:
    from django.db import connection

    results = []
    with connection.cursor() as cursor:
        for label, sql in statements:
            row = {"label": label, "sql": sql}
            for layout, path in (("partitioned", "public"), ("unpartitioned", "plain, public")):
                cursor.execute(f"SET search_path TO {path}")
                timings = timed(cursor, sql, repeat)
                row[layout] = (statistics.median(timings), percentile(timings, 0.95))
                row[f"{layout}_reads"] = plan_partitions(cursor, sql)
            cursor.execute("SET search_path TO public")
            results.append(row)
    return results


def print_queries(results) -> None:
    print(f"\n{'console query':<48} {'partitioned':>22} {'unpartitioned':>22}   task_runs partitions read")
    for row in results:
        part, plain = row["partitioned"], row["unpartitioned"]
        flag = "" if part[0] < TARGET_MS else "  <-- over 10 ms"
        reads = row["partitioned_reads"]
        print(
            f"{row['label']:<48} {part[0]:7.2f} ms (p95 {part[1]:6.2f}) {plain[0]:7.2f} ms (p95 {plain[1]:6.2f})   "
            f"{(str(len(reads)) + ': ' + ', '.join(reads)) if reads else '-'}{flag}"
        )


def insert_rate(pipeline, inserts: int, rounds: int = 8) -> dict[str, float]:
    """Task runs per second through the write-back's insert, into each layout, alternating rounds."""
    from django.db import connections

    from airflow_plugin.writeback import delivery
    from airflow_plugin.writeback.events import TaskInfo
    from airflow_plugin.writeback.tasks import upsert_task_run
    from django_etl.pipelines.models import PipelineStep
    from django_etl.runs.models import PipelineRun

    delivery.setup_django()  # registers the recorder's own database alias, as in a task process
    recorder = connections[delivery.ALIAS]
    steps = list(PipelineStep.objects.filter(pipeline=pipeline).order_by("order_index"))
    per_round = max(1, inserts // rounds // len(steps))
    elapsed = {"partitioned": 0.0, "unpartitioned": 0.0}
    count = dict.fromkeys(elapsed, 0)
    for number in range(rounds * 2):
        layout = "partitioned" if number % 2 == 0 else "unpartitioned"
        runs = [
            PipelineRun.objects.create(pipeline=pipeline, trigger_type="scheduled", status="running")
            for _ in range(per_round)
        ]
        with recorder.cursor() as cursor:
            cursor.execute("SET search_path TO " + ("public" if layout == "partitioned" else "plain, public"))
        began = time.perf_counter()
        for run in runs:
            for step in steps:
                task = TaskInfo(
                    task_id=step.name, event="execute", state="running", try_number=1, step_id=str(step.pk)
                )
                upsert_task_run(run, task, None, None)
        elapsed[layout] += time.perf_counter() - began
        count[layout] += len(runs) * len(steps)
    with recorder.cursor() as cursor:
        cursor.execute("SET search_path TO public")
    return {layout: count[layout] / elapsed[layout] for layout in elapsed}


def archive_round_trip(progress=print) -> dict:
    """Archive the oldest full month (past a 12-month retention) with its alerts and lineage, then restore it."""
    import tempfile

    from django.db import connection

    from django_etl.runs import partitioning, retention

    this_month = partitioning.month_start(time_now())
    month = partitioning.add_months(this_month, -12)
    with connection.cursor() as cursor:
        lower, upper = partitioning.month_bounds(month)
        cursor.execute(
            "SELECT count(*) FROM task_runs WHERE run_started_at >= %s AND run_started_at < %s",
            [lower, upper],
        )
        tasks = cursor.fetchone()[0]
    with tempfile.TemporaryDirectory(prefix="etl-archive-") as folder:
        began = time.perf_counter()
        marks = [("start", began)]

        def step_done(text: str) -> None:  # the state changes: archived, detached, purged, dropped
            what = text.split(": ", 1)[1]
            if not what[0].isdigit() and " row(s) archived" not in what:
                marks.append((what.split(" to ")[0], time.perf_counter()))

        record = retention.archive_month(month, location=folder, progress=step_done)
        archived = time.perf_counter() - began
        steps = {name: at - marks[n][1] for n, (name, at) in enumerate(marks[1:])}
        size = sum(entry["bytes"] for entry in record.manifest["tables"].values())
        began = time.perf_counter()
        retention.restore_month(month)
        restored = time.perf_counter() - began
    rows = {table: entry["rows"] for table, entry in record.manifest["tables"].items()}
    return {
        "month": f"{month:%Y-%m}",
        "task_runs": tasks,
        "rows": rows,
        "archive_s": archived,
        "steps": steps,
        "restore_s": restored,
        "bytes": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500_000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--organizations", type=int, default=20)
    parser.add_argument("--lineage-per-run", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--inserts", type=int, default=2000)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--skip-archive", action="store_true", help="Leave out the archive round trip.")
    parser.add_argument("--keep", action="store_true", help="Keep the database (drop it yourself).")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Use the history a --keep run left (no generation); implies --keep.",
    )
    args = parser.parse_args()
    args.keep = args.keep or args.reuse
    if not args.reuse:
        admin(args.server, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        admin(args.server, f'CREATE DATABASE "{DB_NAME}"')
    try:
        run(args)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            admin(args.server, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def run(args) -> None:
    setup(args.server)
    from django.db import connection

    from bench.console_data import copy_history
    from django_etl.core.models import Organization, OrganizationMembership, User
    from django_etl.pipelines.models import Pipeline

    if not args.reuse:
        print(f"load {os.getloadavg()[0]:.2f}; generating {args.runs:,} runs x {args.steps} task runs ...")
        began = time.perf_counter()
        past_partitions(12)
        owner = User.objects.create_user("bench-owner", "owner@bench.example", None)
        copy_history(
            connection,
            owner,
            organizations=args.organizations,
            pipelines=args.pipelines,
            runs=args.runs,
            steps=args.steps,
            lineage_per_run=args.lineage_per_run,
        )
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # as autovacuum leaves a table that stopped changing
        print(f"  history ready in {time.perf_counter() - began:.0f} s")
    if not args.reuse or not partitioning_table_exists("plain.task_runs"):
        unpartitioned_copy()
    busy_org = Organization.objects.get(slug="org-00")  # pipeline 0000, the busiest, and every 20th after it
    busy_pipeline = Pipeline.objects.get(name="pipeline 0000")
    viewer, _ = User.objects.get_or_create(
        username="bench-viewer", defaults={"email": "viewer@bench.example"}
    )
    OrganizationMembership.objects.get_or_create(
        user=viewer, organization=busy_org, defaults={"role": "viewer"}
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE p.organization_id = %s), count(*) FROM pipeline_runs r "
            "JOIN pipelines p ON p.id = r.pipeline_id",
            [busy_org.pk],
        )
        in_org, total = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM pipeline_runs WHERE pipeline_id = %s", [busy_pipeline.pk])
        busiest = cursor.fetchone()[0]
    print(f"  busiest organization: {in_org:,} of {total:,} runs; busiest pipeline: {busiest:,} runs")

    from django_etl.runs import rollup

    began = time.perf_counter()
    summary = rollup.refresh()  # the etl_run_rollups job: its first pass sums the 40 kept days
    first_pass = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE task_runs_daily")  # what autovacuum does to a table just filled
    began = time.perf_counter()
    rollup.refresh()  # a pass 10 minutes later: the day before and today again
    print(
        f"  rollup (etl_run_rollups): first pass {first_pass:.1f} s ({summary['rows']:,} rows), "
        f"next pass {time.perf_counter() - began:.1f} s"
    )
    statements = console_statements(busy_org, viewer, busy_pipeline)
    results = measure_queries(statements, args.repeat)
    print_queries(results)
    over = [row["label"] for row in results if row["partitioned"][0] >= TARGET_MS]
    wide = [row["label"] for row in results if row["partitioned_reads"] and len(row["partitioned_reads"]) > 2]
    print(
        f"\nover {TARGET_MS:g} ms median: {over or 'none'}; reading more than 2 task_runs partitions: {wide or 'none'}"
    )

    rates = insert_rate(busy_pipeline, args.inserts)
    print(
        f"\nwrite-back insert (upsert_task_run, first event): partitioned {rates['partitioned']:.0f}/s, "
        f"unpartitioned {rates['unpartitioned']:.0f}/s ({100 * rates['partitioned'] / rates['unpartitioned']:.0f} %)"
    )
    if args.skip_archive:
        return
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA plain CASCADE")  # its foreign keys would hold the archived month's runs
    trip = archive_round_trip()
    print(
        f"\narchive of {trip['month']} ({trip['task_runs']:,} task runs; {trip['rows']}): {trip['archive_s']:.1f} s, "
        f"{trip['bytes'] / 1e6:.1f} MB gzip'd; restore {trip['restore_s']:.1f} s"
    )
    print("  steps: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in trip["steps"].items()))
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
