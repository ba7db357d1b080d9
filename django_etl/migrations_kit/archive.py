"""Reading a ``pg_dump`` custom-format archive with ``pg_restore``: its tables, its data, its migration state."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from django.db.migrations.recorder import MigrationRecorder

from django_etl.errors import EtlError, first_line

STATE_TABLE = MigrationRecorder.Migration._meta.db_table
COPY_HEADER = re.compile(r"^COPY (?P<table>\S+) \((?P<columns>[^)]*)\) FROM stdin;$")


class BackupError(EtlError):
    """A backup could not be taken or restored; the message says why and what to do."""


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} is not on PATH: install the PostgreSQL client programs of the server's major version "
            "(Debian/Ubuntu: postgresql-client), or run safe_migrate with --no-backup to migrate without a backup."
        )
    return path


def stderr_text(result: subprocess.CompletedProcess) -> str:
    text = (result.stderr or b"").decode(errors="replace").strip()
    return first_line(Exception(text)) if text else f"exit status {result.returncode}"


def archive_tables(path: Path) -> list[str]:
    """The tables whose data the archive holds (``pg_restore --list``)."""
    result = subprocess.run([tool("pg_restore"), "--list", str(path)], capture_output=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{path} is not a readable pg_dump archive: {stderr_text(result)}")
    tables = []
    for line in result.stdout.decode(errors="replace").splitlines():
        if line.startswith(";"):
            continue
        match = re.search(r"\bTABLE DATA (\S+) (\S+) ", line)
        if match:
            tables.append(match.group(2))
    return tables


def data_lines(path: Path, *tables: str) -> Iterator[bytes]:
    """The archive's data as SQL (``pg_restore --data-only``), streamed line by line."""
    command = [
        tool("pg_restore"),
        "--data-only",
        "--file=-",
        *[f"--table={table}" for table in tables],
        str(path),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield from process.stdout
    finally:
        process.stdout.close()
        stderr = process.stderr.read()
        if process.wait() != 0:
            raise BackupError(f"pg_restore could not read {path}: {stderr.decode(errors='replace').strip()}")


def copy_blocks(lines: Iterator[bytes]) -> Iterator[tuple[str, str, Iterator[bytes]]]:
    """(table, COPY statement, its data lines) for each COPY block of pg_restore's SQL."""
    for line in lines:
        match = COPY_HEADER.match(line.decode(errors="replace").rstrip("\n"))
        if not match:
            continue
        table = match.group("table").split(".")[-1].strip('"')
        yield table, match.group(0).removesuffix(";"), block_rows(lines)


def block_rows(lines: Iterator[bytes]) -> Iterator[bytes]:
    for line in lines:
        if line.rstrip(b"\n") == b"\\.":
            return
        yield line


def archived_state(path: Path) -> set[tuple[str, str]]:
    """The (app, migration) pairs applied when the archive was taken."""
    state: set[tuple[str, str]] = set()
    for _table, statement, rows in copy_blocks(data_lines(path, STATE_TABLE)):
        columns = [
            column.strip().strip('"')
            for column in COPY_HEADER.match(statement + ";").group("columns").split(",")
        ]
        app, name = columns.index("app"), columns.index("name")
        for row in rows:
            values = row.decode().rstrip("\n").split("\t")
            state.add((unescape(values[app]), unescape(values[name])))
    return state


def unescape(value: str) -> str:
    """COPY text format: backslash escapes (migration names have none in practice)."""
    return re.sub(
        r"\\(.)", lambda match: {"t": "\t", "n": "\n", "r": "\r"}.get(match.group(1), match.group(1)), value
    )
