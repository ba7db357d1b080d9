"""Start a private PostgreSQL server from the local binaries for one test session, and stop it after.

Used when neither TEST_DATABASE_URL nor DATABASE_URL names a server. initdb refuses to run as root, so as
root the server runs as the ``postgres`` system user.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    pass


def _bindir() -> Path:
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False).stdout
        candidates.append(out.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    candidates += [str(Path(p).parent) for p in filter(None, [shutil.which("initdb")])]
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise PostgresUnavailable(
        "No PostgreSQL binaries (initdb, pg_ctl) found. Install PostgreSQL, or point the tests at a running "
        "server with TEST_DATABASE_URL=postgres://user@host:5432/postgres."
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start() -> str:
    """Start a server; return its URL. It is stopped and deleted when the process exits."""
    bindir = _bindir()
    workdir = Path(tempfile.mkdtemp(prefix="etl-test-pg-"))
    datadir = workdir / "data"
    port = _free_port()
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable(
                "Running as root and there is no 'postgres' user to run a throwaway server as. "
                "Set TEST_DATABASE_URL to a running server instead."
            ) from None
        os.chown(workdir, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]

    def run(*args: str) -> None:
        result = subprocess.run([*prefix, *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(args[:2])} failed: {result.stderr.strip()[-2000:]}")

    run(str(bindir / "initdb"), "-D", str(datadir), "-A", "trust", "-U", "postgres", "--no-sync")
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(datadir),
        "-w",
        "-l",
        str(workdir / "server.log"),
        "-o",
        f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off",
        "start",
    )

    def stop() -> None:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(workdir, ignore_errors=True)

    atexit.register(stop)
    return f"postgres://postgres@127.0.0.1:{port}/postgres"
