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


class FileConnectorConfig(Strict):
    root: str = Field(
        ..., min_length=1, description="Folder the connector may read and write, under ETL_FILE_ROOTS."
    )
    format: FileFormat = "csv"

    def credential_keys(self) -> tuple[str, ...]:
        return ()


def allowed_roots() -> list[Path]:
    """The folders file connectors may use (ETL_FILE_ROOTS), resolved."""
    return [Path(r).resolve() for r in conf.value("ETL_FILE_ROOTS")]


def is_allowed_root(root: str | Path) -> bool:
    """Whether a connector's root folder is one of the allowed roots or inside one."""
    resolved = Path(root).resolve()
    return any(resolved == a or a in resolved.parents for a in allowed_roots())


class FileAdapter(WholeFileTarget, Adapter):
    connector_type = "file"
    config_model = FileConnectorConfig
    config: FileConnectorConfig

    @property
    def root(self) -> Path:
        root = Path(self.config.root).resolve()
        if not is_allowed_root(root):
            raise self.fail(f"root {str(root)!r} is outside the allowed file roots (ETL_FILE_ROOTS)")
        return root

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
