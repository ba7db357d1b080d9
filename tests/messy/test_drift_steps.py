"""Types across batches and runs through the steps: messy API pages widen, loads meet on_schema_change."""

from __future__ import annotations

import pytest

from django_etl.dataplane.drift import SchemaChangeError
from tests.airflow_plugin.steps.conftest import file_runtime
from tests.support.servers import api_runtime


def extract(make_run, connector, run_id="r1", **config):
    return make_run(
        "extract",
        {"connector": "src", **config},
        connectors={"src": connector},
        output="rows",
        task_id="extract_rows",
        run_id=run_id,
    )


def load(make_run, connector, run_id="r1", **config):
    return make_run(
        "load",
        {"connector": "dst", "table": "orders", **config},
        connectors={"dst": connector},
        inputs=["rows"],
        task_id="load_rows",
        run_id=run_id,
    )


def test_extract_api_pages_of_differing_types_and_keys_widen(messy_api, make_run, execute, staging):
    runtime = api_runtime(messy_api.base_url)
    manifest = execute(
        extract(
            make_run,
            runtime,
            endpoint="messy",
            records_path="results",
            batch_size=2,
            pagination={"style": "page", "page_size": 2, "size_param": "size"},
        )
    )
    output = manifest["outputs"][0]
    assert output["rows"] == 5
    assert {f["name"]: f["type"] for f in output["schema"]} == {
        "id": "int64",
        "amount": "string",
        "tags": "list<item: string>",
        "coupon": "string",
    }
    table = staging.reader(output["uri"]).to_table()
    assert table.column("amount").to_pylist() == ["10", "20", "2.5", None, "n/a"]
    assert table.column("coupon").to_pylist() == [None, None, "X1", None, None]
    assert table.column("tags").to_pylist() == [["a"], [], None, None, ["b", "c"]]
    assert "amount int64 -> double" in manifest["details"]["widened"]


def test_extract_csv_column_widening_mid_file_is_reported(file_root, make_run, execute, staging, monkeypatch):
    from django_etl.dataplane import formats

    monkeypatch.setattr(formats, "CSV_PIECE", 64)
    lines = "".join(f"{i},{i * 10}\n" for i in range(40)) + "40,unknown\n"
    (file_root / "late.csv").write_text("id,qty\n" + lines)
    manifest = execute(extract(make_run, file_runtime(file_root), path="late.csv"))
    assert manifest["details"]["widened"] == ["qty int64 -> string"]
    table = staging.reader(manifest["outputs"][0]["uri"]).to_table()
    assert table.column("qty").to_pylist()[-2:] == ["390", "unknown"]


def staged_rows(file_root, make_run, execute, text, run_id):
    (file_root / "o.csv").write_text(text)
    execute(extract(make_run, file_runtime(file_root), run_id=run_id, path="o.csv"))


def test_load_step_schema_change_fail_records_an_error_check_naming_columns(
    file_root, pg_target, make_run, execute
):
    runtime, conn = pg_target
    staged_rows(file_root, make_run, execute, "id,amount\n1,10\n", "r1")
    execute(load(make_run, runtime, "r1"))
    staged_rows(file_root, make_run, execute, "id,amount,channel\n2,20,web\n", "r2")
    step = load(make_run, runtime, "r2")
    with pytest.raises(SchemaChangeError):
        execute(step)
    (check,) = step.result.checks
    assert check["check"] == "schema_change" and check["severity"] == "error"
    assert check["columns"] == ["channel"] and check["added"] == ["channel"]
    assert "on_schema_change is 'fail': nothing was loaded" in check["message"]
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 1


def test_load_step_append_new_columns_records_a_warning_and_loads(file_root, pg_target, make_run, execute):
    runtime, conn = pg_target
    staged_rows(file_root, make_run, execute, "id,amount\n1,10\n", "r1")
    execute(load(make_run, runtime, "r1"))
    staged_rows(file_root, make_run, execute, "id,channel\n2,web\n", "r2")
    manifest = execute(load(make_run, runtime, "r2", on_schema_change="append_new_columns"))
    (check,) = manifest["checks"]
    assert check["severity"] == "warning" and check["passed"] is False
    assert (check["added"], check["missing"]) == (["channel"], ["amount"])
    assert "column(s) ['channel'] added" in check["message"]
    assert conn.execute("SELECT id, amount, channel FROM orders ORDER BY id").fetchall() == [
        (1, 10, None),
        (2, None, "web"),
    ]
