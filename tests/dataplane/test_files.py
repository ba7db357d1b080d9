"""The file adapter: CSV, JSON lines and Parquet by path or glob, confined to its root, clear data errors."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from django_etl.dataplane import ConnectorError, adapter_for


@pytest.fixture
def root(tmp_path, settings):
    folder = tmp_path / "landing"
    folder.mkdir()
    settings.ETL_FILE_ROOTS = [str(folder)]
    return folder


def files(root, fmt="csv"):
    return adapter_for(
        {"type": "file", "name": "landing", "config": {"root": str(root), "format": fmt}, "secret": {}}
    )


def read(adapter, **request) -> pa.Table:
    """The adapter's batches as staging joins them into one dataset (one schema, widened)."""
    import tempfile

    from django_etl.dataplane.staging import Staging

    with tempfile.TemporaryDirectory() as folder:
        staging = Staging(folder)
        info = staging.write_dataset(f"{folder}/d", "d", adapter.read(request, batch_size=2))
        return staging.reader(info.uri).to_table()


def test_file_read_glob_concatenates_matching_files(root):
    (root / "a_1.csv").write_text("id,name\n1,x\n2,y\n3,z\n")
    (root / "a_2.csv").write_text("id,name\n4,w\n")
    (root / "b.csv").write_text("id,name\n9,no\n")
    assert read(files(root), path="a_*.csv").column("id").to_pylist() == [1, 2, 3, 4]


def test_file_read_jsonl_and_parquet(root):
    (root / "rows.jsonl").write_text('{"id": 1, "tags": "a"}\n{"id": 2, "tags": "b"}\n')
    pq.write_table(pa.table({"id": [5, 6]}), root / "rows.parquet")
    assert read(files(root), path="rows.jsonl", format="jsonl").num_rows == 2
    assert read(files(root, "parquet"), path="rows.parquet").column("id").to_pylist() == [5, 6]


def test_file_read_malformed_csv_line_names_the_file(root):
    (root / "bad.csv").write_text("id,name\n1,x\n2,y,extra\n")
    with pytest.raises(
        ConnectorError, match=r"file 'bad.csv' is not valid csv: .*Expected 2 columns, got 3"
    ) as caught:
        read(files(root), path="bad.csv")
    assert caught.value.retryable is False


def test_file_read_glob_joins_the_columns_of_every_file(root):
    (root / "d_1.csv").write_text("id,name\n1,x\n")
    (root / "d_2.csv").write_text("id,name,extra\n2,y,z\n")
    table = read(files(root), path="d_*.csv")
    assert table.to_pylist() == [{"id": 1, "name": "x", "extra": None}, {"id": 2, "name": "y", "extra": "z"}]


def test_file_paths_outside_the_root_are_refused(root, tmp_path):
    (tmp_path / "secret.csv").write_text("id\n1\n")
    with pytest.raises(ConnectorError, match="leaves the connector's root folder"):
        read(files(root), path="../secret.csv")
    with pytest.raises(ConnectorError, match="leaves the connector's root folder"):
        read(files(root), path=str(tmp_path / "secret.csv"))


def test_file_root_outside_allowed_roots_is_refused(root, tmp_path, settings):
    settings.ETL_FILE_ROOTS = [str(tmp_path / "elsewhere")]
    with pytest.raises(ConnectorError, match="outside the allowed file roots"):
        files(root).check()


def test_file_missing_path_says_nothing_matches(root):
    with pytest.raises(ConnectorError, match=r"no file matches 'nope_\*\.csv'"):
        read(files(root), path="nope_*.csv")


def test_file_write_replaces_atomically(root):
    adapter = files(root)
    table = pa.table({"id": [1, 2]})
    assert adapter.write("out/x.csv", table.to_batches(), table.schema, "csv") == 2
    assert adapter.write("out/x.csv", table.to_batches(), table.schema, "csv") == 2
    assert (root / "out" / "x.csv").read_text().splitlines() == ['"id"', "1", "2"]
    assert [p.name for p in (root / "out").iterdir()] == ["x.csv"]


def test_file_read_csv_in_pieces_keeps_rows_and_types(root, monkeypatch):
    from django_etl.dataplane import formats

    monkeypatch.setattr(
        formats, "CSV_PIECE", 64
    )  # many pieces, cut inside lines and finished to the line end
    lines = [f"{i},name {i},{i / 4},{'' if i % 5 == 0 else 'x'}" for i in range(1, 201)]
    (root / "big.csv").write_text("id,name,ratio,flag\n" + "\n".join(lines) + "\n")
    table = read(files(root), path="big.csv")
    assert table.column("id").to_pylist() == list(range(1, 201))
    assert table.schema.field("ratio").type == pa.float64()
    assert table.column("flag").null_count == 40  # unquoted empty fields are NULL, as COPY reads them


def test_file_read_csv_value_no_longer_fitting_type_widens_the_column(root, monkeypatch):
    from django_etl.dataplane import formats

    monkeypatch.setattr(formats, "CSV_PIECE", 16)
    (root / "t.csv").write_text("id,v\n1,10\n2,20\n3,30\n4,oops\n")
    table = read(files(root), path="t.csv")
    assert table.schema.field("v").type == pa.string()
    assert table.column("v").to_pylist() == ["10", "20", "30", "oops"]


def test_file_load_writes_the_staged_dataset_whole(root, tmp_path):
    from django_etl.dataplane import LoadRequest
    from django_etl.dataplane.staging import Staging

    staging = Staging(str(tmp_path / "staging"))
    table = pa.table({"id": [1, 2, 3]})
    info = staging.write_dataset(staging.dataset_dir("d", "r", "t", "rows"), "rows", table.to_batches())
    request = LoadRequest("d", "r", "load", mode="replace", path="out/rows.parquet", format="parquet")
    written = files(root).load(request, staging.reader(info.uri))
    assert (written.target, written.uri, written.rows) == (
        "out/rows.parquet",
        "file://landing/out/rows.parquet",
        3,
    )
    assert pq.read_table(root / "out" / "rows.parquet").num_rows == 3


@pytest.mark.parametrize("mode", ["upsert", "replace_interval"])
def test_file_load_refuses_database_modes_naming_the_key(root, tmp_path, mode):
    from django_etl.dataplane import LoadRequest
    from django_etl.dataplane.staging import Staging
    from django_etl.errors import StepFailure

    staging = Staging(str(tmp_path / "staging"))
    info = staging.write_dataset(
        staging.dataset_dir("d", "r", "t", "rows"), "rows", pa.table({"id": [1]}).to_batches()
    )
    request = LoadRequest("d", "r", "load", mode=mode, path="x.csv")
    with pytest.raises(
        StepFailure, match=f"mode '{mode}' applies to database targets; files take append or replace"
    ):
        files(root).load(request, staging.reader(info.uri))
    assert not (root / "x.csv").exists()


def test_file_config_keeps_one_format_default():
    from django_etl.dataplane import parse_config

    assert parse_config("file", {"root": "/data"}).format == "csv"
    assert parse_config("cloud", {"bucket": "lake"}).format == "parquet"
