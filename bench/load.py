"""Benchmark: CSV -> extract -> staging -> COPY load into PostgreSQL, against raw COPY and PostgresHook.insert_rows.

Usage: .venv/bin/python bench/load.py [--rows 2000000] [--sample 50000] [--dsn postgres://postgres@127.0.0.1/postgres]
       [--mysql-url mysql://root@127.0.0.1:3306 --mysql-rows 200000]   (also: CSV -> staging -> MySQL)
       .venv/bin/python bench/load.py --memory-mb 100,1000 [--quoted]   (extract only: peak memory by file size)
Prints one line per measure (rows/s, seconds, peak memory) and the ratios the issue asks for.
The extract and load run the operators' step implementations (what EtlStepOperator.execute dispatches to) with
a file connector and a PostgreSQL connector; each phase's peak memory is the process's high-water mark since
the phase began. ``--quoted`` writes the messy variant: quoted text fields, every tenth one holding a newline,
a delimiter and doubled quotes (what spreadsheets and CRMs export). ``--memory-mb`` writes files of those sizes
(generated here, in a temporary folder, never kept) and runs only the extract on each.
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
# The benchmark's warehouse is the local server: the network policy refuses loopback unless allowed.
os.environ.setdefault("ETL_NETWORK_ALLOW", "127.0.0.0/8,::1")

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


def make_quoted_csv(path: Path, rows: int) -> None:
    """The same columns, text fields quoted; every tenth name holds a newline, a comma and doubled quotes."""
    import random
    from datetime import UTC, datetime, timedelta

    rng = random.Random(42)
    cities = ["Paris", "Lyon", "Berlin", "Madrid", "Oslo", "Lisbon", "Rome", "Vienna"]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with open(path, "w") as out:
        out.write("id,customer_id,quantity,name,city,price,discount,created_at,updated_at,active\n")
        for i in range(1, rows + 1):
            created = start + timedelta(seconds=rng.randrange(365 * 86_400))
            name = f'customer {i % 9973}\nsays ""hi"", ok' if i % 10 == 0 else f"customer {i % 9973}"
            out.write(
                f'{i},{rng.randrange(1, 100_000)},{rng.randrange(1, 50)},"{name}",'
                f'"{cities[i % 8]}",{rng.randrange(100_000) / 100:.2f},{rng.randrange(30) / 100:.2f},'
                f"{created:%Y-%m-%dT%H:%M:%SZ},{created + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ},"
                f"{'true' if i % 3 else 'false'}\n"
            )


def make_csv_of_size(path: Path, megabytes: int, quoted: bool) -> int:
    """A CSV of about ``megabytes`` MB: a generated block of rows written again and again (fast); its row count."""
    block_rows = 100_000
    sample = path.with_suffix(".block")
    (make_quoted_csv if quoted else make_csv)(sample, block_rows)
    header, _, block = sample.read_bytes().partition(b"\n")
    sample.unlink()
    rows = 0
    with open(path, "wb") as out:
        out.write(header + b"\n")
        while out.tell() < megabytes * 2**20:
            out.write(block)
            rows += block_rows
    return rows


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


MYSQL_COLUMNS = (
    "id BIGINT, customer_id BIGINT, quantity BIGINT, name TEXT, city TEXT, price DOUBLE, discount DOUBLE, "
    "created_at DATETIME(6), updated_at DATETIME(6), active TINYINT(1)"
)


def mysql_command(url: str, *extra: str) -> list[str]:
    """The mysql C client for ``url`` (mysql://user:password@host:port/database)."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    command = ["mysql", "-h", parsed.hostname or "127.0.0.1", "-P", str(parsed.port or 3306)]
    command += ["-u", parsed.username or "root", *([f"-p{parsed.password}"] if parsed.password else [])]
    return [*command, *extra]


def mysql_sql(url: str, database: str | None, sql: str) -> str:
    import subprocess

    command = mysql_command(url, "--batch", "--skip-column-names", *([database] if database else []))
    return subprocess.run(command, input=sql.encode(), check=True, capture_output=True).stdout.decode()


def mysql_raw_load(url: str, database: str, path: Path) -> float:
    """(c) MySQL's practical limit: the C client's LOAD DATA LOCAL INFILE (which the platform never uses)."""
    import subprocess

    mysql_sql(url, database, f"DROP TABLE IF EXISTS raw_orders; CREATE TABLE raw_orders ({MYSQL_COLUMNS});")
    statement = (
        f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE raw_orders FIELDS TERMINATED BY ',' IGNORE 1 LINES "
        "(id, customer_id, quantity, name, city, price, discount, @created, @updated, @active) "
        "SET created_at = STR_TO_DATE(@created, '%Y-%m-%dT%H:%i:%sZ'), "
        "updated_at = STR_TO_DATE(@updated, '%Y-%m-%dT%H:%i:%sZ'), active = (@active = 'true')"
    )
    started = time.perf_counter()
    subprocess.run(mysql_command(url, "--local-infile=1", database, "-e", statement), check=True)
    return time.perf_counter() - started


def mysql_operators(url: str, database: str, path: Path, mode: str, workdir: Path) -> dict[str, float]:
    """Extract (file connector) then load (MySQL connector), each step in its own process."""
    import multiprocessing
    from urllib.parse import urlparse

    parsed = urlparse(url)
    connectors = {
        "landing": {"type": "file", "name": "landing", "config": {"root": str(path.parent)}, "secret": {}},
        "shop": {
            "type": "database",
            "name": "shop",
            "config": {
                "engine": "mysql",
                "host": parsed.hostname or "127.0.0.1",
                "port": parsed.port or 3306,
                "database": database,
            },
            "secret": {"user": parsed.username or "root", "password": parsed.password or ""},
        },
    }
    mysql_sql(url, database, "DROP TABLE IF EXISTS orders;")
    run_id = f"bench-mysql-{mode}-{time.time()}"
    staging_url = str(workdir / f"staging-mysql-{mode}")
    steps = [
        ("extract", {"connector": "landing", "path": path.name, "format": "csv"}, [], "rows"),
        (
            "load",
            {"connector": "shop", "table": "orders", "mode": mode, "key": ["id"] if mode == "upsert" else []},
            ["rows"],
            None,
        ),
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
    figures["table_rows"] = int(mysql_sql(url, database, "SELECT count(*) FROM orders;").strip())
    return figures


def mysql_figures(url: str, path: Path, rows: int, modes: list[str], repeat: int, workdir: Path) -> None:
    """MySQL rows: the operators (file -> staging -> MySQL) against the client's LOAD DATA LOCAL INFILE."""
    database = "etl_bench_load"
    mysql_sql(url, None, f"DROP DATABASE IF EXISTS {database}; CREATE DATABASE {database};")
    raw, best = float("inf"), {}
    for _ in range(max(1, repeat)):
        raw = min(raw, mysql_raw_load(url, database, path))
        for mode in modes:
            f = mysql_operators(url, database, path, mode, workdir)
            assert f["table_rows"] == rows, f"expected {rows} rows, MySQL table has {f['table_rows']}"
            f["total"] = f["extract_seconds"] + f["load_seconds"]
            if mode not in best or f["total"] < best[mode]["total"]:
                best[mode] = f
    raw_rate = rows / raw
    print(
        f"(c) MySQL LOAD DATA LOCAL INFILE (mysql client; never used by the platform): {raw:.2f} s, {raw_rate:,.0f} rows/s"
    )
    for mode, f in best.items():
        rate = rows / f["total"]
        print(
            f"operators MySQL {mode}: extract {f['extract_seconds']:.2f} s + load {f['load_seconds']:.2f} s "
            f"(peak {f['load_peak_mb']:.0f} MB) = {f['total']:.2f} s, {rate:,.0f} rows/s, "
            f"{rate / raw_rate:.0%} of LOAD DATA"
        )
    mysql_sql(url, None, f"DROP DATABASE {database};")


def extract_figures(path: Path, workdir: Path) -> dict[str, float]:
    """The extract step alone (file connector -> staged Parquet) in a fresh process."""
    import multiprocessing

    connectors = {
        "landing": {"type": "file", "name": "landing", "config": {"root": str(path.parent)}, "secret": {}}
    }
    config = {"connector": "landing", "path": path.name, "format": "csv"}
    staging_url = str(workdir / "staging-memory")
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(
            run_step_process,
            (
                (
                    "extract",
                    config,
                    [],
                    "rows",
                    f"memory-{time.time()}",
                    staging_url,
                    connectors,
                    str(path.parent),
                ),
            ),
        )


def memory(sizes: list[int], quoted: bool, repeat: int) -> None:
    """Peak memory and rate of the extract for files of each size; the spread the issue bounds (20%)."""
    peaks = {}
    with tempfile.TemporaryDirectory(prefix="etl-bench-memory-") as tmp:
        workdir = Path(tmp)
        for size in sizes:
            path = workdir / f"orders-{size}mb.csv"
            rows = make_csv_of_size(path, size, quoted)
            best: dict[str, float] | None = None
            for _ in range(max(1, repeat)):
                f = extract_figures(path, workdir)
                assert f["rows"] == rows, f"expected {rows} rows, staged {f['rows']}"
                best = f if best is None or f["seconds"] < best["seconds"] else best
            peaks[size] = best["peak_mb"]
            print(
                f"extract {'quoted ' if quoted else ''}{path.stat().st_size / 2**20:.0f} MB CSV, {rows:,} rows: "
                f"{best['seconds']:.2f} s, {rows / best['seconds']:,.0f} rows/s, peak {best['peak_mb']:.0f} MB"
            )
            path.unlink()
    low, high = min(peaks.values()), max(peaks.values())
    print(f"peak memory spread: {low:.0f} -> {high:.0f} MB, {high / low - 1:+.0%}")


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
    parser.add_argument("--quoted", action="store_true", help="the messy variant: quoted multi-line fields")
    parser.add_argument(
        "--memory-mb", default="", help="e.g. 100,1000: extract-only peak memory by file size"
    )
    parser.add_argument(
        "--mysql-url",
        default=os.environ.get("BENCH_MYSQL_URL", ""),
        help="also load into MySQL/MariaDB at this URL (mysql://root@127.0.0.1:3306), against LOAD DATA",
    )
    parser.add_argument("--mysql-rows", type=int, default=200_000, help="rows of the MySQL measure")
    args = parser.parse_args()
    if args.memory_mb:
        memory([int(s) for s in args.memory_mb.split(",")], args.quoted, args.repeat)
        return
    with tempfile.TemporaryDirectory(prefix="etl-bench-") as tmp:
        workdir = Path(tmp)
        path = workdir / "orders.csv"
        (make_quoted_csv if args.quoted else make_csv)(path, args.rows)
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
        if args.mysql_url:
            small = workdir / "orders-mysql.csv"
            make_csv(small, args.mysql_rows)
            mysql_figures(args.mysql_url, small, args.mysql_rows, args.modes.split(","), args.repeat, workdir)


if __name__ == "__main__":
    main()
