"""The data plane: one adapter per external system, the staged-dataset store, the load ledger. No Django here.

A connector type (and, for databases, an engine) names one adapter class; the class names its config model.
``adapter_for(runtime)`` parses a connector's stored config into that model and builds the adapter, so adapters
only ever see typed configs. Django's side validates connectors with the same models
(``django_etl.connectors.validation``); the steps call ``read`` and ``load`` whatever the system.
Adding a connector type: one module here with its config model and adapter, one entry below
(docs/architecture.md has the recipe).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from django_etl.configmodel import Strict
from django_etl.dataplane.api import ApiAdapter
from django_etl.dataplane.base import Adapter, LoadRequest, Written
from django_etl.dataplane.files import FileAdapter
from django_etl.dataplane.mysql import MysqlAdapter
from django_etl.dataplane.netpolicy import Allowance
from django_etl.dataplane.objectstore import ObjectStoreAdapter
from django_etl.dataplane.postgres import PostgresAdapter
from django_etl.dataplane.sqlite import SqliteAdapter
from django_etl.errors import ConfigurationError, ConnectorError, SchemaDriftError

__all__ = [
    "ADAPTERS",
    "DATABASE_ENGINES",
    "Adapter",
    "Allowance",
    "ConnectorError",
    "DatabaseConnectorConfig",
    "LoadRequest",
    "SchemaDriftError",
    "Written",
    "adapter_class",
    "adapter_for",
    "parse_config",
]

# Database connectors: one adapter (and config model) per engine, chosen by the config's "engine".
DATABASE_ENGINES: dict[str, type[Adapter]] = {
    "postgresql": PostgresAdapter,
    "sqlite": SqliteAdapter,
    "mysql": MysqlAdapter,
}
# The database config as one tagged union (for typing and schema export), derived from the engines above.
DatabaseConnectorConfig = Annotated[
    Union[tuple(cls.config_model for cls in DATABASE_ENGINES.values())],  # noqa: UP007 - built from a tuple
    Field(discriminator="engine"),
]

# Connector type -> its adapter; "database" dispatches on the engine.
ADAPTERS: dict[str, type[Adapter] | dict[str, type[Adapter]]] = {
    "database": DATABASE_ENGINES,
    "api": ApiAdapter,
    "file": FileAdapter,
    "cloud": ObjectStoreAdapter,
}


class _EngineTag(BaseModel):
    """Only the engine of a database config: a missing or unknown engine reads as before per-engine models."""

    model_config = ConfigDict(extra="ignore")
    engine: Literal[tuple(DATABASE_ENGINES)]  # type: ignore[valid-type]


def adapter_class(connector_type: str, config: dict[str, Any]) -> type[Adapter]:
    """The adapter class of a connector type (and engine); pydantic's ValidationError for a bad engine."""
    entry = ADAPTERS.get(connector_type)
    if entry is None:
        raise ConfigurationError(f"unknown connector type {connector_type!r}")
    if isinstance(entry, dict):
        return entry[_EngineTag.model_validate(config).engine]
    return entry


def parse_config(connector_type: str, config: dict[str, Any]) -> Strict:
    """A connector's stored config as its adapter's typed model (raises pydantic's ValidationError)."""
    return adapter_class(connector_type, config).config_model.model_validate(config)


def adapter_for(runtime: dict[str, Any]) -> Adapter:
    """The adapter for ``Connector.runtime_settings()`` (type, name, config, decrypted secret)."""
    kind, name, config, secret = runtime["type"], runtime["name"], runtime["config"], runtime["secret"]
    if kind not in ADAPTERS:
        raise ConnectorError(f"connector {name!r}: unknown connector type {kind!r}")
    if not isinstance(config, dict):
        raise ConfigurationError(f"connector {name!r}: config must be a JSON object")
    try:
        cls = adapter_class(kind, config)
        parsed = cls.config_model.model_validate(config)
    except ValidationError as exc:
        raise ConfigurationError(f"connector {name!r}: invalid config: {_problems(exc)}") from None
    return cls(name, parsed, secret, Allowance.from_runtime(runtime.get("allowance")))


def _problems(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in ("config", *error["loc"]))
        parts.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)
