"""The load step: one adapter call whatever the target (PostgreSQL, SQLite, file, object), recorded in the manifest.

What each adapter does with each mode (atomic, idempotent under injected crashes) is tested in tests/dataplane/.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from airflow_plugin.steps.context import StepFailure
from django_etl.errors import ConnectorError
from tests.airflow_plugin.steps.conftest import file_runtime
from tests.dataplane.conftest import crash_at, no_crash
from tests.support.servers import api_runtime, cloud_runtime

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


def test_load_sqlite_modes_are_idempotent(staged, make_run, execute, file_root, monkeypatch):
    tmp_path = file_root  # SQLite files live under a file root, as file connectors' do
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
    no_crash(monkeypatch)
    execute(load_run(make_run, runtime, mode="upsert", key=["id"]))
    execute(load_run(make_run, runtime, mode="upsert", key=["id"]))
    staged(run_id="r-append")
    execute(load_run(make_run, runtime, run_id="r-append", mode="append", table="events"))
    again = execute(load_run(make_run, runtime, run_id="r-append", mode="append", table="events"))
    assert again["details"] == {"skipped": "already loaded by an earlier try"} and again["outputs"] == []
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


def test_load_cloud_target_uploads_whole_object(staged, make_run, execute, s3_bucket):
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


def sqlite_runtime(path) -> dict:
    return {
        "type": "database",
        "name": "warehouse",
        "config": {"engine": "sqlite", "path": str(path)},
        "secret": {},
    }


@pytest.mark.parametrize("kind", ["postgresql", "sqlite", "file", "cloud"])
def test_load_every_target_through_one_adapter_call(
    kind, staged, make_run, execute, file_root, tmp_path, request
):
    if kind == "postgresql":
        runtime, _ = request.getfixturevalue("pg_target")
        config, uri = {"table": "orders"}, f"postgresql://{runtime['config']['host']}/"
    elif kind == "sqlite":
        runtime = sqlite_runtime(file_root / "w.db")  # under a file root, as file connectors' files
        config, uri = {"table": "orders"}, f"sqlite:///{file_root / 'w.db'}#orders"
    elif kind == "file":
        runtime = {**file_runtime(file_root), "name": "warehouse"}
        config, uri = {"path": "out/orders.csv"}, "file://warehouse/out/orders.csv"
    else:
        runtime = {**cloud_runtime(request.getfixturevalue("s3_bucket")), "name": "warehouse"}
        config, uri = {"path": "out/orders.csv", "format": "csv"}, "cloud://warehouse/out/orders.csv"
    staged()
    manifest = execute(
        make_run(
            "load",
            {"connector": "warehouse", **config},
            connectors={"warehouse": runtime},
            inputs=["orders"],
            task_id="load_orders",
            interval=DAY,
        )
    )
    [output] = manifest["outputs"]
    assert output["uri"].startswith(uri) and output["rows"] == 3 and manifest["metrics"]["rows_out"] == 3
    assert output["dataset"] == config.get("table", config.get("path"))
    assert [f["name"] for f in output["schema"]] == ["id", "name", "amount", "created_at"]
    assert manifest["column_mapping"]["amount"] == ["orders.amount"] and manifest["relationship"] == "direct"


def test_load_api_connector_is_not_a_target(staged, make_run, execute, api_server):
    staged()
    run = make_run(
        "load",
        {"connector": "hook", "path": "x"},
        connectors={"hook": api_runtime(api_server.base_url)},
        inputs=["orders"],
        task_id="load_api",
    )
    with pytest.raises(ConnectorError, match="api connectors cannot be load targets"):
        execute(run)


def test_load_replace_mode_accepted_for_files_and_missing_path_named(staged, make_run, execute, file_root):
    staged()
    run = make_run(
        "load",
        {"connector": "landing", "mode": "replace"},
        connectors={"landing": file_runtime(file_root)},
        inputs=["orders"],
        task_id="load_file",
    )
    with pytest.raises(StepFailure, match="a file load needs 'path'"):
        execute(run)
