"""Files: CSV, JSON lines and Parquet by path or glob, read and written inside the connector's root folder."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import Field

from django_etl import conf
from django_etl.configmodel import FileFormat, Strict
from django_etl.dataplane.base import Adapter, WholeFileTarget
from django_etl.dataplane.formats import head, read_sources, reading_options, write_stream
from django_etl.dataplane.netpolicy import Allowance, django_databases


class FileConnectorConfig(Strict):
    root: str = Field(
        ..., min_length=1, description="Folder the connector may read and write, under ETL_FILE_ROOTS."
    )
    format: FileFormat = "csv"

    def credential_keys(self) -> tuple[str, ...]:
        return ()


def allowed_roots(allowance: Allowance | None = None) -> list[Path]:
    """The folders an organization's file and SQLite connectors may use: its own, else ETL_FILE_ROOTS."""
    own = allowance.file_roots if allowance is not None else None
    roots = own if own is not None else conf.value("ETL_FILE_ROOTS")
    return [Path(r).resolve() for r in roots]


def platform_paths() -> list[tuple[str, Path]]:
    """The platform's own files and folders: no connector path may lie inside one, or hold one."""
    found: list[tuple[str, str]] = []
    databases = django_databases()
    if databases is None:
        found.append(("Django's database", _sqlite_file(os.environ.get("DATABASE_URL", ""))))
    else:
        found += [
            ("Django's database", str(db.get("NAME") or ""))
            for db in databases
            if "sqlite" in str(db.get("ENGINE"))
        ]
    found.append(
        (
            "Airflow's metadata database",
            _sqlite_file(os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")),
        )
    )
    found.append(("Airflow's home", os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")))
    for name in ("ETL_DAGS_FOLDER", "ETL_CREDENTIAL_KEYS_FILE", "ETL_MIGRATION_BACKUP_DIR"):
        found.append((name, str(conf.value(name) or "")))
    found.append(("Airflow's dags folder", os.environ.get("AIRFLOW__CORE__DAGS_FOLDER", "")))
    staging = str(conf.value("ETL_STAGING_URL"))
    if "://" not in staging or staging.startswith("file://"):
        found.append(("the staging folder (ETL_STAGING_URL)", staging.removeprefix("file://")))
    archive = str(conf.value("ETL_PARTITION_ARCHIVE_URL"))  # every organization's archived run history
    if "://" not in archive or archive.startswith("file://"):
        found.append(("the run archive (ETL_PARTITION_ARCHIVE_URL)", archive.removeprefix("file://")))
    return [(what, Path(path).resolve()) for what, path in found if path and path != ":memory:"]


def _sqlite_file(url: str) -> str:
    return url.split(":///", 1)[1] if url.startswith("sqlite:") and ":///" in url else ""


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def path_refusal(path: str | Path, allowance: Allowance | None = None) -> str | None:
    """Why a connector may not use ``path`` (a file root or a SQLite file), or None: THE file-path rule.

    Allowed: inside one of the organization's roots (``allowed_roots``); never inside another organization's
    assigned roots, and never overlapping a platform path (``platform_paths``). Symbolic links are followed.
    """
    resolved = Path(path).resolve()
    for what, platform in platform_paths():
        if _inside(resolved, platform) or _inside(platform, resolved):
            return f"{str(path)!r} overlaps {what}, which connectors may never reach"
    for foreign in allowance.foreign_roots if allowance is not None else ():
        folder = Path(foreign).resolve()
        if _inside(resolved, folder) or _inside(folder, resolved):
            return f"{str(path)!r} is outside the allowed file roots (it holds another organization's files)"
    roots = allowed_roots(allowance)
    if not any(_inside(resolved, root) for root in roots):
        where = ", ".join(map(str, roots)) or "none"
        return (
            f"{str(path)!r} is outside the allowed file roots ({where}); ETL_FILE_ROOTS (an operator) or the "
            "organization's policy (a superuser) names them"
        )
    return None


def is_allowed_root(root: str | Path, allowance: Allowance | None = None) -> bool:
    """Whether a connector may use ``root`` (see :func:`path_refusal`)."""
    return path_refusal(root, allowance) is None


class FileAdapter(WholeFileTarget, Adapter):
    connector_type = "file"
    config_model = FileConnectorConfig
    config: FileConnectorConfig

    @classmethod
    def refusals(cls, config: FileConnectorConfig, allowance: Allowance) -> list[tuple[str, str]]:
        reason = path_refusal(config.root, allowance)
        return [("config.root", reason)] if reason else []

    @property
    def root(self) -> Path:
        reason = path_refusal(self.config.root, self.allowance)
        if reason:
            raise self.fail(f"root {reason}")
        return Path(self.config.root).resolve()

    def resolve(self, pattern: str) -> Path:
        """A path inside the root; '..' or absolute paths that leave it are refused."""
        root = self.root
        candidate = (root / pattern).resolve()
        if candidate != root and root not in candidate.parents:
            raise self.fail(f"path {pattern!r} leaves the connector's root folder")
        return candidate

    def matches(self, pattern: str) -> list[Path]:
        self.resolve(pattern)  # refuses escapes before globbing
        root = self.root
        if any(ch in pattern for ch in "*?["):
            found = sorted(p for p in root.glob(pattern) if p.is_file())
        else:
            path = self.resolve(pattern)
            found = [path] if path.is_file() else []
        return [p for p in found if root in p.resolve().parents]

    def check(self) -> str:
        root = self.root
        if not root.is_dir():
            raise self.fail(f"root folder {str(root)!r} does not exist")
        if not os.access(root, os.R_OK | os.X_OK):
            raise self.fail(f"root folder {str(root)!r} is not readable")
        count = sum(1 for p in root.iterdir() if p.is_file())
        return f"root folder {str(root)!r} readable, {count} file(s)"

    def read(self, request: dict[str, Any], batch_size: int) -> Iterator[pa.RecordBatch]:
        pattern = request.get("path")
        if not pattern:
            raise self.fail("the extract needs 'path' (a file or glob under the root)")
        files = self.matches(pattern)
        if not files:
            raise self.fail(f"no file matches {pattern!r} under the root folder")
        fmt = request.get("format") or self.config.format
        sources = ((str(path), f"file {str(path.relative_to(self.root))!r}") for path in files)
        try:
            yield from read_sources(sources, fmt, batch_size=batch_size, **reading_options(request))
        except ValueError as exc:
            raise self.fail(str(exc)) from None

    def sample(self, limit: int = 10) -> pa.Table:
        fmt = self.config.format
        files = self.matches(f"**/*.{fmt}")
        if not files:
            raise self.fail(f"no .{fmt} file under the root folder to preview")
        return head(self.read({"path": str(files[0].relative_to(self.root)), "format": fmt}, limit), limit)

    def write(self, path: str, batches: Iterable[pa.RecordBatch], schema: pa.Schema, fmt: str | None) -> int:
        """Write atomically: a temporary file in the same folder, renamed over the target (re-runs replace)."""
        target = self.resolve(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fmt = fmt or self.config.format
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(handle)
        try:
            rows = write_stream(temporary, batches, fmt, schema)
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        return rows
