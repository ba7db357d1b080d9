"""Real systems on loopback for the connector and step tests: a JSON API, an S3 API (moto), a PostgreSQL schema.

They are reachable because the suite opts in to loopback targets (``ETL_NETWORK_ALLOW``, tests/conftest.py);
the platform's own servers stay closed even so, which is why PostgreSQL targets get a server of their own.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

TOKEN = "tok-canary-7f3a9"  # the API's bearer token; tests check it never leaks
RECORDS = [{"id": i, "name": f"item {i}", "amount": i * 1.5} for i in range(1, 26)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ApiHandler(BaseHTTPRequestHandler):
    """/items?page=&page_size= (page style), /cursor?cursor=, /linked?start=, /flaky (500 then 200), /hook."""

    server: Any

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        state = self.server.state
        state["requests"].append(self.path)
        state["headers"].append(dict(self.headers.items()))
        if self.path.startswith("/open/"):  # no authentication: where redirects lead in tests
            return self._send(200, {"results": [{"id": 1}]})
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._send(401, {"error": "unauthorized"})
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/":
            return self._send(200, {"ok": True})
        if url.path == "/items":
            page, size = int(query.get("page", 1)), int(query.get("page_size", 10))
            chunk = RECORDS[(page - 1) * size : page * size]
            return self._send(200, {"data": {"items": chunk}, "page": page})
        if url.path == "/cursor":
            start = int(query.get("cursor", 0))
            chunk = RECORDS[start : start + 10]
            following = start + 10 if start + 10 < len(RECORDS) else None
            return self._send(200, {"results": chunk, "meta": {"next": following}})
        if url.path == "/linked":
            start = int(query.get("start", 0))
            chunk = RECORDS[start : start + 10]
            link = f"/linked?start={start + 10}" if start + 10 < len(RECORDS) else None
            return self._send(200, {"results": chunk, "next": link})
        if url.path == "/flaky":
            state["flaky"] += 1
            if state["flaky"] <= state["flaky_failures"]:
                return self._send(500, {"error": "boom"})
            return self._send(200, {"results": RECORDS[:5]})
        if url.path == "/redirect":  # /redirect?to=<url>[&status=307]: the hop a redirect test asks for
            return self._send(int(query.get("status", 302)), {"moved": True}, {"Location": query["to"]})
        if url.path == "/loop":  # redirects to itself for ever
            return self._send(302, {"moved": True}, {"Location": "/loop"})
        if url.path == "/away":  # /away?to=<url>: one page whose next link is <url>
            return self._send(200, {"results": RECORDS[:2], "next": query["to"]})
        if url.path == "/limited":
            state["limited"] += 1
            if state["limited"] == 1:
                return self._send(429, {"error": "slow down"}, {"Retry-After": "0"})
            return self._send(200, {"results": RECORDS[:3]})
        return self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.server.state["posts"].append({"path": self.path, "body": json.loads(self.rfile.read(length))})
        self._send(200, {"ok": True})


@pytest.fixture
def api_server():
    """A JSON API with bearer auth and every pagination style; ``state`` records requests and posts."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), ApiHandler)
    server.state = {"requests": [], "headers": [], "posts": [], "flaky": 0, "flaky_failures": 1, "limited": 0}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def second_api_server():
    """Another API on loopback (another origin: a redirect's or a next link's elsewhere)."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), ApiHandler)
    server.state = {"requests": [], "headers": [], "posts": [], "flaky": 0, "flaky_failures": 1, "limited": 0}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


def api_runtime(base_url: str, token: str = TOKEN, **config: Any) -> dict[str, Any]:
    return {
        "type": "api",
        "name": "items api",
        "config": {"base_url": base_url, "auth": "bearer", "max_retries": 3, "timeout_seconds": 5, **config},
        "secret": {"token": token},
    }


S3_KEY_ID, S3_SECRET = "AKIDCANARY", "s3-secret-canary-91b2"


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 API server on loopback (a real HTTP S3 API, not an in-process mock)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


class RecordingForwarder(BaseHTTPRequestHandler):
    """Forwards each request to the S3 server behind it and records its headers (what a client really sent)."""

    server: Any
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        import http.client

        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        self.server.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})
        upstream = http.client.HTTPConnection(
            self.server.upstream_host, self.server.upstream_port, timeout=30
        )
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        upstream.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward


@pytest.fixture
def s3_recorder(s3_server):
    """A loopback endpoint in front of the S3 server that records every request's headers (``.seen``)."""
    upstream = urlparse(s3_server)
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), RecordingForwarder)
    server.upstream_host, server.upstream_port, server.seen = upstream.hostname, upstream.port, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def s3_bucket(s3_server):
    import boto3

    name = f"etl-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET,
    )
    client.create_bucket(Bucket=name)
    return {"name": name, "client": client, "endpoint": s3_server}


def cloud_runtime(bucket: dict[str, Any], prefix: str = "landing", fmt: str = "csv") -> dict[str, Any]:
    return {
        "type": "cloud",
        "name": "lake",
        "config": {
            "provider": "s3",
            "bucket": bucket["name"],
            "prefix": prefix,
            "endpoint_url": bucket["endpoint"],
            "region": "us-east-1",
            "format": fmt,
        },
        "secret": {"access_key_id": S3_KEY_ID, "secret_access_key": S3_SECRET},
    }


PG_PASSWORD = "pg-canary-c0ffee"
TARGET_DB = "test_etl_operators_target"


@pytest.fixture(scope="session")
def pg_target_server() -> str:
    """A PostgreSQL server of its own for connector targets (URL of its ``postgres`` database).

    Not Django's test server: the platform's database servers are never connector targets (docs/security.md,
    "Network and files"), so load and extract tests need a server the platform does not use. A throwaway
    server on loopback, started once per session (about a second), stopped when the session ends.
    """
    from tests.support import throwaway_postgres

    return throwaway_postgres.start()


def admin_url(server: str) -> str:
    return server.rsplit("/", 1)[0] + "/postgres"


@pytest.fixture(scope="session")
def pg_target_db(pg_target_server):
    """A database for load targets on the targets' own server."""
    import psycopg

    with psycopg.connect(admin_url(pg_target_server), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [TARGET_DB]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{TARGET_DB}"')
    return pg_target_server.rsplit("/", 1)[0] + f"/{TARGET_DB}"


@pytest.fixture
def pg_target(pg_target_db):
    """A fresh schema in the target database; yields (runtime settings, psycopg connection to inspect it)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:10]}"
    url = pg_target_db
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(f'CREATE SCHEMA "{schema}"')
    host = urlparse(url).hostname or "127.0.0.1"
    runtime = {
        "type": "database",
        "name": "warehouse",
        "config": {
            "engine": "postgresql",
            "host": host,
            "port": urlparse(url).port or 5432,
            "database": TARGET_DB,
            "schema": schema,
        },
        "secret": {"user": urlparse(url).username or "postgres", "password": PG_PASSWORD},
    }
    conn.execute(f'SET search_path TO "{schema}"')
    yield runtime, conn
    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    conn.close()
