"""Loopback servers for the adapter tests."""

from __future__ import annotations

from tests.connectors.servers import api_server, pg_target, pg_target_db, s3_bucket, s3_server  # noqa: F401
