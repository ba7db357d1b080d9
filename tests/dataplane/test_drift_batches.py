"""Types across batches: the widening lattice, rows of mixed kinds, and staging that re-casts earlier parts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from django_etl.dataplane.batches import batches_of_rows, conform_to, empty_batch, widen_schema, widen_type
from django_etl.dataplane.staging import Staging

TS = pa.timestamp


@pytest.mark.parametrize(
    ("a", "b", "joined"),
    [
        (pa.null(), pa.int64(), pa.int64()),
        (pa.bool_(), pa.int64(), pa.int64()),
        (pa.int64(), pa.float64(), pa.float64()),
        (pa.int32(), pa.int64(), pa.int64()),
        (pa.float32(), pa.int8(), pa.float64()),
        (pa.int64(), pa.string(), pa.string()),
        (pa.float64(), pa.bool_(), pa.float64()),
        (pa.decimal128(10, 2), pa.decimal128(12, 4), pa.decimal128(12, 4)),
        (pa.decimal128(10, 2), pa.decimal128(9, 4), pa.decimal128(12, 4)),
        (pa.decimal128(10, 2), pa.int64(), pa.decimal128(21, 2)),
        (pa.decimal128(10, 2), pa.float64(), pa.float64()),
        (pa.decimal128(38, 20), pa.int64(), pa.float64()),
        (pa.date32(), TS("s"), TS("s")),
        (TS("s", tz="UTC"), TS("ns", tz="UTC"), TS("ns", tz="UTC")),
        (TS("s"), TS("s", tz="UTC"), pa.string()),
        (pa.date32(), pa.int64(), pa.string()),
        (pa.binary(), pa.string(), pa.binary()),
        (pa.large_string(), pa.string(), pa.string()),
        (pa.list_(pa.int64()), pa.list_(pa.float64()), pa.list_(pa.float64())),
        (
            pa.struct([("city", pa.string())]),
            pa.struct([("city", pa.string()), ("zip", pa.int64())]),
            pa.struct([("city", pa.string()), ("zip", pa.int64())]),
        ),
        (pa.struct([("a", pa.int64())]), pa.int64(), pa.string()),
    ],
)
def test_widen_type_lattice(a, b, joined):
    assert widen_type(a, b) == joined
    assert widen_type(b, a) == joined


def test_widen_schema_keeps_first_order_then_new_columns():
    a = pa.schema([("id", pa.int64()), ("v", pa.int64())])
    b = pa.schema([("extra", pa.string()), ("v", pa.float64()), ("id", pa.int64())])
    assert widen_schema(a, b) == pa.schema([("id", pa.int64()), ("v", pa.float64()), ("extra", pa.string())])


def test_conform_to_casts_up_and_fills_absent_columns():
    batch = pa.record_batch({"v": pa.array([1, 2]), "id": pa.array([7, 8])})
    target = pa.schema([("id", pa.int64()), ("v", pa.string()), ("note", pa.string())])
    assert conform_to(batch, target).to_pylist() == [
        {"id": 7, "v": "1", "note": None},
        {"id": 8, "v": "2", "note": None},
    ]


def test_batches_of_rows_mixed_kinds_in_one_batch_take_the_join():
    rows = [
        {"id": 1, "n": 1, "flag": True, "code": 5, "meta": {"a": 1}},
        {"id": 2, "n": 2.5, "flag": 3, "code": "A7", "meta": 4},
        {"id": 3, "extra": "late key"},
    ]
    (batch,) = batches_of_rows(iter(rows), 10)
    assert batch.schema.field("n").type == pa.float64()
    assert batch.schema.field("flag").type == pa.int64()
    assert batch.column("code").to_pylist() == ["5", "A7", None]
    assert batch.column("meta").to_pylist() == ['{"a": 1}', "4", None]
    assert batch.column("extra").to_pylist() == [None, None, "late key"]


def write(tmp_path, batches, schema=None):
    staging = Staging(str(tmp_path))
    info = staging.write_dataset(str(tmp_path / "d"), "d", iter(batches), schema)
    return info, staging.reader(info.uri)


def test_staging_widens_and_recasts_earlier_parts(tmp_path):
    batches = [
        pa.record_batch({"id": [1, 2], "amount": [10, 20]}),
        pa.record_batch({"id": [3], "amount": [2.5]}),
        pa.record_batch({"id": [4], "amount": [30], "note": ["new column"]}),
        pa.record_batch({"id": [5], "amount": ["n/a"], "note": [None]}),
    ]
    info, reader = write(tmp_path, batches)
    assert info.widened == ["amount int64 -> double", "note (new)", "amount double -> string"]
    assert info.rows == 5
    assert reader.schema == pa.schema([("id", pa.int64()), ("amount", pa.string()), ("note", pa.string())])
    # Each part is cast from the type it was staged in (10 as int64, 2.5 and 30 as double), shortest text.
    assert reader.to_table().to_pylist() == [
        {"id": 1, "amount": "10", "note": None},
        {"id": 2, "amount": "20", "note": None},
        {"id": 3, "amount": "2.5", "note": None},
        {"id": 4, "amount": "30", "note": "new column"},
        {"id": 5, "amount": "n/a", "note": None},
    ]
    # Every part on disk has the final schema: readers (DuckDB, loads) see one dataset.
    for part in reader.parts:
        assert pq.read_schema(part) == reader.schema
    assert not list((tmp_path / "d").glob("*.widening"))


def test_staging_batches_that_agree_stay_in_one_part(tmp_path):
    info, reader = write(tmp_path, [pa.record_batch({"id": [i]}) for i in range(5)])
    assert (len(reader.parts), info.widened, info.rows) == (1, [], 5)


def test_staging_null_columns_of_early_batches_take_later_types(tmp_path):
    _, reader = write(
        tmp_path,
        [
            pa.record_batch({"id": [1], "at": pa.nulls(1)}),
            pa.record_batch({"id": [2], "at": pa.array([datetime(2025, 1, 2, tzinfo=UTC)], TS("us", "UTC"))}),
        ],
    )
    assert reader.schema.field("at").type == TS("us", "UTC")
    assert reader.to_table().column("at").to_pylist()[0] is None


def test_staging_empty_batch_gives_the_schema_of_an_empty_dataset(tmp_path):
    schema = pa.schema([("id", pa.int64()), ("day", pa.date32()), ("price", pa.decimal128(10, 2))])
    info, reader = write(tmp_path, [empty_batch(schema)])
    assert (info.rows, reader.schema) == (0, schema)
    info, reader = write(tmp_path, [], schema=schema)  # no batch at all: the caller's schema
    assert (info.rows, reader.schema) == (0, schema)


def test_staging_keeps_exact_decimals_and_dates_when_widening(tmp_path):
    _, reader = write(
        tmp_path,
        [
            pa.record_batch({"p": pa.array([Decimal("1.25")], pa.decimal128(5, 2)), "d": [date(2025, 1, 2)]}),
            pa.record_batch({"p": pa.array([7]), "d": pa.array([datetime(2025, 1, 3, 4, 5)], TS("s"))}),
        ],
    )
    assert reader.to_table().to_pylist() == [
        {"p": Decimal("1.25"), "d": datetime(2025, 1, 2)},
        {"p": Decimal("7.00"), "d": datetime(2025, 1, 3, 4, 5)},
    ]
