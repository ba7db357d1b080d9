"""PostgreSQL reads through COPY: the same Arrow types and values as the row-by-row cursor path, for every type
the adapter maps (and the ones it turns into text), NULLs and awkward text, in batches of the asked size."""

from __future__ import annotations

import math
import resource

import pyarrow as pa
import pytest

from django_etl.dataplane import adapter_for
from django_etl.dataplane.pgcopy import rebatch

pytestmark = pytest.mark.integration

EVERY_TYPE = """
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TABLE kinds (
    i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision, n numeric(10, 2), nn numeric,
    b boolean, d date, ts timestamp, tstz timestamptz, t text, vc varchar(20), c char(5), nm name,
    j json, jb jsonb, ia integer[], ta text[], u uuid, iv interval, by bytea, ip inet, tm time, m mood,
    tsa timestamptz[]
);
INSERT INTO kinds VALUES
 (1, 2, 9007199254740993, 1.1, 0.1, 1234.5, 3.141592653, true, '2025-03-01', '2025-03-01 10:00:00.123456',
  '2025-03-01 12:00:00+02', 'plain', 'vc', 'ab', 'nm', '{"b": 1,  "a": "é"}', '{"b": 1, "a": "é"}',
  '{1,2,NULL}', '{"x,y", NULL, "q\\"t"}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day 02:03:04',
  '\\x00ff', '10.0.0.1/32', '10:11:12', 'ok', '{"2025-01-01 00:00:00+00"}'),
 (NULL, NULL, NULL, 'NaN', 'Infinity', NULL, NULL, false, NULL, NULL, '1890-01-01 00:00:00+00', '', NULL,
  NULL, NULL, NULL, 'null', '{}', '{}', NULL, NULL, '', NULL, NULL, NULL, NULL),
 (-3, -4, -5, '-Infinity', -0.5, -0.01, 0, NULL, '0001-01-01', '1999-12-31 23:59:59',
  '2038-01-19 03:14:08.5+00', E'line one\\nline "two", with comma\\r\\nand \\\\ backslash', ' padded ',
  'x', 'x', '[1, 2]', '[]', '{{1,2},{3,4}}', '{""}', NULL, '-1 mons', '\\x', NULL, '23:59:59.999999',
  'sad', '{}');
"""


