"""Staged datasets and result manifests: Parquet files under a local folder or s3://bucket/prefix.

Layout, one folder per organization (``<org>`` is ``org_<organization id>``, taken from the pipeline's row by
the runtime, never from a step's config): ``<staging>/<org>/<dag_id>/<run_id>/<task_id>/manifest.json`` next
to the task's datasets ``<staging>/<org>/<dag_id>/<run_id>/<task_id>/data/<dataset>/part-00000.parquet``;
watermarks promoted from successful runs live in ``<staging>/<org>/_state/<dag_id>/<task_id>/watermark.json``.
A step names datasets only of its own run, inside its organization's folder. Nothing here imports Airflow or
Django, so Django commands (purge_staging), the steps and the write-back code use it from any process.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from django_etl import conf
from django_etl.dataplane.partwriter import write_parts

MANIFEST = "manifest.json"
# Written when a try starts (the OS facts the reconciler needs to tell how a try that wrote no manifest ended).
ATTEMPT = "attempt.json"
STATE_DIR = "_state"
ORGANIZATION_PREFIX = "org_"


def staging_url() -> str:
    """The configured staging location (ETL_STAGING_URL)."""
    return str(conf.value("ETL_STAGING_URL"))


def safe_name(value: str) -> str:
    """A path segment from an Airflow id (run ids hold ':' and '+')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", value) or "_"


def ensure_location(url: str | None = None) -> str:
    """Create the staging folder, or the bucket of s3:// staging, when missing; returns the location.

    Run once by a deployment's set-up (``python -m deploy.services init``): a fresh MinIO has no bucket.
    """
    url = (url or staging_url()).rstrip("/")
    if not url.startswith("s3://"):
        os.makedirs(os.path.abspath(url.removeprefix("file://")), exist_ok=True)
        return url
    bucket = url.removeprefix("s3://").split("/", 1)[0]
    fs = _s3_filesystem(allow_bucket_creation=True)
    if fs.get_file_info(bucket).type == pafs.FileType.NotFound:
        fs.create_dir(bucket)
    return url


def _s3_filesystem(allow_bucket_creation: bool = False) -> pafs.S3FileSystem:
    # Staging's own keys (ETL_STAGING_S3_ACCESS_KEY_ID and its secret), passed explicitly; no connector uses
    # them, nor any ambient chain (objectstore.py). Without them: the AWS SDK's chain of the worker.
    endpoint = str(conf.value("ETL_STAGING_S3_ENDPOINT_URL"))
    options: dict[str, Any] = {"allow_bucket_creation": allow_bucket_creation}
    key_id, secret_key = (
        conf.value("ETL_STAGING_S3_ACCESS_KEY_ID"),
        conf.value("ETL_STAGING_S3_SECRET_ACCESS_KEY"),
    )
    if key_id and secret_key:
        options.update(access_key=key_id, secret_key=secret_key)
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        options.update(endpoint_override=host.rstrip("/") or endpoint, scheme=scheme or "https")
    return pafs.S3FileSystem(**options)


@dataclass(frozen=True)
class DatasetInfo:
    """What a write produced: the reference later steps receive (never the rows)."""

    dataset: str
    uri: str
    rows: int
    bytes: int
    schema: list[dict[str, str]] = field(default_factory=list)
    widened: list[str] = field(default_factory=list)  # columns whose type widened while staging

    def as_manifest(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "uri": self.uri, "rows": self.rows, "schema": self.schema}


def schema_fields(schema: pa.Schema) -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type)} for f in schema]


