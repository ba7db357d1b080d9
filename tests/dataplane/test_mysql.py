"""The MySQL/MariaDB adapter on the real server: types both ways, NULLs, time zones, streamed reads with flat
memory, watermarks, failures, and loads in every mode, atomic and idempotent (proven by injected crashes)."""

from __future__ import annotations

import resource
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from django_etl.dataplane import ConnectorError, adapter_for, parse_config
from django_etl.dataplane.mysql import MysqlConnectorConfig
from django_etl.errors import StepFailure
from tests.dataplane.conftest import CSV, crash_at, load_request, no_crash
from tests.support import mysql_server

mysql_target = mysql_server.mysql_target  # the fixture: a throwaway database on the real server

pytestmark = pytest.mark.integration


def _table(adapter, request, batch_size=100) -> pa.Table:
    return pa.Table.from_batches(list(adapter.read(request, batch_size)))


@pytest.fixture
def typed(mysql_target):
    mysql_target.execute(
        "CREATE TABLE kinds (id INT PRIMARY KEY, big BIGINT UNSIGNED, small TINYINT, flag TINYINT(1), "
        "price DECIMAL(12, 3), ratio DOUBLE, wall DATETIME(6), instant TIMESTAMP(6) NULL, day DATE, "
        "doc JSON, raw BLOB, note TEXT, label VARCHAR(20), kind ENUM('a', 'b'), year_ YEAR, bits BIT(4))"
    )
    # Written in a session at +02:00: TIMESTAMP values are instants (stored in UTC), DATETIME ones wall clocks.
    mysql_target.execute("SET time_zone = '+02:00'")
    mysql_target.execute(
        "INSERT INTO kinds VALUES (1, 18446744073709551615, -5, 1, 1234.5, 0.25, '2025-03-01 10:00:00.123456', "
        "'2025-03-01 12:00:00', '2025-03-01', '{\"a\": [1, 2]}', x'00ff10', 'héllo ✓', 'x', 'b', 2024, b'1010'), "
        "(2, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
    )
    mysql_target.execute("SET time_zone = '+00:00'")
    return adapter_for(mysql_target.runtime)


def test_mysql_read_maps_every_type(typed):
    table = _table(typed, {"table": "kinds"})
    types = {f.name: f.type for f in table.schema}
    assert types == {
        "id": pa.int64(),
        "big": pa.decimal128(20, 0),
        "small": pa.int64(),
        "flag": pa.bool_(),
        "price": pa.decimal128(12, 3),
        "ratio": pa.float64(),
        "wall": pa.timestamp("us"),
        "instant": pa.timestamp("us", tz="UTC"),
        "day": pa.date32(),
        "doc": pa.string(),
        "raw": pa.binary(),
        "note": pa.string(),
        "label": pa.string(),
        "kind": pa.string(),
        "year_": pa.int64(),
        "bits": pa.int64(),
    }
    first, second = table.to_pylist()
    assert first["big"] == Decimal(2**64 - 1) and first["small"] == -5 and first["flag"] is True
    assert first["price"] == Decimal("1234.500") and first["ratio"] == 0.25
    assert first["wall"] == datetime(2025, 3, 1, 10, 0, 0, 123456)  # as written: no zone
    assert first["instant"] == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)  # 12:00 at +02:00
    assert first["day"] == date(2025, 3, 1) and first["raw"] == b"\x00\xff\x10"
    assert (
        first["note"] == "héllo ✓" and first["kind"] == "b" and first["year_"] == 2024 and first["bits"] == 10
    )
    assert first["doc"].replace(" ", "") == '{"a":[1,2]}'
    assert second["flag"] is False
    assert all(value is None for name, value in second.items() if name not in ("id", "flag"))


def test_mysql_read_zero_dates_are_null(mysql_target):
    mysql_target.execute("SET sql_mode = ''")
    mysql_target.execute("CREATE TABLE z (id INT, d DATE, t DATETIME)")
    mysql_target.execute(
        "INSERT INTO z VALUES (1, '0000-00-00', '0000-00-00 00:00:00'), (2, '2025-01-00', NULL)"
    )
    rows = _table(adapter_for(mysql_target.runtime), {"query": "SELECT * FROM z ORDER BY id"}).to_pylist()
    assert rows == [{"id": 1, "d": None, "t": None}, {"id": 2, "d": None, "t": None}]


def test_mysql_read_batches_and_empty_result_keeps_columns(typed):
    batches = list(typed.read({"query": "SELECT id FROM kinds UNION ALL SELECT 3 UNION ALL SELECT 4"}, 3))
    assert [b.num_rows for b in batches] == [3, 1]
    empty = list(typed.read({"query": "SELECT id, price FROM kinds WHERE id > 99"}, 10))
    assert [b.num_rows for b in empty] == [0]
    assert empty[0].schema.field("price").type == pa.decimal128(12, 3)


