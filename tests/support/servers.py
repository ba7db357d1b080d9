"""Real systems on loopback for the connector and step tests: a JSON API, an S3 API (moto), a PostgreSQL schema."""

from __future__ import annotations

import json
import os
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
    server.state = {"requests": [], "posts": [], "flaky": 0, "flaky_failures": 1, "limited": 0}
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


def admin_url() -> str:
    url = os.environ["DATABASE_URL"]
    return url.rsplit("/", 1)[0] + "/postgres"


@pytest.fixture(scope="session")
def pg_target_db():
    """A database for load targets, apart from Django's test database."""
    import psycopg

    with psycopg.connect(admin_url(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [TARGET_DB]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{TARGET_DB}"')
    return TARGET_DB


@pytest.fixture
def pg_target(pg_target_db):
    """A fresh schema in the target database; yields (runtime settings, psycopg connection to inspect it)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:10]}"
    url = admin_url().rsplit("/", 1)[0] + f"/{pg_target_db}"
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
            "database": pg_target_db,
            "schema": schema,
        },
        "secret": {"user": urlparse(url).username or "postgres", "password": PG_PASSWORD},
    }
    conn.execute(f'SET search_path TO "{schema}"')
    yield runtime, conn
    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    conn.close()