class Staging:
    """One staging location, seen from one organization's folder; paths are plain strings for pyarrow.

    ``organization`` (the pipeline's, from its row) namespaces every path; without it the location's top is
    used (tests of the store itself, the legacy layout, purges).
    """

    def __init__(self, url: str | None = None, organization: Any = None) -> None:
        self.url = (url or staging_url()).rstrip("/")
        if self.url.startswith("s3://"):
            self.fs: pafs.FileSystem = _s3_filesystem()
            self.base = self.url.removeprefix("s3://")
            self.scheme = "s3://"
        else:
            self.fs = pafs.LocalFileSystem()
            self.base = os.path.abspath(self.url.removeprefix("file://"))
            self.scheme = ""
        self.organization = str(organization) if organization not in (None, "") else None
        self.root = f"{self.base}/{organization_dir(self.organization)}" if self.organization else self.base

    def for_dag(self, dag_id: str) -> Staging:
        """The organization folder that holds ``dag_id``'s runs (dag ids are unique across organizations)."""
        if self.organization is not None:
            return self
        for info in self.children(self.base):
            named = info.base_name.startswith(ORGANIZATION_PREFIX) and info.type == pafs.FileType.Directory
            if (
                named
                and self.fs.get_file_info(f"{info.path}/{safe_name(dag_id)}").type != pafs.FileType.NotFound
            ):
                return Staging(self.url, info.base_name.removeprefix(ORGANIZATION_PREFIX))
        return self

    # ------------------------------------------------------------ paths
    def run_dir(self, dag_id: str, run_id: str) -> str:
        return f"{self.root}/{safe_name(dag_id)}/{safe_name(run_id)}"

    def task_dir(self, dag_id: str, run_id: str, task_id: str) -> str:
        return f"{self.run_dir(dag_id, run_id)}/{safe_name(task_id)}"

    def dataset_dir(self, dag_id: str, run_id: str, task_id: str, dataset: str) -> str:
        return f"{self.task_dir(dag_id, run_id, task_id)}/data/{safe_name(dataset)}"

    def uri(self, path: str) -> str:
        return f"{self.scheme}{path}"

    def path_of(self, uri: str) -> str:
        return uri.removeprefix(self.scheme) if self.scheme else uri

    # ------------------------------------------------------------ datasets
    def write_dataset(
        self, directory: str, dataset: str, batches: Iterable[pa.RecordBatch], schema: pa.Schema | None = None
    ) -> DatasetInfo:
        """Stream batches into Parquet parts (one row group per batch); memory stays one batch deep.

        Batches whose types differ widen the dataset's schema (``partwriter``); ``schema`` is the schema of a
        dataset that receives no batch at all.
        """
        self.delete_dir(directory)  # a retry starts from nothing, never appends to a previous try's parts
        self.fs.create_dir(directory, recursive=True)
        written = write_parts(self.fs, directory, prefetch(batches), schema, f"dataset {dataset!r}")
        return DatasetInfo(
            dataset,
            self.uri(directory),
            written.rows,
            written.bytes,
            schema_fields(written.schema),
            written.widened,
        )

    def open_dataset(self, uri: str) -> ds.Dataset:
        # pre_buffer keeps every buffered row group until the scan ends: memory would grow with the dataset.
        parquet = ds.ParquetFileFormat(
            default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False)
        )
        return ds.dataset(self.path_of(uri), filesystem=self.fs, format=parquet)

    def reader(self, uri: str) -> StagedReader:
        """Sequential batches of a staged dataset with memory that stays flat whatever its size."""
        directory = self.path_of(uri)
        parts = [i.path for i in self.children(directory) if i.path.endswith(".parquet")]
        if not parts:
            raise FileNotFoundError(f"no staged data at {uri}")
        return StagedReader(self.fs, parts)

    def read_batches(self, uri: str, batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
        yield from self.reader(uri).to_batches(batch_size=batch_size)

    # ------------------------------------------------------------ json documents
    def write_json(self, path: str, document: dict[str, Any]) -> None:
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with self.fs.open_output_stream(path) as out:
            out.write(json.dumps(document, indent=2, default=str, sort_keys=True).encode())

    def read_json(self, path: str) -> dict[str, Any] | None:
        try:
            with self.fs.open_input_stream(path) as stream:
                return json.loads(stream.read().decode())
        except (FileNotFoundError, OSError):
            return None

    def delete_dir(self, path: str) -> None:
        if self.fs.get_file_info(path).type != pafs.FileType.NotFound:
            self.fs.delete_dir(path)

    def children(self, path: str) -> list[pafs.FileInfo]:
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        except FileNotFoundError:
            return []
        return sorted(infos, key=lambda info: info.path)

    # ------------------------------------------------------------ manifests and runs
    def write_manifest(self, dag_id: str, run_id: str, task_id: str, manifest: dict[str, Any]) -> str:
        path = f"{self.task_dir(dag_id, run_id, task_id)}/{MANIFEST}"
        self.write_json(path, {**manifest, "written_at": datetime.now(UTC).isoformat()})
        return path

    def read_manifest(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any] | None:
        return self.read_json(f"{self.task_dir(dag_id, run_id, task_id)}/{MANIFEST}")

    def write_attempt(self, dag_id: str, run_id: str, task_id: str, record: dict[str, Any]) -> str:
        path = f"{self.task_dir(dag_id, run_id, task_id)}/{ATTEMPT}"
        self.write_json(path, record)
        return path

    def read_attempt(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any] | None:
        return self.read_json(f"{self.task_dir(dag_id, run_id, task_id)}/{ATTEMPT}")

    def run_manifests(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        found = []
        for info in self.children(self.run_dir(dag_id, run_id)):
            if info.type == pafs.FileType.Directory:
                manifest = self.read_json(f"{info.path}/{MANIFEST}")
                if manifest is not None:
                    found.append(manifest)
        return found

    def find_dataset(self, dag_id: str, run_id: str, dataset: str) -> dict[str, Any] | None:
        """The output entry named ``dataset`` of a successful task of this run, or None."""
        for manifest in self.run_manifests(dag_id, run_id):
            if manifest.get("status") != "success":
                continue
            for output in manifest.get("outputs", []):
                if output.get("dataset") == dataset:
                    return output
        return None

    def watermark_path(self, dag_id: str, task_id: str) -> str:
        return f"{self.root}/{STATE_DIR}/{safe_name(dag_id)}/{safe_name(task_id)}/watermark.json"

    def read_watermark(self, dag_id: str, task_id: str) -> dict[str, Any] | None:
        found = self.read_json(self.watermark_path(dag_id, task_id))
        if (
            found is None and self.organization is not None
        ):  # promoted before staging had organization folders
            found = Staging(self.url).read_watermark(dag_id, task_id)
        return found

    def delete_run(self, dag_id: str, run_id: str, *, promote_watermarks: bool = True) -> None:
        """After a successful run: promote its extract watermarks, then delete its staged data."""
        if promote_watermarks:
            for manifest in self.run_manifests(dag_id, run_id):
                mark = manifest.get("watermark")
                if manifest.get("status") == "success" and mark and mark.get("value") is not None:
                    self.write_json(
                        self.watermark_path(dag_id, manifest["task_id"]), {**mark, "run_id": run_id}
                    )
            self.promote_schemas(dag_id, run_id)
        self.delete_dir(self.run_dir(dag_id, run_id))

    # ------------------------------------------------------------ schemas of earlier runs
    def schema_path(self, dag_id: str, task_id: str) -> str:
        return f"{self.root}/{STATE_DIR}/{safe_name(dag_id)}/{safe_name(task_id)}/schema.json"

    def promote_schemas(self, dag_id: str, run_id: str) -> None:
        """Keep the staged schemas of a successful run's extracts: an empty extract of a later run reuses them."""
        for manifest in self.run_manifests(dag_id, run_id):
            if manifest.get("status") != "success" or manifest.get("step_type") != "extract":
                continue
            outputs = {o["dataset"]: o["schema"] for o in manifest.get("outputs", []) if o.get("schema")}
            if outputs:
                document = {"run_id": run_id, "written_at": manifest.get("written_at"), "outputs": outputs}
                self.write_json(self.schema_path(dag_id, manifest["task_id"]), document)

    def last_schema(self, dag_id: str, task_id: str, dataset: str) -> list[dict[str, str]] | None:
        """The newest staged schema of ``dataset`` from a successful try of this task in an earlier run.

        Promoted schemas (runs that succeeded and were deleted) and the manifests of runs still kept (failed
        runs whose extract succeeded) are both looked at; the newest ``written_at`` wins.
        """
        found: list[tuple[str, list[dict[str, str]]]] = []
        promoted = self.read_json(self.schema_path(dag_id, task_id)) or {}
        if promoted.get("outputs", {}).get(dataset):
            found.append((str(promoted.get("written_at") or ""), promoted["outputs"][dataset]))
        for run in self.children(f"{self.root}/{safe_name(dag_id)}"):
            manifest = self.read_json(f"{run.path}/{safe_name(task_id)}/{MANIFEST}")
            if not manifest or manifest.get("status") != "success":
                continue
            for output in manifest.get("outputs", []):
                if output.get("dataset") == dataset and output.get("schema"):
                    found.append((str(manifest.get("written_at") or ""), output["schema"]))
        return max(found, key=lambda entry: entry[0])[1] if found else None

    def purge_expired(self, retention_days: float, *, now: float | None = None) -> list[str]:
        """Delete the run folders untouched for ``retention_days`` (kept failed runs); the deleted paths."""
        cutoff = (now if now is not None else time.time()) - retention_days * 86_400
        deleted = []
        top = [i for i in self.children(self.root) if i.type == pafs.FileType.Directory]
        dags = [i for i in top if not i.base_name.startswith(ORGANIZATION_PREFIX)]
        for organization in (i for i in top if i.base_name.startswith(ORGANIZATION_PREFIX)):
            dags += [i for i in self.children(organization.path) if i.type == pafs.FileType.Directory]
        for dag in dags:
            if dag.base_name == STATE_DIR:
                continue
            for run in self.children(dag.path):
                if run.type == pafs.FileType.Directory and self._last_change(run.path) < cutoff:
                    self.fs.delete_dir(run.path)
                    deleted.append(self.uri(run.path))
        return deleted

    def _last_change(self, path: str) -> float:
        infos = self.fs.get_file_info(pafs.FileSelector(path, recursive=True))
        stamps = [i.mtime.timestamp() for i in infos if i.mtime is not None]
        own = self.fs.get_file_info(path).mtime
        if own is not None:
            stamps.append(own.timestamp())
        return max(stamps, default=0.0)


class StagedReader:
    """Reads Parquet parts one row group at a time (pre_buffer off: buffered ranges would pile up)."""

    def __init__(self, fs: pafs.FileSystem, parts: list[str]) -> None:
        self.fs = fs
        self.parts = parts
        with fs.open_input_file(parts[0]) as handle:
            self.schema: pa.Schema = pq.ParquetFile(handle).schema_arrow
        self.columns: list[str] | None = None  # set by ``select``: what reads return by default
        # What a database load's target preparation found between this dataset and the table (ledger.py).
        self.schema_changes: Any = None

    def select(self, columns: list[str]) -> None:
        """Read only ``columns`` from now on (a load that leaves staged columns out of its target)."""
        self.schema = pa.schema([self.schema.field(c) for c in columns])
        self.columns = list(columns)

    def to_batches(
        self, batch_size: int = 65_536, columns: list[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        columns = columns if columns is not None else self.columns
        for part in self.parts:
            with self.fs.open_input_file(part) as handle:
                parquet = pq.ParquetFile(handle, pre_buffer=False)
                yield from parquet.iter_batches(batch_size=batch_size, columns=columns)

    def to_table(self, columns: list[str] | None = None) -> pa.Table:
        return pa.Table.from_batches(list(self.to_batches(columns=columns)), schema=self._schema_of(columns))

    def count_rows(self) -> int:
        total = 0
        for part in self.parts:
            with self.fs.open_input_file(part) as handle:
                total += pq.ParquetFile(handle).metadata.num_rows
        return total

    def _schema_of(self, columns: list[str] | None) -> pa.Schema:
        return self.schema if columns is None else pa.schema([self.schema.field(c) for c in columns])


def prefetch(batches: Iterable[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """Produce the next batches on a helper thread while the current one is written (both release the GIL)."""
    import queue
    import threading

    slots: queue.Queue = queue.Queue(maxsize=depth)  # bounded: memory stays ``depth`` batches deep
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    return
                slots.put(batch)
            slots.put(done)
        except BaseException as exc:  # raised in the consumer, with its own message
            slots.put(exc)

    worker = threading.Thread(target=produce, name="etl-stage-reader", daemon=True)
    worker.start()
    try:
        while (item := slots.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(0.05)


def organization_dir(organization: str) -> str:
    return f"{ORGANIZATION_PREFIX}{safe_name(organization)}"


def read_manifest(dag_id: str, run_id: str, task_id: str, organization: Any = None) -> dict[str, Any] | None:
    """The result manifest a task wrote for this run, or None (found by dag id without ``organization``)."""
    return Staging(organization=organization).for_dag(dag_id).read_manifest(dag_id, run_id, task_id)


def read_attempt(dag_id: str, run_id: str, task_id: str, organization: Any = None) -> dict[str, Any] | None:
    """The record of the task's latest try's start (``airflow_plugin.resources``), or None."""
    return Staging(organization=organization).for_dag(dag_id).read_attempt(dag_id, run_id, task_id)


def delete_run(dag_id: str, run_id: str, organization: Any = None) -> None:
    """Delete a successful run's staged data (promoting its watermarks first)."""
    Staging(organization=organization).for_dag(dag_id).delete_run(dag_id, run_id)
