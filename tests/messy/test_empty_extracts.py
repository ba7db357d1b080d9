"""Empty is a state: extracts that find no rows stage their columns, the steps after them run on zero rows."""

from __future__ import annotations

import sqlite3

import pyarrow as pa
import pytest

from django_etl.errors import StepFailure, StepSkipped
from tests.airflow_plugin.steps.conftest import file_runtime
from tests.support.servers import api_runtime

DAG = "pipeline_steps_test"


def extract(make_run, connector, run_id="r1", **config):
    return make_run(
        "extract",
        {"connector": "src", **config},
        connectors={"src": connector},
        output="rows",
        task_id="extract_rows",
        run_id=run_id,
    )


def downstream(make_run, execute, run_id="r1", connectors=None, load=None):
    """A transform, a validate and (when given) a load on the extract's dataset; their manifests."""
    transform = make_run(
        "transform",
        {"sql": "SELECT * FROM rows"},
        inputs=["rows"],
        output="clean",
        task_id="clean_rows",
        run_id=run_id,
    )
    manifests = {"transform": execute(transform)}
    validate = make_run(
        "validate",
        {"checks": [{"check": "row_count", "min": 0}]},
        inputs=["clean"],
        task_id="check_rows",
        run_id=run_id,
    )
    manifests["validate"] = execute(validate)
    if load is not None:
        step = make_run(
            "load",
            {"connector": "dst", **load},
            connectors=connectors,
            inputs=["clean"],
            task_id="load_rows",
            run_id=run_id,
        )
        manifests["load"] = execute(step)
    return manifests


def schema_of(manifest):
    return {f["name"]: f["type"] for f in manifest["outputs"][0]["schema"]}


def test_empty_postgres_increment_keeps_typed_columns_and_runs_downstream(
    pg_target, make_run, execute, staging
):
    runtime, conn = pg_target
    conn.execute(
        "CREATE TABLE src (id bigint, name text, amount numeric(10,2), at timestamptz, day date, ok boolean)"
    )
    conn.execute("INSERT INTO src VALUES (1, 'a', 1.50, '2025-01-01T00:00:00Z', '2025-01-01', true)")
    first = execute(extract(make_run, runtime, table="src", watermark_column="at"))
    assert first["outputs"][0]["rows"] == 1
    staging.delete_run(DAG, "r1")  # the run succeeded: its watermark is promoted
    second = execute(extract(make_run, runtime, run_id="r2", table="src", watermark_column="at"))
    assert second["outputs"][0]["rows"] == 0
    assert second["details"]["empty"] == {"schema_from": "source"}
    assert schema_of(second) == {
        "id": "int64",
        "name": "string",
        "amount": "decimal128(10, 2)",
        "at": "timestamp[us, tz=UTC]",
        "day": "date32[day]",
        "ok": "bool",
    }
    assert second["watermark"]["value"] == first["watermark"]["value"]  # nothing newer: the mark stays
    manifests = downstream(make_run, execute, "r2", {"dst": runtime}, {"table": "copy", "mode": "append"})
    assert manifests["transform"]["outputs"][0]["rows"] == 0
    assert manifests["validate"]["checks"][0]["passed"] is True
    assert manifests["load"]["outputs"][0]["rows"] == 0
    kinds = dict(
        conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'copy' "
            "AND table_schema = current_schema()"
        ).fetchall()
    )
    assert kinds == {
        "id": "bigint",
        "name": "text",
        "amount": "numeric",
        "at": "timestamp with time zone",
        "day": "date",
        "ok": "boolean",
    }


def test_empty_sqlite_table_takes_its_declared_types(tmp_path, settings, make_run, execute):
    settings.ETL_FILE_ROOTS = [str(tmp_path)]
    path = tmp_path / "crm.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER, name TEXT, score REAL, since DATE)")
    runtime = {
        "type": "database",
        "name": "crm",
        "config": {"engine": "sqlite", "path": str(path)},
        "secret": {},
    }
    manifest = execute(extract(make_run, runtime, table="customers"))
    assert schema_of(manifest) == {"id": "int64", "name": "string", "score": "double", "since": "null"}
    query = make_run(
        "extract",
        {"connector": "src", "query": "SELECT id, name FROM customers"},
        connectors={"src": runtime},
        task_id="extract_query",
    )
    assert schema_of(execute(query)) == {"id": "null", "name": "null"}  # a query's result columns: names only


