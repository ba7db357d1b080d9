"""The PostgreSQL adapter on a real server: reads (server-side cursor), watermarks, failures, and COPY loads
in every mode, atomic and idempotent (proven by injected crashes)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pyarrow as pa
import pytest

from django_etl.dataplane import ConnectorError, adapter_for, parse_config
from django_etl.dataplane.postgres import PostgresConnectorConfig
from django_etl.errors import StepFailure
from tests.dataplane.conftest import CSV, crash_at, load_request, no_crash

pytestmark = pytest.mark.integration


@pytest.fixture
def source(pg_target):
    runtime, conn = pg_target
    conn.execute(
        "CREATE TABLE orders (id int PRIMARY KEY, name text, price numeric(10, 2), "
        "created timestamptz, ok boolean, doc jsonb)"
    )
    conn.execute(
        "INSERT INTO orders SELECT i, 'n' || i, i * 1.25, '2025-01-01'::timestamptz + i * interval '1 hour', "
        "i % 2 = 0, jsonb_build_object('i', i) FROM generate_series(1, 25) AS i"
    )
    return adapter_for(runtime)


def test_postgres_read_table_streams_typed_batches(source):
    batches = list(source.read({"table": "orders"}, batch_size=10))
    assert [b.num_rows for b in batches] == [10, 10, 5]
    schema = batches[0].schema
    assert schema.field("id").type == pa.int64()
    assert schema.field("price").type == pa.decimal128(10, 2)
    assert str(schema.field("created").type) == "timestamp[us, tz=UTC]"
    assert batches[0].column("price")[1].as_py() == Decimal("2.50")
    assert batches[0].column("doc")[0].as_py() == '{"i": 1}'


def test_postgres_read_query_with_watermark_only_newer_rows(source):
    rows = list(
        source.read(
            {
                "query": "SELECT id, created FROM orders WHERE name LIKE 'n%';",
                "watermark": {"column": "created", "value": "2025-01-01T20:00:00+00:00"},
            },
            100,
        )
    )
    assert pa.Table.from_batches(rows).column("id").to_pylist() == [21, 22, 23, 24, 25]


def test_postgres_missing_table_is_permanent(source):
    with pytest.raises(ConnectorError, match='missing table: relation "nope" does not exist') as caught:
        list(source.read({"table": "nope"}, 10))
    assert caught.value.retryable is False


def test_postgres_unknown_role_is_permanent_and_hides_password(pg_target):
    runtime, _ = pg_target
    adapter = adapter_for({**runtime, "secret": {"user": "ghost", "password": "pw-canary-x"}})
    with pytest.raises(ConnectorError, match="cannot connect") as caught:
        adapter.check()
    assert caught.value.retryable is False and "pw-canary-x" not in str(caught.value)


def test_postgres_refused_connection_is_retryable(pg_target):
    from tests.support.servers import free_port

    runtime, _ = pg_target
    adapter = adapter_for({**runtime, "config": {**runtime["config"], "port": free_port()}})
    with pytest.raises(ConnectorError, match="cannot connect") as caught:
        adapter.check()
    assert caught.value.retryable is True


# ---------------------------------------------------------------- loads


def count(conn, table="orders") -> int:
    if conn.execute("SELECT to_regclass(%s)", [table]).fetchone()[0] is None:
        return 0  # a rolled-back first load leaves no table at all
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_postgres_load_append_creates_table_and_copies_rows(staged, pg_target):
    runtime, conn = pg_target
    written = adapter_for(runtime).load(load_request(), staged())
    assert count(conn) == 3 and written.rows == 3 and written.skipped is None
    assert written.target == "orders" and written.uri.endswith(f"/{runtime['config']['database']}/orders")
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
def test_postgres_load_mode_is_idempotent_when_crashing(mode, point, staged, pg_target, monkeypatch):
    runtime, conn = pg_target
    dataset = staged()
    extra = {"mode": mode, "key": ["id"] if mode == "upsert" else [], "interval_column": "created_at"}
    if mode != "replace_interval":
        extra.pop("interval_column")
    adapter = adapter_for(runtime)
    crash_at(monkeypatch, point)
    with pytest.raises(RuntimeError, match="simulated crash"):
        adapter.load(load_request(**extra), dataset)
    assert count(conn) == (0 if point == "before_commit" else 3)  # nothing half-written
    no_crash(monkeypatch)
    adapter.load(load_request(**extra), dataset)  # the retry
    adapter.load(load_request(**extra), dataset)  # and a re-run of the same run and task
    assert count(conn) == 3
    ledger = conn.execute("SELECT rows FROM etl_load_ledger WHERE task_id = 'load_orders'").fetchall()
    assert ledger == [(3,)]


def test_postgres_load_append_retried_after_commit_is_skipped(staged, pg_target):
    runtime, conn = pg_target
    adapter = adapter_for(runtime)
    adapter.load(load_request(), staged())
    again = adapter.load(load_request(), staged())
    assert again.skipped == "already loaded by an earlier try" and again.rows == 0
    assert count(conn) == 3


def test_postgres_load_append_of_another_run_adds_rows(staged, pg_target):
    runtime, conn = pg_target
    adapter = adapter_for(runtime)
    adapter.load(load_request(), staged())
    other = "scheduled__2025-01-03T00:00:00+00:00"
    adapter.load(load_request(run_id=other), staged(run_id=other))
    assert count(conn) == 6


def test_postgres_load_upsert_updates_existing_keys(staged, pg_target):
    runtime, conn = pg_target
    adapter = adapter_for(runtime)
    adapter.load(load_request(mode="upsert", key=["id"]), staged())
    later = staged(
        "id,name,amount,created_at\n2,beta2,21.0,2025-01-02T05:00:00Z\n4,delta,4.0,2025-01-02T06:00:00Z\n"
        "4,delta-last,4.5,2025-01-02T06:00:00Z\n",
        run_id="r2",
    )
    adapter.load(load_request(run_id="r2", mode="upsert", key=["id"]), later)
    rows = conn.execute("SELECT id, name FROM orders ORDER BY id").fetchall()
    assert rows == [(1, "alpha"), (2, "beta2"), (3, "gamma"), (4, "delta-last")]


def test_postgres_load_replace_interval_keeps_other_days(staged, pg_target):
    runtime, conn = pg_target
    conn.execute(
        "CREATE TABLE orders (id bigint, name text, amount double precision, created_at timestamptz)"
    )
    conn.execute(
        "INSERT INTO orders VALUES (99, 'old day', 1, '2025-01-01T12:00:00Z'), (2, 'stale', 0, "
        "'2025-01-02T03:00:00Z')"
    )
    adapter_for(runtime).load(load_request(mode="replace_interval", interval_column="created_at"), staged())
    rows = conn.execute("SELECT id FROM orders ORDER BY id").fetchall()
    assert rows == [(1,), (2,), (3,), (99,)]


def test_postgres_load_replace_interval_refuses_rows_outside_interval(staged, pg_target):
    runtime, conn = pg_target
    dataset = staged(CSV + "4,late,1.0,2025-01-05T00:00:00Z\n")
    with pytest.raises(StepFailure, match=r"1 staged row.*outside the run's interval"):
        adapter_for(runtime).load(
            load_request(mode="replace_interval", interval_column="created_at"), dataset
        )
    assert count(conn) == 0


def test_postgres_load_replace_interval_needs_a_data_interval(staged, pg_target):
    runtime, conn = pg_target
    request = replace(
        load_request(mode="replace_interval", interval_column="created_at"),
        data_interval_start=None,
        data_interval_end=None,
    )
    with pytest.raises(StepFailure, match="mode 'replace_interval' needs a run with a data interval"):
        adapter_for(runtime).load(request, staged())
    assert count(conn) == 0


def test_postgres_load_missing_table_without_create_fails_permanently(staged, pg_target):
    runtime, _ = pg_target
    with pytest.raises(StepFailure, match="missing table") as caught:
        adapter_for(runtime).load(load_request(create_table=False), staged())
    assert caught.value.retryable is False


def test_postgres_load_without_table_names_the_key(staged, pg_target):
    runtime, _ = pg_target
    with pytest.raises(StepFailure, match="a database load needs 'table'"):
        adapter_for(runtime).load(load_request(table=None), staged())


def test_postgres_load_schema_drift_names_the_new_column(staged, pg_target):
    runtime, conn = pg_target
    conn.execute("CREATE TABLE orders (id bigint, name text, amount double precision)")
    with pytest.raises(StepFailure, match=r"schema drift.*\['created_at'\]"):
        adapter_for(runtime).load(load_request(), staged())


def test_postgres_load_bad_credentials_fail_without_secret(staged, pg_target):
    runtime, _ = pg_target
    runtime = {**runtime, "secret": {"user": "nobody_here", "password": "pw-canary-123"}}
    with pytest.raises(Exception) as caught:
        adapter_for(runtime).load(load_request(), staged())
    assert "nobody_here" in str(caught.value) and "pw-canary-123" not in str(caught.value)
    assert getattr(caught.value, "retryable", None) is False


def test_postgres_load_into_existing_table_with_other_types_uses_text_copy(staged, pg_target):
    runtime, conn = pg_target
    conn.execute(
        "CREATE TABLE orders (id integer, name varchar(20), amount numeric(8, 2), created_at timestamp, "
        "note text DEFAULT 'kept')"
    )
    adapter_for(runtime).load(load_request(), staged())
    rows = conn.execute(
        "SELECT id, name, amount::text, created_at::text, note FROM orders ORDER BY id"
    ).fetchall()
    assert rows[0] == (1, "alpha", "10.50", "2025-01-02 01:00:00", "kept")
    assert count(conn) == 3


def test_postgres_load_upsert_refuses_null_keys(staged, pg_target):
    runtime, conn = pg_target
    dataset = staged("id,name,amount,created_at\n,nokey,1.0,2025-01-02T01:00:00Z\n")
    with pytest.raises(StepFailure, match=r"1 staged row\(s\) have a NULL in the upsert key \['id'\]"):
        adapter_for(runtime).load(load_request(mode="upsert", key=["id"]), dataset)
    assert count(conn) == 0


def test_postgres_load_upsert_into_table_without_unique_constraint(staged, pg_target):
    runtime, conn = pg_target
    conn.execute(
        "CREATE TABLE orders (id bigint, name text, amount double precision, created_at timestamptz)"
    )
    conn.execute("INSERT INTO orders VALUES (2, 'old', 0, now())")
    adapter = adapter_for(runtime)
    adapter.load(load_request(mode="upsert", key=["id"]), staged())
    adapter.load(load_request(run_id="r2", mode="upsert", key=["id"]), staged(run_id="r2"))
    assert conn.execute("SELECT id, name FROM orders ORDER BY id").fetchall() == [
        (1, "alpha"),
        (2, "beta"),
        (3, "gamma"),
    ]


def test_postgres_config_defaults_port_and_keeps_stored_shape():
    config = parse_config("database", {"engine": "postgresql", "host": "db", "database": "w", "schema": "s"})
    assert isinstance(config, PostgresConnectorConfig) and config.port == 5432 and config.schema_ == "s"
    assert config.model_dump(by_alias=True, exclude_defaults=True) == {
        "engine": "postgresql",
        "host": "db",
        "database": "w",
        "schema": "s",
    }


# ---------------------------------------------------------------- the network policy and libpq options


def test_postgres_connects_to_the_pinned_address_with_the_name_kept(pg_target, dns):
    runtime, _ = pg_target
    dns["warehouse.example.test"] = ["127.0.0.1"]  # no real name: libpq never resolves it (hostaddr)
    adapter = adapter_for({**runtime, "config": {**runtime["config"], "host": "warehouse.example.test"}})
    params = adapter.connection_params()
    assert (params["host"], params["hostaddr"]) == ("warehouse.example.test", "127.0.0.1")
    with adapter.connect() as conn:
        assert (conn.info.host, conn.info.hostaddr) == ("warehouse.example.test", "127.0.0.1")


def test_postgres_rebinding_to_loopback_is_refused_at_connect(pg_target, settings, dns):
    runtime, _ = pg_target
    settings.ETL_NETWORK_ALLOW = []
    dns["warehouse.example.test"] = ["127.0.0.1"]
    adapter = adapter_for({**runtime, "config": {**runtime["config"], "host": "warehouse.example.test"}})
    with pytest.raises(
        ConnectorError, match=r"resolves to 127\.0\.0\.1:[0-9]+, a loopback address"
    ) as caught:
        adapter.check()
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    "option",
    [
        "hostaddr",
        "passfile",
        "service",
        "sslkey",
        "sslcert",
        "sslrootcert",
        "sslcrl",
        "options",
        "host",
        "user",
    ],
)
def test_postgres_options_outside_the_allow_list_are_refused(option):
    config = {"engine": "postgresql", "host": "db", "database": "d", "options": {option: "/etc/x"}}
    with pytest.raises(ValueError, match=rf"'{option}': not an allowed connection option"):
        parse_config("database", config)


def test_postgres_operator_may_open_a_file_option(settings):
    settings.ETL_POSTGRES_ALLOWED_OPTIONS = ["sslrootcert"]
    config = {
        "engine": "postgresql",
        "host": "db",
        "database": "d",
        "options": {"sslrootcert": "/etc/ca.pem"},
    }
    assert parse_config("database", config).options == {"sslrootcert": "/etc/ca.pem"}


def test_postgres_opened_hostaddr_is_still_checked(pg_target, settings):
    runtime, _ = pg_target
    settings.ETL_POSTGRES_ALLOWED_OPTIONS = ["hostaddr"]
    settings.ETL_NETWORK_ALLOW = []
    config = {**runtime["config"], "host": "db.example.test", "options": {"hostaddr": "127.0.0.1"}}
    with pytest.raises(ConnectorError, match=r"options\.hostaddr: 127\.0\.0\.1:[0-9]+ is a loopback address"):
        adapter_for({**runtime, "config": config}).check()


@pytest.mark.parametrize("host", ["/var/run/postgresql", "/tmp", "db1,db2", "db1 db2", "postgresql://db/x"])
def test_postgres_host_is_one_name_or_address(host):
    with pytest.raises(ValueError, match="not a host name or an IP address"):
        parse_config("database", {"engine": "postgresql", "host": host, "database": "d"})


def test_postgres_uses_no_ambient_credentials(pg_target, monkeypatch, tmp_path):
    """PGPASSWORD, ~/.pgpass, client certificates and Kerberos of the worker are never used."""
    runtime, _ = pg_target
    monkeypatch.setenv("PGPASSWORD", "worker-pg-secret")
    monkeypatch.setenv("PGHOSTADDR", "10.9.9.9")
    adapter = adapter_for({**runtime, "secret": {"user": runtime["secret"]["user"]}})
    params = adapter.connection_params()
    assert params["password"] == "" and params["passfile"].startswith("/nonexistent/")
    assert (params["sslcertmode"], params["gssencmode"], params["require_auth"]) == (
        "disable",
        "disable",
        "!gss,!sspi",
    )
    with adapter.connect() as conn:  # PGHOSTADDR is not followed: the guard would fail the test
        assert conn.info.hostaddr == "127.0.0.1"
        assert conn.info.password == ""


def test_postgres_without_a_user_refuses_the_worker_identity(pg_target):
    runtime, _ = pg_target
    with pytest.raises(ConnectorError, match="needs a credential with a 'user'"):
        adapter_for({**runtime, "secret": {}}).check()
