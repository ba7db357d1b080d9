"""Connector adapters: one per connector type behind the small interface of ``base.Adapter``."""

from __future__ import annotations

from typing import Any

from django_etl.connectors.adapters.base import Adapter, ConnectorError, SchemaDriftError

__all__ = ["Adapter", "ConnectorError", "SchemaDriftError", "adapter_for"]


def adapter_for(runtime: dict[str, Any]) -> Adapter:
    """The adapter for ``Connector.runtime_settings()`` (type, name, config, decrypted secret)."""
    kind, name, config, secret = runtime["type"], runtime["name"], runtime["config"], runtime["secret"]
    if kind == "database":
        from django_etl.connectors.adapters.database import PostgresAdapter, SqliteAdapter

        engine = config.get("engine")
        if engine == "postgresql":
            return PostgresAdapter(name, config, secret)
        if engine == "sqlite":
            return SqliteAdapter(name, config, secret)
        raise ConnectorError(f"connector {name!r}: unknown database engine {engine!r}")
    if kind == "api":
        from django_etl.connectors.adapters.api import ApiAdapter

        return ApiAdapter(name, config, secret)
    if kind == "file":
        from django_etl.connectors.adapters.file import FileAdapter

        return FileAdapter(name, config, secret)
    if kind == "cloud":
        from django_etl.connectors.adapters.cloud import CloudAdapter

        return CloudAdapter(name, config, secret)
    raise ConnectorError(f"connector {name!r}: unknown connector type {kind!r}")