def test_empty_csv_header_takes_types_from_the_previous_run(file_root, make_run, execute, staging):
    (file_root / "day.csv").write_text("id,amount,at\n1,2.5,2025-01-02T00:00:00Z\n")
    execute(extract(make_run, file_runtime(file_root), path="day.csv"))
    staging.delete_run(DAG, "r1")  # success: its staged schema is kept for later runs
    (file_root / "day.csv").write_text("id,amount,at\n")
    second = execute(extract(make_run, file_runtime(file_root), run_id="r2", path="day.csv"))
    assert second["outputs"][0]["rows"] == 0
    assert second["details"]["empty"] == {"schema_from": "source and previous run"}
    assert schema_of(second) == {"id": "int64", "amount": "double", "at": "timestamp[s, tz=UTC]"}
    (file_root / "day.csv").write_bytes(b"")  # not even a header: the previous run's columns
    third = execute(extract(make_run, file_runtime(file_root), run_id="r3", path="day.csv"))
    assert third["details"]["empty"] == {"schema_from": "previous run"}
    assert schema_of(third) == schema_of(second)


def test_empty_csv_first_run_keeps_the_header_names(file_root, make_run, execute):
    (file_root / "new.csv").write_text("id,name\n")
    manifest = execute(extract(make_run, file_runtime(file_root), path="new.csv"))
    assert schema_of(manifest) == {"id": "null", "name": "null"}
    manifests = downstream(make_run, execute)
    assert manifests["transform"]["outputs"][0]["rows"] == 0
    assert manifests["validate"]["status"] == "success"


def test_empty_schema_of_a_kept_failed_run_counts_when_its_extract_succeeded(messy_api, make_run, execute):
    runtime = api_runtime(messy_api.base_url)
    execute(extract(make_run, runtime, endpoint="orders", records_path="results"))
    # run r1 is not deleted (say a later step failed): its extract's manifest still says what it staged
    empty = execute(extract(make_run, runtime, run_id="r2", endpoint="empty", records_path="results"))
    assert empty["details"]["empty"] == {"schema_from": "previous run"}
    assert schema_of(empty) == {"id": "int64", "amount": "double"}


def test_empty_first_api_run_knows_no_columns_and_the_dataset_steps_skip(messy_api, make_run, execute):
    runtime = api_runtime(messy_api.base_url)
    manifest = execute(extract(make_run, runtime, endpoint="empty", records_path="results"))
    assert manifest["status"] == "success" and manifest["outputs"][0]["rows"] == 0
    assert manifest["outputs"][0]["schema"] == []
    assert manifest["details"]["empty"] == {"schema_from": "unknown"}
    with pytest.raises(StepSkipped, match="input dataset 'rows' has no rows and no known columns"):
        downstream(make_run, execute)


def test_empty_api_run_with_a_declared_schema_runs_downstream(messy_api, make_run, execute):
    runtime = api_runtime(messy_api.base_url)
    declared = {"id": "bigint", "amount": "numeric(12,2)", "at": "timestamptz"}
    manifest = execute(extract(make_run, runtime, endpoint="empty", records_path="results", schema=declared))
    assert manifest["details"]["empty"] == {"schema_from": "declared"}
    assert schema_of(manifest) == {
        "id": "int64",
        "amount": "decimal128(12, 2)",
        "at": "timestamp[us, tz=UTC]",
    }
    assert downstream(make_run, execute)["transform"]["outputs"][0]["rows"] == 0


def test_declared_schema_casts_rows_that_arrive(messy_api, make_run, execute, staging):
    runtime = api_runtime(messy_api.base_url)
    declared = {"amount": "numeric(12,2)", "note": "text"}
    manifest = execute(extract(make_run, runtime, endpoint="orders", records_path="results", schema=declared))
    assert list(schema_of(manifest).items()) == [
        ("amount", "decimal128(12, 2)"),
        ("note", "string"),
        ("id", "int64"),
    ]
    table = staging.reader(manifest["outputs"][0]["uri"]).to_table()
    assert [str(v) for v in table.column("amount").to_pylist()] == ["5.50", "7.00"]
    assert table.column("note").null_count == 2