def test_mysql_read_query_with_watermark_only_newer_rows(mysql_target):
    mysql_target.execute("CREATE TABLE events (id INT, at DATETIME, label VARCHAR(9))")
    mysql_target.execute(
        "INSERT INTO events VALUES (1, '2025-01-01 10:00:00', '10%'), (2, '2025-01-01 11:00:00', 'b'), "
        "(3, '2025-01-01 12:00:00', 'c')"
    )
    adapter = adapter_for(mysql_target.runtime)
    request = {
        "query": "SELECT id, at FROM events WHERE label LIKE '%'",  # its own % is not a placeholder
        "watermark": {"column": "at", "value": "2025-01-01T10:00:00+00:00"},
    }
    assert _table(adapter, request).column("id").to_pylist() == [2, 3]
    by_table = {"table": "events", "watermark": {"column": "id", "value": 2}}
    assert _table(adapter, by_table).column("id").to_pylist() == [3]


def test_mysql_read_large_table_streams_with_flat_memory(mysql_target):
    mysql_target.execute("CREATE TABLE wide (id INT PRIMARY KEY, note VARCHAR(200))")
    mysql_target.execute("CREATE TABLE digits (d INT)")
    mysql_target.execute("INSERT INTO digits VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)")
    mysql_target.execute(
        "INSERT INTO wide SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 100000 * g.d, "
        "REPEAT('x', 200) FROM digits a, digits b, digits c, digits e, digits f, digits g WHERE g.d < 2"
    )
    adapter = adapter_for(mysql_target.runtime)
    batches = adapter.read({"table": "wide"}, 5_000)
    rows = next(batches).num_rows
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    for batch in batches:  # each batch dropped as the next arrives, as staging does
        rows += batch.num_rows
    growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert rows == 200_000
    # ~40 MB of rows went through; a buffered (non-streaming) cursor would hold them all at once.
    assert growth_mb < 25, f"peak memory grew by {growth_mb:.0f} MB while streaming"


def test_mysql_missing_table_is_permanent(mysql_target):
    with pytest.raises(ConnectorError, match="missing table") as caught:
        list(adapter_for(mysql_target.runtime).read({"table": "nope"}, 10))
    assert caught.value.retryable is False


def test_mysql_wrong_password_is_permanent_and_hidden(mysql_target):
    runtime = {**mysql_target.runtime, "secret": {"user": "ghost", "password": "pw-canary-x"}}
    with pytest.raises(ConnectorError, match="cannot connect") as caught:
        adapter_for(runtime).check()
    assert caught.value.retryable is False and "pw-canary-x" not in str(caught.value)


def test_mysql_refused_connection_is_retryable(mysql_target):
    from tests.support.servers import free_port

    runtime = {**mysql_target.runtime, "config": {**mysql_target.runtime["config"], "port": free_port()}}
    with pytest.raises(ConnectorError, match="cannot connect") as caught:
        adapter_for(runtime).check()
    assert caught.value.retryable is True


def test_mysql_check_and_sample(typed, mysql_target):
    assert typed.check().startswith("connected to MariaDB") or typed.check().startswith("connected to MySQL")
    sample = typed.sample(1)
    assert sample.num_rows == 1 and "price" in sample.column_names


@pytest.mark.parametrize(
    "options, problem",
    [
        ({"init_command": "DROP TABLE x"}, "not an allowed connection option"),
        ({"local_infile": True}, "not an allowed connection option"),
        ({"unix_socket": "/run/mysqld/mysqld.sock"}, "not an allowed connection option"),
        ({"ssl_ca": "/etc/passwd"}, "not an allowed connection option"),
        ({"charset": "utf8mb4; DROP"}, "a character set or collation name"),
        ({"connect_timeout": True}, "whole number of seconds"),
    ],
)
def test_mysql_config_refuses_options_off_the_allow_list(options, problem):
    config = {"engine": "mysql", "host": "db.example.com", "database": "shop", "options": options}
    with pytest.raises(ValueError, match=problem):
        parse_config("database", config)


def test_mysql_config_needs_host_and_database():
    with pytest.raises(ValueError, match="needs 'host' and 'database'"):
        parse_config("database", {"engine": "mysql", "host": "db.example.com"})
    with pytest.raises(ValueError):
        parse_config("database", {"engine": "mysql", "host": "/var/run/mysqld.sock", "database": "x"})
    parsed = parse_config("database", {"engine": "mysql", "host": "db.example.com", "database": "shop"})
    assert isinstance(parsed, MysqlConnectorConfig) and parsed.port == 3306


# ---------------------------------------------------------------- loads