def _plain(rows: list[dict]) -> list[dict]:
    """Rows with NaN spelled out (NaN != NaN would make equal tables look different)."""
    return [
        {k: "NaN" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in rows
    ]


def test_pgcopy_read_equals_the_cursor_path_for_every_type(pg_target):
    runtime, conn = pg_target
    conn.execute(EVERY_TYPE)
    adapter = adapter_for(runtime)
    for request in ({"table": "kinds"}, {"query": "SELECT *, i4 AS i4 FROM kinds ORDER BY i2 NULLS FIRST"}):
        copied = pa.Table.from_batches(list(adapter.read(request, 100)))
        cursor = pa.Table.from_batches(list(adapter.read_by_cursor(request, 100)))
        assert copied.schema == cursor.schema
        assert _plain(copied.to_pylist()) == _plain(cursor.to_pylist())
        assert copied.num_rows == 3


def test_pgcopy_read_zone_offsets_in_seconds_match_the_cursor_path(pg_target):
    """Before 1900 a named zone's offset has seconds (LMT): Arrow cannot parse it, psycopg's loader does."""
    runtime, conn = pg_target
    database = runtime["config"]["database"]
    conn.execute("CREATE TABLE old (at timestamptz)")
    conn.execute("INSERT INTO old VALUES ('1890-01-01 00:00:00+00'), ('2025-06-01 12:00:00+00'), (NULL)")
    conn.execute(f"ALTER DATABASE \"{database}\" SET timezone = 'Europe/Paris'")  # new sessions only
    try:
        adapter = adapter_for(runtime)
        copied = pa.Table.from_batches(list(adapter.read({"table": "old"}, 10)))
        cursor = pa.Table.from_batches(list(adapter.read_by_cursor({"table": "old"}, 10)))
    finally:
        conn.execute(f'ALTER DATABASE "{database}" RESET timezone')
    assert copied.equals(cursor)
    assert str(copied.schema.field("at").type) == "timestamp[us, tz=UTC]"


def test_pgcopy_read_one_column_of_nulls_keeps_every_row(pg_target):
    runtime, _ = pg_target
    query = "SELECT CASE WHEN i % 2 = 0 THEN NULL ELSE i END AS v FROM generate_series(1, 6) AS i"
    rows = pa.Table.from_batches(list(adapter_for(runtime).read({"query": query}, 10))).column("v")
    assert rows.to_pylist() == [1, None, 3, None, 5, None]


def test_pgcopy_read_query_with_percent_signs_with_and_without_watermark(pg_target):
    runtime, conn = pg_target
    conn.execute("CREATE TABLE p (id int, label text)")
    conn.execute("INSERT INTO p VALUES (1, '10%'), (2, 'x'), (3, '30%')")
    adapter = adapter_for(runtime)
    query = "SELECT id, label FROM p WHERE label LIKE '%\\%' ESCAPE '\\' ORDER BY id"
    assert pa.Table.from_batches(list(adapter.read({"query": query}, 10))).column("id").to_pylist() == [1, 3]
    marked = {"query": query, "watermark": {"column": "id", "value": 1}}
    assert pa.Table.from_batches(list(adapter.read(marked, 10))).column("id").to_pylist() == [3]


def test_pgcopy_read_stopped_early_leaves_the_connection_clean(pg_target):
    runtime, _ = pg_target
    batches = adapter_for(runtime).read({"query": "SELECT i FROM generate_series(1, 300000) AS i"}, 1000)
    assert next(batches).num_rows == 1000
    batches.close()  # the consumer stops: the COPY is cancelled, the transaction ends, nothing raises


def test_pgcopy_read_batches_have_the_asked_size(pg_target):
    runtime, conn = pg_target
    conn.execute("CREATE TABLE n AS SELECT i, repeat('x', i % 50) AS pad FROM generate_series(1, 25013) AS i")
    batches = list(adapter_for(runtime).read({"query": "SELECT * FROM n ORDER BY i"}, 1000))
    assert [b.num_rows for b in batches] == [1000] * 25 + [13]
    assert pa.Table.from_batches(batches).column("i").to_pylist() == list(range(1, 25014))


def test_pgcopy_read_empty_result_keeps_typed_columns(pg_target):
    runtime, conn = pg_target
    conn.execute("CREATE TABLE e (id int, price numeric(8, 3), at timestamptz)")
    batches = list(adapter_for(runtime).read({"table": "e"}, 10))
    assert [b.num_rows for b in batches] == [0]
    assert batches[0].schema.field("price").type == pa.decimal128(8, 3)


def test_pgcopy_read_large_result_streams_with_flat_memory(pg_target):
    runtime, _ = pg_target
    query = "SELECT i, md5(i::text) AS h, repeat('y', 100) AS pad FROM generate_series(1, 800000) AS i"
    batches = adapter_for(runtime).read({"query": query}, 10_000)
    rows = next(batches).num_rows
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    for batch in batches:
        rows += batch.num_rows
    growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert rows == 800_000
    # ~120 MB of rows went through; holding them would grow the peak by that much.
    assert growth_mb < 50, f"peak memory grew by {growth_mb:.0f} MB while streaming"


def test_pgcopy_rebatch_joins_and_splits_to_exact_sizes():
    pieces = [pa.record_batch({"x": list(range(n))}) for n in (3, 0, 7, 1, 12)]
    assert [b.num_rows for b in rebatch(iter(pieces), 5)] == [5, 5, 5, 5, 3]
    assert sum(pa.Table.from_batches(list(rebatch(iter(pieces), 4))).column("x").to_pylist()) == sum(
        sum(b.column("x").to_pylist()) for b in pieces
    )
