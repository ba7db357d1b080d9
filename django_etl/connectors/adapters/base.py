"""The small interface every connector adapter implements, and the one error type adapters raise."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa


class ConnectorError(Exception):
    """A connector could not do its job. ``retryable`` says whether trying again later may succeed.

    Messages name the connector and the cause and never carry a secret value.
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class SchemaDriftError(ConnectorError):
    """Later data does not fit the schema the dataset started with (a data error: retrying will not help)."""


class Adapter:
    """Reach one connector's system with its config and decrypted secret (built only inside a task).

    ``read`` yields Arrow record batches of at most ``batch_size`` rows for a request (the extract step's
    config: query/table, path/format, endpoint/params...); ``check`` proves the connection works and returns
    a short description; ``sample`` returns a few rows for the admin's preview.
    """

    connector_type = ""

    def __init__(self, name: str, config: dict[str, Any], secret: dict[str, Any]) -> None:
        self.name = name
        self.config = config
        self.secret = secret

    def check(self) -> str:
        raise NotImplementedError

    def read(self, request: dict[str, Any], batch_size: int) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError

    def sample(self, limit: int = 10) -> pa.Table:
        raise ConnectorError(f"connector {self.name!r}: a {self.connector_type} connector has no preview")

    def fail(self, cause: str, *, retryable: bool = False) -> ConnectorError:
        return ConnectorError(f"connector {self.name!r}: {cause}", retryable=retryable)


def batches_of_rows(
    rows: Iterator[dict[str, Any]], batch_size: int, schema: pa.Schema | None = None
) -> Iterator[pa.RecordBatch]:
    """Group row dicts into record batches; the first batch's inferred schema holds for the rest."""
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= batch_size:
            batch = _to_batch(chunk, schema)
            schema = batch.schema
            yield batch
            chunk = []
    if chunk:
        yield _to_batch(chunk, schema)


def _to_batch(chunk: list[dict[str, Any]], schema: pa.Schema | None) -> pa.RecordBatch:
    if schema is None:
        return pa.RecordBatch.from_pylist(chunk)
    inferred = pa.RecordBatch.from_pylist(chunk)
    extra = set(inferred.schema.names) - set(schema.names)
    if extra:
        raise SchemaDriftError(f"new columns appeared after the first batch: {sorted(extra)}")
    try:
        return pa.RecordBatch.from_pylist(chunk, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaDriftError(f"values no longer fit the first batch's column types: {exc}") from None


# Login names are identities, not secrets (as Airflow masks a Connection's password but not its login):
# masking a user name like "postgres" would blank every log line that mentions it.
IDENTITY_KEYS = frozenset({"user", "username", "access_key_id"})


def secret_values(secret: Any) -> list[str]:
    if isinstance(secret, dict):
        return [v for key, value in secret.items() if key not in IDENTITY_KEYS for v in secret_values(value)]
    if isinstance(secret, list):
        return [v for value in secret for v in secret_values(value)]
    return [str(secret)] if secret not in (None, "") else []
