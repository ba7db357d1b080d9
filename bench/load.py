"""Benchmark: CSV -> extract -> staging -> COPY load into PostgreSQL, against raw COPY and PostgresHook.insert_rows.

Usage: .venv/bin/python bench/load.py [--rows 2000000] [--sample 50000] [--dsn postgres://postgres@127.0.0.1/postgres]
Prints one line per measure (rows/s, seconds, peak memory) and the ratios the issue asks for.
The extract and load run the operators' step implementations (what EtlStepOperator.execute dispatches to) with
a file connector and a PostgreSQL connector; each phase's peak memory is the process's high-water mark since
the phase began.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_etl.settings")

COLUMNS = (
    "id bigint, customer_id bigint, quantity bigint, name text, city text, price double precision, "
    "discount double precision, created_at timestamptz, updated_at timestamptz, active boolean"
)


def make_csv(path: Path, rows: int) -> None:
    """A 10-column CSV: integers, text, decimals, timestamps, booleans; written line by line (flat memory)."""
    import random
    from datetime import UTC, datetime, timedelta

    rng = random.Random(42)
    cities = ["Paris", "Lyon", "Berlin", "Madrid", "Oslo", "Lisbon", "Rome", "Vienna"]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with open(path, "w") as out:
        out.write("id,customer_id,quantity,name,city,price,discount,created_at,updated_at,active\n")
        for i in range(1, rows + 1):
            created = start + timedelta(seconds=rng.randrange(365 * 86_400))
            out.write(
                f"{i},{rng.randrange(1, 100_000)},{rng.randrange(1, 50)},customer {i % 9973},"
                f"{cities[i % 8]},{rng.randrange(100_000) / 100:.2f},{rng.randrange(30) / 100:.2f},"
                f"{created:%Y-%m-%dT%H:%M:%SZ},{created + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ},"
                f"{'true' if i % 3 else 'false'}\n"
            )


def raw_copy(dsn: str, path: Path, table: str) -> float:
    """(a) the practical limit: the file's bytes streamed into COPY ... FROM STDIN (FORMAT csv, HEADER)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} ({COLUMNS})")
        started = time.perf_counter()
        with (
            conn.cursor().copy(f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER)") as copy,
            open(path, "rb") as f,
        ):
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        elapsed = time.perf_counter() - started
        conn.execute(f"DROP TABLE {table}")
    return elapsed


def hook_insert_rows(dsn: str, path: Path, table: str, sample: int) -> float:
    """(b) what an Airflow user writes by hand: PostgresHook.insert_rows over parsed rows (a sample)."""
    from urllib.parse import urlparse

    from airflow.models.connection import Connection
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    url = urlparse(dsn)
    os.environ["AIRFLOW_CONN_BENCH_PG"] = Connection(
        conn_type="postgres",
        host=url.hostname,
        port=url.port or 5432,
        login=url.username or "postgres",
        schema=url.path.lstrip("/"),
    ).get_uri()
    hook = PostgresHook(postgres_conn_id="bench_pg")
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [row for _, row in zip(range(sample), reader, strict=False)]
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} ({COLUMNS})")
    started = time.perf_counter()
    hook.insert_rows(table, rows, target_fields=header, commit_every=5000)
    elapsed = time.perf_counter() - started
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {table}")
    return elapsed


def run_step_process(args: tuple) -> dict[str, float]:
    """One step in a fresh process, as Airflow runs each task: (seconds, peak MB, rows out, staged MB)."""
    step_type, config, inputs, output, run_id, staging_url, connectors, root = args
    import django

    django.setup()
    from django.conf import settings

    from airflow_plugin import metrics
    from airflow_plugin.steps.context import StepRun
    from django_etl.dataplane.staging import Staging
    from django_etl.stepkinds import STEP_KINDS, load_implementation, step_kind

    settings.ETL_FILE_ROOTS = [root]
    staging = Staging(staging_url)
    step = {
        "id": step_type,
        "name": step_type,
        "task_id": step_type,
        "step_type": step_type,
        "inputs": inputs,
        "output": output,
    }
    run = StepRun(
        step=step,
        config=STEP_KINDS[step_type].schema.model_validate(config),
        dag_id="bench",
        run_id=run_id,
        task_id=step_type,
        staging=staging,
        connectors=connectors,
    )
    metrics.reset_peak_memory()
    started = time.perf_counter()
    load_implementation(step_kind(step_type))(run)
    seconds = time.perf_counter() - started
    peak = metrics.peak_memory_bytes() / 2**20
    staging.write_manifest(
        "bench", run_id, step_type, {"status": "success", "task_id": step_type, "outputs": run.result.outputs}
    )
    return {
        "seconds": seconds,
        "peak_mb": peak,
        "rows": run.result.rows_out,
        "staged_mb": run.result.bytes / 2**20,
    }


