"""Schema changes between runs at load time, on real PostgreSQL and SQLite: on_schema_change's four options."""

from __future__ import annotations

import json
import sqlite3

import pytest

from django_etl.dataplane import adapter_for
from django_etl.dataplane.drift import SchemaChangeError, holds
from tests.dataplane.conftest import load_request

FIRST = "id,name,amount\n1,alpha,10.5\n2,beta,20.0\n"
ADDED = "id,name,amount,channel\n3,gamma,30.0,web\n"
MISSING = "id,name\n4,delta\n"
RETYPED = "id,name,amount\n5,epsilon,n/a\n"


class Target:
    """One load target database: its connector runtime and a way to look inside."""

    def __init__(self, engine: str, runtime: dict, query) -> None:
        self.engine = engine
        self.runtime = runtime
        self.query = query

    def load(self, staged_reader, run: str, **config):
        return adapter_for(self.runtime).load(load_request(run_id=run, **config), staged_reader)

    def columns(self) -> list[str]:
        if self.engine == "sqlite":
            return [r[1] for r in self.query("PRAGMA table_info(orders)")]
        return [
            r[0]
            for r in self.query(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'orders' AND table_schema = current_schema() "
                "ORDER BY ordinal_position"
            )
        ]

    def rows(self) -> list[tuple]:
        return [tuple(r) for r in self.query("SELECT * FROM orders ORDER BY id")]


@pytest.fixture(params=["postgresql", "sqlite"])
def target(request, tmp_path, settings):
    if request.param == "sqlite":
        settings.ETL_FILE_ROOTS = [str(tmp_path)]
        path = tmp_path / "warehouse.db"
        runtime = {
            "type": "database",
            "name": "w",
            "config": {"engine": "sqlite", "path": str(path)},
            "secret": {},
        }

        def query(sql):
            with sqlite3.connect(path) as conn:
                return conn.execute(sql).fetchall()

        return Target("sqlite", runtime, query)
    runtime, conn = request.getfixturevalue("pg_target")

    def pg_query(sql):
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description else []

    return Target("postgresql", runtime, pg_query)


def test_load_schema_change_fails_by_default_naming_the_columns(staged, target):
    target.load(staged(FIRST), "r1")
    with pytest.raises(SchemaChangeError) as caught:
        target.load(staged(ADDED), "r2")
    assert "staged column(s) ['channel'] are not in table 'orders'" in str(caught.value)
    assert caught.value.changes.columns == ["channel"]
    assert target.columns() == ["id", "name", "amount"] and len(target.rows()) == 2  # nothing was written


def test_load_append_new_columns_adds_them_and_keeps_old_rows(staged, target):
    target.load(staged(FIRST), "r1")
    reader = staged(ADDED)
    written = target.load(reader, "r2", on_schema_change="append_new_columns")
    assert written.rows == 1
    assert target.columns() == ["id", "name", "amount", "channel"]
    assert [r[3] for r in target.rows()] == [None, None, "web"]
    assert reader.schema_changes.applied == ["column(s) ['channel'] added"]


def test_load_ignore_leaves_new_columns_out(staged, target):
    target.load(staged(FIRST), "r1")
    reader = staged(ADDED)
    target.load(reader, "r2", on_schema_change="ignore")
    assert target.columns() == ["id", "name", "amount"]
    assert [r[0] for r in target.rows()] == [1, 2, 3]
    assert reader.schema.names == ["id", "name", "amount"]  # what the target received


def test_load_missing_column_is_a_change_only_if_loaded_before(staged, target):
    target.load(staged(FIRST), "r1")
    with pytest.raises(SchemaChangeError, match=r"column\(s\) \['amount'\] loaded into 'orders' before"):
        target.load(staged(MISSING), "r2")
    reader = staged(MISSING)
    target.load(reader, "r3", on_schema_change="append_new_columns")
    assert target.rows()[-1][:3] == (4, "delta", None)
    assert "column(s) ['amount'] left NULL in the new rows" in reader.schema_changes.applied


