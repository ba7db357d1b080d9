"""JSON lines and Parquet files in the messy cases: a declared encoding, empty files, files without rows."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from django_etl.dataplane import formats


def read(path, fmt, **options) -> list[pa.RecordBatch]:
    return list(formats.read_stream(str(path), fmt, batch_size=100, label="file 'f'", **options))


def test_jsonl_in_a_declared_encoding(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_bytes('{"id": 1, "city": "Zürich"}\n{"id": 2, "city": "Montréal"}\n'.encode("latin-1"))
    (batch,) = read(path, "jsonl", encoding="latin-1")
    assert batch.column("city").to_pylist() == ["Zürich", "Montréal"]
    with pytest.raises(ValueError, match="file 'f'"):
        read(path, "jsonl")  # the same bytes are not UTF-8


def test_empty_jsonl_file_has_no_rows_and_no_columns(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"")
    assert read(path, "jsonl") == []


def test_parquet_without_rows_yields_its_schema(tmp_path):
    schema = pa.schema([("id", pa.int64()), ("at", pa.timestamp("us", tz="UTC"))])
    pq.write_table(schema.empty_table(), tmp_path / "f.parquet")
    (batch,) = read(tmp_path / "f.parquet", "parquet")
    assert (batch.num_rows, batch.schema) == (0, schema)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_bytes_to_bytes_codecs_are_not_encodings(tmp_path, fmt):
    path = tmp_path / f"f.{fmt}"
    path.write_bytes(b"x\n")
    with pytest.raises(ValueError, match="'zlib' is not a text encoding"):
        read(path, fmt, encoding="zlib")


def test_extract_config_checks_encoding_and_schema_names():
    from pydantic import ValidationError

    from django_etl.stepkinds.schemas import ExtractConfig, LoadConfig

    config = ExtractConfig.model_validate(
        {"connector": "c", "encoding": "cp1252", "schema": {"id": "BIGINT", "at": "timestamp with time zone"}}
    )
    assert config.schema_ == {"id": "int64", "at": "timestamptz"}
    with pytest.raises(ValidationError, match=r"column 'n': unknown type 'number'"):
        ExtractConfig.model_validate({"connector": "c", "schema": {"id": "int", "n": "number"}})
    with pytest.raises(ValidationError, match="'base64' is not a text encoding"):
        ExtractConfig.model_validate({"connector": "c", "encoding": "base64"})
    load = LoadConfig.model_validate({"connector": "w", "table": "t"})
    assert (load.allow_empty, load.on_schema_change) == (False, "fail")
    with pytest.raises(ValidationError, match="on_schema_change"):
        LoadConfig.model_validate({"connector": "w", "table": "t", "on_schema_change": "merge"})