def operators(dsn: str, path: Path, table: str, mode: str, workdir: Path) -> dict[str, float]:
    """Extract (file connector) then load (PostgreSQL connector), each step in its own process."""
    import multiprocessing
    from urllib.parse import urlparse

    import psycopg

    url = urlparse(dsn)
    connectors = {
        "landing": {"type": "file", "name": "landing", "config": {"root": str(path.parent)}, "secret": {}},
        "warehouse": {
            "type": "database",
            "name": "warehouse",
            "config": {
                "engine": "postgresql",
                "host": url.hostname,
                "port": url.port or 5432,
                "database": url.path.lstrip("/"),
            },
            "secret": {"user": url.username or "postgres", "password": ""},
        },
    }
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    run_id = f"bench-{mode}-{time.time()}"  # a new ledger key on every invocation
    staging_url = str(workdir / f"staging-{mode}")
    load_config = {
        "connector": "warehouse",
        "table": table,
        "mode": mode,
        "key": ["id"] if mode == "upsert" else [],
    }
    steps = [
        ("extract", {"connector": "landing", "path": path.name, "format": "csv"}, [], "rows"),
        ("load", load_config, ["rows"], None),
    ]
    figures: dict[str, float] = {}
    context = multiprocessing.get_context("spawn")
    for step_type, config, inputs, output in steps:
        with context.Pool(1) as pool:
            result = pool.apply(
                run_step_process,
                ((step_type, config, inputs, output, run_id, staging_url, connectors, str(path.parent)),),
            )
        figures.update({f"{step_type}_{k}": v for k, v in result.items()})
    with psycopg.connect(dsn, autocommit=True) as conn:
        figures["table_rows"] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        conn.execute(f"DROP TABLE {table}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--sample", type=int, default=50_000, help="rows for PostgresHook.insert_rows")
    parser.add_argument(
        "--dsn", default=os.environ.get("BENCH_DSN", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--modes", default="append,upsert")
    parser.add_argument("--skip-hook", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=2, help="alternate raw COPY and the operators N times; keep each best"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="etl-bench-") as tmp:
        workdir = Path(tmp)
        path = workdir / "orders.csv"
        make_csv(path, args.rows)
        size = path.stat().st_size / 2**20
        print(f"input: {args.rows:,} rows x 10 columns, {size:.0f} MB CSV")
        if not args.skip_hook:
            hook = hook_insert_rows(args.dsn, path, "bench_hook", args.sample)
            print(
                f"(b) PostgresHook.insert_rows ({args.sample:,}-row sample): {args.sample / hook:,.0f} rows/s"
            )
        # Other work on the machine moves timings by tens of percent: alternate the measures, keep each best.
        raw = float("inf")
        best: dict[str, dict[str, float]] = {}
        for _ in range(max(1, args.repeat)):
            raw = min(raw, raw_copy(args.dsn, path, "bench_raw"))
            for mode in args.modes.split(","):
                f = operators(args.dsn, path, f"bench_ops_{mode}", mode, workdir)
                assert f["table_rows"] == args.rows, f"expected {args.rows} rows, table has {f['table_rows']}"
                f["total"] = f["extract_seconds"] + f["load_seconds"]
                if mode not in best or f["total"] < best[mode]["total"]:
                    best[mode] = f
        raw_rate = args.rows / raw
        print(f"(a) raw COPY FROM STDIN: {raw:.2f} s, {raw_rate:,.0f} rows/s")
        for mode, f in best.items():
            rate = args.rows / f["total"]
            print(
                f"operators {mode}: extract {f['extract_seconds']:.2f} s (peak {f['extract_peak_mb']:.0f} MB, "
                f"staged {f['extract_staged_mb']:.0f} MB) + load {f['load_seconds']:.2f} s "
                f"(peak {f['load_peak_mb']:.0f} MB) = {f['total']:.2f} s, {rate:,.0f} rows/s, "
                f"{rate / raw_rate:.0%} of raw COPY"
            )


if __name__ == "__main__":
    main()