def test_load_sync_all_columns_drops_missing_and_adds_new(staged, target):
    target.load(staged(FIRST), "r1")
    target.load(staged("id,name,channel\n3,gamma,web\n"), "r2", on_schema_change="sync_all_columns")
    assert target.columns() == ["id", "name", "channel"]
    assert target.rows()[-1] == (3, "gamma", "web")


def test_load_retyped_column_fails_then_sync_changes_its_type(staged, target):
    target.load(staged(FIRST), "r1")
    with pytest.raises(SchemaChangeError, match=r"cannot hold: amount (double precision|REAL) -> string"):
        target.load(staged(RETYPED), "r2")
    reader = staged(RETYPED)
    target.load(reader, "r3", on_schema_change="sync_all_columns")
    assert target.rows()[-1] == (5, "epsilon", "n/a")
    if target.engine == "postgresql":
        assert "column(s) ['amount'] changed to the staged type" in reader.schema_changes.applied
        kind = target.query(
            "SELECT data_type FROM information_schema.columns WHERE table_name = 'orders' "
            "AND column_name = 'amount' AND table_schema = current_schema()"
        )
        assert kind == [("text",)]
    else:  # SQLite cannot alter a declared type; its dynamic typing stores the text as it is
        assert "column(s) ['amount'] keep their declared type (sqlite cannot alter it)" in (
            reader.schema_changes.applied
        )


def test_load_table_columns_never_staged_are_not_missing(staged, target):
    # A table made by hand with a column of its own: loads that never stage it change nothing.
    target.query("CREATE TABLE orders (id bigint, name text, amount double precision, note text)")
    target.load(staged(FIRST), "r1")
    target.load(staged(FIRST.replace("1,alpha", "7,alpha").replace("2,beta", "8,beta")), "r2")
    assert len(target.rows()) == 4


def test_load_narrower_staged_types_are_no_change(staged, target):
    target.query("CREATE TABLE orders (id bigint, name text, amount double precision)")
    target.load(staged("id,name,amount\n1,a,10\n"), "r1")  # int64 into double precision
    assert target.rows() == [(1, "a", 10.0)]


def test_load_ledger_of_an_older_version_gets_the_staged_columns(staged, target):
    target.query(
        "CREATE TABLE etl_load_ledger (dag_id text NOT NULL, run_id text NOT NULL, task_id text NOT NULL, "
        "target text NOT NULL, rows bigint NOT NULL, loaded_at text, PRIMARY KEY (dag_id, run_id, task_id))"
    )
    target.load(staged(FIRST), "r1")
    (document,) = target.query("SELECT staged_columns FROM etl_load_ledger")[0]
    assert [c["name"] for c in json.loads(document)] == ["id", "name", "amount"]


@pytest.mark.parametrize(
    ("table_type", "staged", "dialect", "fits"),
    [
        ("bigint", "int64", "postgresql", True),
        ("integer", "int64", "postgresql", True),
        ("bigint", "double", "postgresql", False),
        ("numeric(12,2)", "double", "postgresql", True),
        ("text", "timestamp[s, tz=UTC]", "postgresql", True),
        ("timestamp with time zone", "date32[day]", "postgresql", True),
        ("date", "timestamp[s]", "postgresql", False),
        ("boolean", "int64", "postgresql", False),
        ("uuid", "string", "postgresql", True),
        ("interval", "int64", "postgresql", False),
        ("INTEGER", "bool", "sqlite", True),
        ("TEXT", "double", "sqlite", True),
        ("INTEGER", "string", "sqlite", False),
        ("", "string", "sqlite", True),
    ],
)
def test_holds_compares_type_families(table_type, staged, dialect, fits):
    from django_etl.dataplane.typenames import schema_from_fields

    kind = schema_from_fields([{"name": "c", "type": staged}]).field("c").type
    assert holds(table_type, kind, dialect) is fits
