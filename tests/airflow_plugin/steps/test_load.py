"""Load into PostgreSQL, SQLite and files: every mode atomic and idempotent, proven by injected crashes."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from airflow_plugin.steps import load_postgres
from airflow_plugin.steps.context import StepFailure
from tests.airflow_plugin.steps.conftest import file_runtime

pytestmark = pytest.mark.integration

DAY = (datetime(2025, 1, 2, tzinfo=UTC), datetime(2025, 1, 3, tzinfo=UTC))
CSV = (
    "id,name,amount,created_at\n"
    "1,alpha,10.5,2025-01-02T01:00:00Z\n"
    "2,beta,20.0,2025-01-02T05:00:00Z\n"
    "3,gamma,30.25,2025-01-02T23:59:00Z\n"
)


@pytest.fixture
def staged(file_root, make_run, execute):
    """Extract CSV text (default: CSV above) into the staged dataset 'orders' of a run."""

    def stage(text: str = CSV, run_id: str = "scheduled__2025-01-02T00:00:00+00:00") -> None:
        (file_root / "orders.csv").write_text(text)
        run = make_run(
            "extract",
            {"connector": "landing", "path": "orders.csv"},
            connectors={"landing": file_runtime(file_root)},
            output="orders",
            task_id="extract_orders",
            run_id=run_id,
        )
        execute(run)

    return stage


def load_run(make_run, runtime, run_id="scheduled__2025-01-02T00:00:00+00:00", **config):
    return make_run(
        "load",
        {"connector": "warehouse", "table": "orders", **config},
        connectors={"warehouse": runtime},
        inputs=["orders"],
        task_id="load_orders",
        run_id=run_id,
        interval=DAY,
    )


def count(conn, table="orders") -> int:
    if conn.execute("SELECT to_regclass(%s)", [table]).fetchone()[0] is None:
        return 0  # a rolled-back first load leaves no table at all
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def crash_at(monkeypatch, point: str) -> None:
    def fault(where: str) -> None:
        if where == point:
            raise RuntimeError(f"simulated crash at {where}")

    monkeypatch.setattr(load_postgres, "fault", fault)
    from airflow_plugin.steps import load_sqlite

    monkeypatch.setattr(load_sqlite, "fault", fault)


def test_load_append_creates_table_and_copies_rows(staged, make_run, execute, pg_target):
    runtime, conn = pg_target
    staged()
    manifest = execute(load_run(make_run, runtime))
    assert count(conn) == 3
    assert manifest["metrics"]["rows_out"] == 3 and manifest["metrics"]["rows_in"] == 3
    types = dict(
        conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'orders' "
            "AND table_schema = current_schema()"
        ).fetchall()
    )
    assert types == {
        "id": "bigint",
        "name": "text",
        "amount": "double precision",
        "created_at": "timestamp with time zone",
    }


@pytest.mark.parametrize("mode", ["append", "replace", "upsert", "replace_interval"])
@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
def test_load_mode_is_idempotent_when_crashing(
    mode, point, staged, make_run, execute, pg_target, monkeypatch
):
    runtime, conn = pg_target
    staged()
    extra = {"mode": mode, "key": ["id"] if mode == "upsert" else [], "interval_column": "created_at"}
    if mode != "replace_interval":
        extra.pop("interval_column")
    crash_at(monkeypatch, point)
    with pytest.raises(RuntimeError, match="simulated crash"):
        execute(load_run(make_run, runtime, **extra))
    assert count(conn) == (0 if point == "before_commit" else 3)  # nothing half-written
    monkeypatch.setattr(load_postgres, "fault", lambda where: None)
    execute(load_run(make_run, runtime, **extra))  # the retry
    execute(load_run(make_run, runtime, **extra))  # and a re-run of the same run and task
    assert count(conn) == 3
    ledger = conn.execute("SELECT rows FROM etl_load_ledger WHERE task_id = 'load_orders'").fetchall()
    assert ledger == [(3,)]


def test_load_append_of_another_run_adds_rows(staged, make_run, execute, pg_target):
    runtime, conn = pg_target
    staged()
    execute(load_run(make_run, runtime))
    staged(run_id="scheduled__2025-01-03T00:00:00+00:00")
    execute(load_run(make_run, runtime, run_id="scheduled__2025-01-03T00:00:00+00:00"))
    assert count(conn) == 6


def test_load_upsert_updates_existing_keys(staged, make_run, execute, pg_target):
    runtime, conn = pg_target
    staged()
    execute(load_run(make_run, runtime, mode="upsert", key=["id"]))
    staged(
        "id,name,amount,created_at\n2,beta2,21.0,2025-01-02T05:00:00Z\n4,delta,4.0,2025-01-02T06:00:00Z\n"
        "4,delta-last,4.5,2025-01-02T06:00:00Z\n",
        run_id="r2",
    )
    execute(load_run(make_run, runtime, run_id="r2", mode="upsert", key=["id"]))
    rows = conn.execute("SELECT id, name FROM orders ORDER BY id").fetchall()
    assert rows == [(1, "alpha"), (2, "beta2"), (3, "gamma"), (4, "delta-last")]


def test_load_replace_interval_keeps_other_days(staged, make_run, execute, pg_target):
    runtime, conn = pg_target
    conn.execute(
        "CREATE TABLE orders (id bigint, name text, amount double precision, created_at timestamptz)"
    )
    conn.execute(
        "INSERT INTO orders VALUES (99, 'old day', 1, '2025-01-01T12:00:00Z'), (2, 'stale', 0, "
        "'2025-01-02T03:00:00Z')"
    )
    staged()
    execute(load_run(make_run, runtime, mode="replace_interval", interval_column="created_at"))
    rows = conn.execute("SELECT id FROM orders ORDER BY id").fetchall()
    assert rows == [(1,), (2,), (3,), (99,)]


def test_load_replace_interval_refuses_rows_outside_interval(staged, make_run, execute, pg_target):
    runtime, conn = pg_target
    staged(CSV + "4,late,1.0,2025-01-05T00:00:00Z\n")
    with pytest.raises(StepFailure, match=r"1 staged row.*outside the run's interval"):
        execute(load_run(make_run, runtime, mode="replace_interval", interval_column="created_at"))
    assert count(conn) == 0


def test_load_missing_table_without_create_fails_permanently(staged, make_run, execute, pg_target):
    runtime, _ = pg_target
    staged()
    with pytest.raises(StepFailure, match="missing table") as caught:
        execute(load_run(make_run, runtime, create_table=False))
    assert caught.value.retryable is False


def test_load_schema_drift_names_the_new_column(staged, make_run, execute, pg_target):
    runtime, conn = pg_target
    conn.execute("CREATE TABLE orders (id bigint, name text, amount double precision)")
    staged()
    with pytest.raises(StepFailure, match=r"schema drift.*\['created_at'\]"):
        execute(load_run(make_run, runtime))


def test_load_bad_credentials_fail_without_secret(staged, make_run, execute, pg_target):
    runtime, _ = pg_target
    runtime = {**runtime, "secret": {"user": "nobody_here", "password": "pw-canary-123"}}
    staged()
    with pytest.raises(Exception) as caught:
        execute(load_run(make_run, runtime))
    assert "nobody_here" in str(caught.value) and "pw-canary-123" not in str(caught.value)
    assert getattr(caught.value, "retryable", None) is False


def test_load_sqlite_modes_are_idempotent(staged, make_run, execute, tmp_path, monkeypatch):
    runtime = {
        "type": "database",
        "name": "warehouse",
        "config": {"engine": "sqlite", "path": str(tmp_path / "w.db")},
        "secret": {},
    }
    staged()
    crash_at(monkeypatch, "before_commit")
    with pytest.raises(RuntimeError):
        execute(load_run(make_run, runtime, mode="upsert", key=["id"]))
    monkeypatch.setattr("airflow_plugin.steps.load_sqlite.fault", lambda where: None)
    execute(load_run(make_run, runtime, mode="upsert", key=["id"]))
    execute(load_run(make_run, runtime, mode="upsert", key=["id"]))
    staged(run_id="r-append")
    execute(load_run(make_run, runtime, run_id="r-append", mode="append", table="events"))
    execute(load_run(make_run, runtime, run_id="r-append", mode="append", table="events"))
    with sqlite3.connect(tmp_path / "w.db") as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 3
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 3


def test_load_file_target_writes_atomically(staged, make_run, execute, file_root):
    staged()
    run = make_run(
        "load",
        {"connector": "landing", "path": "out/orders.parquet", "format": "parquet"},
        connectors={"landing": file_runtime(file_root)},
        inputs=["orders"],
        task_id="load_file",
    )
    execute(run)
    import pyarrow.parquet as pq

    assert pq.read_table(file_root / "out" / "orders.parquet").num_rows == 3
    assert [p.name for p in (file_root / "out").iterdir()] == ["orders.parquet"]


def test_load_into_existing_table_with_other_types_uses_text_copy(staged, make_run, execute, pg_target):
    runtime, conn = pg_target
    conn.execute(
        "CREATE TABLE orders (id integer, name varchar(20), amount numeric(8, 2), created_at timestamp, "
        "note text DEFAULT 'kept')"
    )
    staged()
    execute(load_run(make_run, runtime))
    rows = conn.execute(
        "SELECT id, name, amount::text, created_at::text, note FROM orders ORDER BY id"
    ).fetchall()
    assert rows[0] == (1, "alpha", "10.50", "2025-01-02 01:00:00", "kept")
    assert count(conn) == 3


def test_load_cloud_target_uploads_whole_object(staged, make_run, execute, s3_bucket):
    from tests.connectors.servers import cloud_runtime

    staged()
    run = make_run(
        "load",
        {"connector": "lake", "path": "exports/orders_2025-01-02.csv", "format": "csv", "mode": "replace"},
        connectors={"lake": cloud_runtime(s3_bucket)},
        inputs=["orders"],
        task_id="load_lake",
    )
    manifest = execute(run)
    body = s3_bucket["client"].get_object(
        Bucket=s3_bucket["name"], Key="landing/exports/orders_2025-01-02.csv"
    )
    assert body["Body"].read().decode().splitlines()[0] == '"id","name","amount","created_at"'
    assert manifest["metrics"]["rows_out"] == 3


def test_load_upsert_mode_refused_for_files(staged, make_run, execute, file_root):
    staged()
    run = make_run(
        "load",
        {"connector": "landing", "path": "x.csv", "mode": "upsert", "key": ["id"]},
        connectors={"landing": file_runtime(file_root)},
        inputs=["orders"],
        task_id="load_file",
    )
    with pytest.raises(StepFailure, match="mode 'upsert' applies to database targets"):
        execute(run)


def test_load_upsert_refuses_null_keys(staged, make_run, execute, pg_target):
    runtime, conn = pg_target
    staged("id,name,amount,created_at\n,nokey,1.0,2025-01-02T01:00:00Z\n")
    with pytest.raises(StepFailure, match=r"1 staged row\(s\) have a NULL in the upsert key \['id'\]"):
        execute(load_run(make_run, runtime, mode="upsert", key=["id"]))
    assert count(conn) == 0


def test_load_upsert_into_table_without_unique_constraint(staged, make_run, execute, pg_target):
    runtime, conn = pg_target
    conn.execute(
        "CREATE TABLE orders (id bigint, name text, amount double precision, created_at timestamptz)"
    )
    conn.execute("INSERT INTO orders VALUES (2, 'old', 0, now())")
    staged()
    execute(load_run(make_run, runtime, mode="upsert", key=["id"]))
    staged(run_id="r2")
    execute(load_run(make_run, runtime, run_id="r2", mode="upsert", key=["id"]))
    assert conn.execute("SELECT id, name FROM orders ORDER BY id").fetchall() == [
        (1, "alpha"),
        (2, "beta"),
        (3, "gamma"),
    ]
