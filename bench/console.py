"""Console page timings at 10,000 runs and 100,000 task runs on PostgreSQL (issue 16; target well under 200 ms).

    .venv/bin/python bench/console.py [--runs 10000] [--steps 10] [--pipelines 20] [--repeat 20]

It creates the database ``etl_bench_console`` on ``--server`` (dropped first), migrates, makes a busy
organization (``tests/console/busy.py``: ``--runs`` runs over a year, one task run per step each, analysed) plus the
sample diamond of ``bench/console_data.py``, then requests each console page through Django's test client as a
viewer of the organization, ``--repeat`` times after one warm-up, and prints the median and p95 of each, with the
number of SQL queries of one request. Figures go to the lead, not into docs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DB_NAME = "etl_bench_console"


def admin(server: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def setup(server: str) -> None:
    os.environ["DATABASE_URL"] = f"{server}/{DB_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_etl.settings")
    os.environ["ETL_REGENERATE_ON_SAVE"] = "false"  # sample records: no DAG files
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def pages(organization, diamond, failed_run) -> dict[str, str]:
    from django.urls import reverse

    from django_etl.runs.models import PipelineRun, TaskRun

    busy_run = PipelineRun.objects.filter(pipeline__organization=organization).order_by("-started_at").first()
    failed_task = TaskRun.objects.get(pipeline_run=failed_run, status="failed")
    return {
        "dashboard (admin home)": reverse("admin:index") + f"?organization={organization.pk}",
        "pipeline runs list": reverse("admin:runs_pipelinerun_changelist"),
        "task runs list": reverse("admin:runs_taskrun_changelist"),
        "run page (busy pipeline)": reverse("admin:runs_pipelinerun_change", args=[busy_run.pk]),
        "run page (failed diamond)": reverse("admin:runs_pipelinerun_change", args=[failed_run.pk]),
        "task run page (log)": reverse("admin:runs_taskrun_change", args=[failed_task.pk]),
        "pipeline page (diamond)": reverse("admin:pipelines_pipeline_change", args=[diamond.pk]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--pipelines", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    admin(args.server, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    admin(args.server, f'CREATE DATABASE "{DB_NAME}"')
    setup(args.server)
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench import console_data
    from django_etl.core.models import OrganizationMembership, User
    from django_etl.runs.models import PipelineRun, TaskRun
    from tests.console.busy import make_busy_organization

    owner = User.objects.create_user("bench-owner", "owner@bench.example", None)
    viewer = User.objects.create_user("bench-viewer", "viewer@bench.example", None)
    started = time.perf_counter()
    organization = make_busy_organization(
        owner, pipelines=args.pipelines, steps=args.steps, runs=args.runs, slug="bench"
    )
    diamond, failed_run = console_data.build(owner, organization, history_days=30)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    for user, role in ((owner, "owner"), (viewer, "viewer")):
        OrganizationMembership.objects.create(user=user, organization=organization, role=role)
    print(
        f"{PipelineRun.objects.count():,} runs, {TaskRun.objects.count():,} task runs "
        f"(made in {time.perf_counter() - started:.1f} s)"
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(viewer)
    for name, url in pages(organization, diamond, failed_run).items():
        response = client.get(url)  # warm-up: templates, content types, the session
        if response.status_code != 200:
            raise SystemExit(f"{name}: {url} answered {response.status_code}")
        reset_queries()  # each request resets the log too: start the capture from an empty one
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        timings = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            client.get(url)
            timings.append(time.perf_counter() - began)
        print(
            f"{name:<28} median {statistics.median(timings) * 1000:7.1f} ms   "
            f"p95 {percentile(timings, 0.95) * 1000:7.1f} ms   {len(captured)} queries"
        )


if __name__ == "__main__":
    main()