def test_mysql_load_append_creates_table_with_mapped_types(staged, mysql_target):
    written = adapter_for(mysql_target.runtime).load(load_request(), staged())
    assert written.rows == 3 and written.skipped is None and mysql_target.count("orders") == 3
    assert written.uri.endswith(f"/{mysql_target.database}/orders")
    types = dict(
        mysql_target.execute(
            "SELECT column_name, column_type FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'orders'",
            [mysql_target.database],
        )
    )
    assert types == {"id": "bigint(20)", "name": "longtext", "amount": "double", "created_at": "datetime(6)"}
    # A staged instant is written as its UTC wall-clock time.
    assert mysql_target.execute("SELECT created_at FROM orders WHERE id = 1") == [
        (datetime(2025, 1, 2, 1, 0),)
    ]


@pytest.mark.parametrize("mode", ["append", "replace", "upsert", "replace_interval"])
@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
def test_mysql_load_mode_is_idempotent_when_crashing(mode, point, staged, mysql_target, monkeypatch):
    dataset = staged()
    extra = {"mode": mode, "key": ["id"] if mode == "upsert" else []}
    if mode == "replace_interval":
        extra["interval_column"] = "created_at"
    adapter = adapter_for(mysql_target.runtime)
    crash_at(monkeypatch, point)
    with pytest.raises(RuntimeError, match="simulated crash"):
        adapter.load(load_request(**extra), dataset)
    assert mysql_target.count("orders") == (0 if point == "before_commit" else 3)  # nothing half-written
    no_crash(monkeypatch)
    adapter.load(load_request(**extra), dataset)  # the retry
    adapter.load(load_request(**extra), dataset)  # and a re-run of the same run and task
    assert mysql_target.count("orders") == 3
    ledger = mysql_target.execute("SELECT `rows` FROM etl_load_ledger WHERE task_id = 'load_orders'")
    assert ledger == [(3,)]


def test_mysql_load_append_retried_after_commit_is_skipped(staged, mysql_target):
    adapter = adapter_for(mysql_target.runtime)
    adapter.load(load_request(), staged())
    again = adapter.load(load_request(), staged())
    assert again.skipped == "already loaded by an earlier try" and again.rows == 0
    assert mysql_target.count("orders") == 3


def test_mysql_load_upsert_updates_existing_keys_last_row_wins(staged, mysql_target):
    adapter = adapter_for(mysql_target.runtime)
    adapter.load(load_request(mode="upsert", key=["id"]), staged())
    later = staged(
        "id,name,amount,created_at\n2,beta2,21.0,2025-01-02T05:00:00Z\n4,delta,4.0,2025-01-02T06:00:00Z\n"
        "4,delta-last,4.5,2025-01-02T06:00:00Z\n",
        run_id="r2",
    )
    adapter.load(load_request(run_id="r2", mode="upsert", key=["id"]), later)
    rows = mysql_target.execute("SELECT id, name FROM orders ORDER BY id")
    assert rows == [(1, "alpha"), (2, "beta2"), (3, "gamma"), (4, "delta-last")]


def test_mysql_load_upsert_on_text_key_creates_an_indexable_key(staged, mysql_target):
    adapter_for(mysql_target.runtime).load(load_request(mode="upsert", key=["name"]), staged())
    adapter_for(mysql_target.runtime).load(load_request(run_id="r2", mode="upsert", key=["name"]), staged())
    assert mysql_target.count("orders") == 3


def test_mysql_load_upsert_without_unique_key_is_refused(staged, mysql_target):
    mysql_target.execute("CREATE TABLE orders (id BIGINT, name TEXT, amount DOUBLE, created_at DATETIME(6))")
    with pytest.raises(StepFailure, match="needs a primary key or unique index on exactly"):
        adapter_for(mysql_target.runtime).load(load_request(mode="upsert", key=["id"]), staged())
    assert mysql_target.count("orders") == 0


def test_mysql_load_replace_interval_keeps_other_days(staged, mysql_target):
    mysql_target.execute("CREATE TABLE orders (id BIGINT, name TEXT, amount DOUBLE, created_at DATETIME(6))")
    mysql_target.execute(
        "INSERT INTO orders VALUES (99, 'old day', 1, '2025-01-01 12:00:00'), (2, 'stale', 0, '2025-01-02 03:00:00')"
    )
    adapter_for(mysql_target.runtime).load(
        load_request(mode="replace_interval", interval_column="created_at"), staged()
    )
    assert mysql_target.execute("SELECT id FROM orders ORDER BY id") == [(1,), (2,), (3,), (99,)]


def test_mysql_load_replace_interval_refuses_rows_outside_interval(staged, mysql_target):
    dataset = staged(CSV + "4,late,1.0,2025-01-05T00:00:00Z\n")
    with pytest.raises(StepFailure, match=r"1 staged row.*outside the run's interval"):
        adapter_for(mysql_target.runtime).load(
            load_request(mode="replace_interval", interval_column="created_at"), dataset
        )
    assert mysql_target.count("orders") == 0


