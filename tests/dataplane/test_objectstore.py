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


# ---------------------------------------------------------------- credentials and the network policy


def test_cloud_without_credential_is_unsigned_whatever_the_environment(s3_bucket, s3_recorder, monkeypatch):
    """The worker's AWS keys (staging's, say) are in the environment: the connector never sends them."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAAMBIENTCANARY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ambient-secret-canary")
    s3_bucket["client"].put_object(
        Bucket=s3_bucket["name"], Key="landing/a.csv", Body=b"id\n1\n", ACL="public-read"
    )
    runtime = cloud_runtime({**s3_bucket, "endpoint": s3_recorder.endpoint})
    adapter = adapter_for({**runtime, "secret": {}})
    assert "reachable" in adapter.check()
    assert pa.Table.from_batches(list(adapter.read({"path": "a.csv"}, 10))).num_rows == 1
    sent = [request["headers"] for request in s3_recorder.seen]
    assert len(sent) >= 3 and all("Authorization" not in headers for headers in sent)
    assert "AKIAAMBIENTCANARY" not in repr(s3_recorder.seen)


def test_cloud_without_endpoint_never_takes_one_from_the_environment(s3_bucket, s3_recorder, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_recorder.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_recorder.endpoint)
    runtime = cloud_runtime(s3_bucket)
    runtime["config"].pop("endpoint_url")
    with pytest.raises(ConnectorError, match=r"amazonaws\.com' does not resolve"):  # the test resolver
        adapter_for(runtime).check()
    assert s3_recorder.seen == []


def test_cloud_with_credential_signs_with_its_own_keys(s3_bucket, s3_recorder, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAAMBIENTCANARY")
    adapter = adapter_for(cloud_runtime({**s3_bucket, "endpoint": s3_recorder.endpoint}))
    adapter.check()
    authorization = s3_recorder.seen[-1]["headers"]["Authorization"]
    assert "Credential=AKIDCANARY/" in authorization and "AMBIENT" not in authorization


def test_cloud_endpoint_is_pinned_and_keeps_its_host_name(s3_bucket, s3_recorder, dns):
    # moto reads a bucket from the host name unless it starts with "localhost": this one is no real name.
    dns["localhost.s3.example.test"] = ["127.0.0.1"]
    endpoint = s3_recorder.endpoint.replace("127.0.0.1", "localhost.s3.example.test")
    adapter = adapter_for(cloud_runtime({**s3_bucket, "endpoint": endpoint}))
    assert "reachable" in adapter.check()
    assert s3_recorder.seen[-1]["headers"]["Host"] == endpoint.removeprefix("http://")


def test_cloud_metadata_endpoint_is_refused_without_contact(s3_bucket, settings):
    settings.ETL_NETWORK_ALLOW = []
    runtime = cloud_runtime({**s3_bucket, "endpoint": "http://169.254.169.254"})
    with pytest.raises(ConnectorError, match=r"169\.254\.169\.254:80 is a link-local address") as caught:
        adapter_for(runtime).check()
    assert caught.value.retryable is False


def test_cloud_staging_bucket_is_refused(s3_bucket, settings):
    settings.ETL_STAGING_URL = f"s3://{s3_bucket['name']}/staging"
    with pytest.raises(ConnectorError, match="the platform's staging bucket"):
        adapter_for(cloud_runtime(s3_bucket)).check()