def test_empty_replace_is_refused_by_default_on_every_target(
    file_root, pg_target, tmp_path, settings, make_run, execute
):
    runtime, conn = pg_target
    conn.execute("CREATE TABLE orders (id bigint, name text)")
    conn.execute("INSERT INTO orders VALUES (1, 'kept')")
    settings.ETL_FILE_ROOTS = [str(file_root), str(tmp_path / "db")]
    (tmp_path / "db").mkdir()
    sqlite_path = tmp_path / "db" / "w.db"
    with sqlite3.connect(sqlite_path) as db:
        db.execute("CREATE TABLE orders (id INTEGER, name TEXT)")
        db.execute("INSERT INTO orders VALUES (1, 'kept')")
    sqlite_runtime = {
        "type": "database",
        "name": "w",
        "config": {"engine": "sqlite", "path": str(sqlite_path)},
        "secret": {},
    }
    (file_root / "orders.csv").write_text("id,name\n")
    (file_root / "export.csv").write_text("id,name\n1,kept\n")
    execute(extract(make_run, file_runtime(file_root), path="orders.csv"))
    targets = [
        (runtime, {"table": "orders"}),
        (sqlite_runtime, {"table": "orders"}),
        (file_runtime(file_root), {"path": "export.csv"}),
    ]
    for connector, config in targets:
        step = make_run(
            "load",
            {"connector": "dst", "mode": "replace", **config},
            connectors={"dst": connector},
            inputs=["rows"],
            task_id="load_rows",
            run_id="r1",
        )
        with pytest.raises(StepFailure, match=r"refused to replace '.+' with zero rows"):
            execute(step)
        check = step.result.checks[0]
        assert (check["check"], check["severity"], check["passed"]) == ("allow_empty", "error", False)
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 1
    with sqlite3.connect(sqlite_path) as db:
        assert db.execute("SELECT count(*) FROM orders").fetchone()[0] == 1
    assert (file_root / "export.csv").read_text() == "id,name\n1,kept\n"


def test_empty_replace_with_allow_empty_empties_the_target_without_a_check(
    file_root, pg_target, make_run, execute
):
    runtime, conn = pg_target
    conn.execute("CREATE TABLE orders (id bigint, name text)")
    conn.execute("INSERT INTO orders VALUES (1, 'gone')")
    (file_root / "orders.csv").write_text("id,name\n")
    execute(extract(make_run, file_runtime(file_root), path="orders.csv"))
    step = make_run(
        "load",
        {"connector": "dst", "table": "orders", "mode": "replace", "allow_empty": True},
        connectors={"dst": runtime},
        inputs=["rows"],
        task_id="load_rows",
        run_id="r1",
    )
    manifest = execute(step)
    assert manifest["status"] == "success" and manifest["checks"] == []
    assert manifest["outputs"][0]["rows"] == 0
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 0


def test_empty_batch_from_a_parquet_file_carries_its_schema(file_root, make_run, execute):
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.int64()), ("price", pa.decimal128(8, 2))])
    pq.write_table(schema.empty_table(), file_root / "none.parquet")
    manifest = execute(extract(make_run, file_runtime(file_root, "parquet"), path="none.parquet"))
    assert schema_of(manifest) == {"id": "int64", "price": "decimal128(8, 2)"}


def test_object_storage_csv_in_its_declared_encoding_with_multiline_fields(
    s3_bucket, make_run, execute, staging
):
    from tests.support.servers import cloud_runtime

    body = 'id,note\n1,"Grüße\naus Köln"\n2,"a ""quoted"" word"\n'.encode("cp1252")
    s3_bucket["client"].put_object(Bucket=s3_bucket["name"], Key="landing/notes.csv", Body=body)
    manifest = execute(extract(make_run, cloud_runtime(s3_bucket), path="notes.csv", encoding="cp1252"))
    table = staging.reader(manifest["outputs"][0]["uri"]).to_table()
    assert table.column("note").to_pylist() == ["Grüße\naus Köln", 'a "quoted" word']
    with pytest.raises(
        Exception, match=r"object 'landing/notes.csv': bytes fc are not valid utf-8 at line 2"
    ):
        execute(extract(make_run, cloud_runtime(s3_bucket), run_id="r2", path="notes.csv"))


def test_watermark_column_of_mixed_kinds_fails_naming_it(file_root, make_run, execute, monkeypatch):
    from django_etl.dataplane import formats

    monkeypatch.setattr(formats, "CSV_PIECE", 16)
    (file_root / "w.csv").write_text("id,seq\n1,1\n2,2\n3,3\n4,4\n5,five\n")
    with pytest.raises(StepFailure, match="watermark column 'seq' holds values of different kinds"):
        execute(extract(make_run, file_runtime(file_root), path="w.csv", watermark_column="seq"))