def test_mysql_load_replace_swaps_all_rows(staged, mysql_target):
    adapter = adapter_for(mysql_target.runtime)
    adapter.load(load_request(mode="replace"), staged())
    adapter.load(
        load_request(run_id="r2", mode="replace"), staged("id,name,amount,created_at\n7,x,1,\n", "r2")
    )
    assert mysql_target.execute("SELECT id, created_at FROM orders") == [(7, None)]


def test_mysql_load_round_trips_types_through_staging(typed, mysql_target, tmp_path):
    """MySQL -> staged Parquet -> MySQL keeps values: decimals, unsigned, booleans, binary, NULLs."""
    from django_etl.dataplane.staging import Staging

    staging = Staging(str(tmp_path / "staging"))
    directory = staging.dataset_dir("dag", "r1", "extract_kinds", "kinds")
    info = staging.write_dataset(directory, "kinds", typed.read({"table": "kinds"}, 100))
    typed.load(load_request(run_id="r1", table="copied", key=["id"], mode="upsert"), staging.reader(info.uri))
    query = "SELECT id, big, flag, price, raw, wall, instant, note FROM {} ORDER BY id"
    assert mysql_target.execute(query.format("copied")) == mysql_target.execute(query.format("kinds"))


def test_mysql_load_value_too_large_fails_clearly(staged, mysql_target):
    mysql_target.execute("CREATE TABLE orders (id TINYINT, name TEXT, amount DOUBLE, created_at DATETIME(6))")
    dataset = staged("id,name,amount,created_at\n1000,a,1,2025-01-02T01:00:00Z\n")
    with pytest.raises(StepFailure, match=r"refused: .*Out of range"):
        adapter_for(mysql_target.runtime).load(load_request(), dataset)
    assert mysql_target.count("orders") == 0


def test_mysql_load_writes_awkward_text_exactly_across_statements(mysql_target, tmp_path, monkeypatch):
    """Quotes, backslashes, newlines, NUL, emoji: literals built by Arrow, split into several INSERTs."""
    from django_etl.dataplane import mysqlvalues
    from django_etl.dataplane.staging import Staging

    monkeypatch.setattr(mysqlvalues, "STATEMENT_BYTES", 200)  # a few rows per statement
    texts = [
        "it's",
        "back\\slash",
        'dq"',
        "new\nline\r\n",
        "nul\x00byte",
        "émoji 🎉",
        "",
        None,
        "%s %% ?",
    ] * 5
    batch = pa.record_batch({"id": list(range(len(texts))), "note": texts})
    staging = Staging(str(tmp_path / "staging"))
    info = staging.write_dataset(staging.dataset_dir("dag", "r1", "x", "t"), "t", iter([batch]))
    written = adapter_for(mysql_target.runtime).load(load_request(table="notes"), staging.reader(info.uri))
    assert written.rows == len(texts)
    stored = mysql_target.execute("SELECT note FROM notes ORDER BY id")
    assert [row[0] for row in stored] == texts


def test_mysql_load_refuses_nan_naming_the_column(mysql_target, tmp_path):
    from django_etl.dataplane.staging import Staging

    batch = pa.record_batch({"id": [1, 2], "ratio": [0.5, float("nan")]})
    staging = Staging(str(tmp_path / "staging"))
    info = staging.write_dataset(staging.dataset_dir("dag", "r1", "x", "t"), "t", iter([batch]))
    with pytest.raises(StepFailure, match="column 'ratio' holds NaN"):
        adapter_for(mysql_target.runtime).load(load_request(table="ratios"), staging.reader(info.uri))
    assert mysql_target.count("ratios") == 0


def test_mysql_read_long_values_and_another_charset(mysql_target):
    """Values past 250 bytes and 64 KiB (longer length prefixes), and a connector that reads in latin1."""
    mysql_target.execute("CREATE TABLE docs (id INT, body LONGTEXT, raw LONGBLOB) CHARACTER SET latin1")
    mysql_target.execute(
        "INSERT INTO docs VALUES (1, REPEAT('é', 300), REPEAT(x'00', 70000)), (2, REPEAT('x', 70000), NULL), "
        "(3, 'café', '')"
    )
    expected = [("é" * 300, b"\x00" * 70000), ("x" * 70000, None), ("café", b"")]
    for options in ({}, {"charset": "latin1"}):
        runtime = {**mysql_target.runtime, "config": {**mysql_target.runtime["config"], "options": options}}
        table = _table(adapter_for(runtime), {"query": "SELECT body, raw FROM docs ORDER BY id"})
        assert (
            list(zip(table.column("body").to_pylist(), table.column("raw").to_pylist(), strict=True))
            == expected
        )
