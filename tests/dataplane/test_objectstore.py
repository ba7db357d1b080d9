"""The S3 adapter against moto's S3 API server on loopback: globbed reads, atomic writes, precise failures."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from django_etl.dataplane import ConnectorError, adapter_for
from tests.support.servers import S3_SECRET, cloud_runtime


def put(bucket, key: str, body: bytes) -> None:
    bucket["client"].put_object(Bucket=bucket["name"], Key=key, Body=body)


def test_cloud_read_glob_under_prefix(s3_bucket):
    put(s3_bucket, "landing/2025/a.csv", b"id,v\n1,a\n2,b\n")
    put(s3_bucket, "landing/2025/b.csv", b"id,v\n3,c\n")
    put(s3_bucket, "other/c.csv", b"id,v\n9,z\n")
    adapter = adapter_for(cloud_runtime(s3_bucket))
    table = pa.Table.from_batches(list(adapter.read({"path": "2025/*.csv"}, batch_size=10)))
    assert table.column("id").to_pylist() == [1, 2, 3]
    assert "reachable" in adapter.check()


def test_cloud_write_then_read_parquet(s3_bucket):
    adapter = adapter_for(cloud_runtime(s3_bucket, fmt="parquet"))
    table = pa.table({"id": [1, 2, 3]})
    assert adapter.write("out/x.parquet", table.to_batches(), table.schema, None) == 3
    body = (
        s3_bucket["client"].get_object(Bucket=s3_bucket["name"], Key="landing/out/x.parquet")["Body"].read()
    )
    assert pq.read_table(io.BytesIO(body)).num_rows == 3
    assert adapter.sample(2).num_rows == 2


def test_cloud_missing_bucket_fails_permanently_without_secret(s3_bucket):
    runtime = cloud_runtime(s3_bucket)
    runtime["config"]["bucket"] = "no-such-bucket-here"
    with pytest.raises(ConnectorError, match=r"failed: (404|NoSuchBucket)") as caught:
        adapter_for(runtime).check()
    assert S3_SECRET not in str(caught.value) and caught.value.retryable is False


def test_cloud_missing_objects_named(s3_bucket):
    with pytest.raises(ConnectorError, match=r"no object matches 'none/\*\.csv'"):
        list(adapter_for(cloud_runtime(s3_bucket)).read({"path": "none/*.csv"}, 10))


def test_cloud_load_uploads_the_staged_dataset_as_one_object(s3_bucket, tmp_path):
    from django_etl.dataplane import LoadRequest
    from django_etl.dataplane.staging import Staging

    staging = Staging(str(tmp_path / "staging"))
    table = pa.table({"id": [1, 2]})
    info = staging.write_dataset(staging.dataset_dir("d", "r", "t", "rows"), "rows", table.to_batches())
    written = adapter_for(cloud_runtime(s3_bucket)).load(
        LoadRequest("d", "r", "load", path="out/rows.csv"), staging.reader(info.uri)
    )
    assert (written.uri, written.rows) == ("cloud://lake/out/rows.csv", 2)
    body = s3_bucket["client"].get_object(Bucket=s3_bucket["name"], Key="landing/out/rows.csv")["Body"].read()
    assert body.decode().splitlines() == ['"id"', "1", "2"]
