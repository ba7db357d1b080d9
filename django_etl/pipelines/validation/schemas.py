"""The pipeline's own configuration model (schedule, defaults, params); step kinds' live in ``stepkinds``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, HttpUrl, model_validator

from django_etl.configmodel import Identifier, Strict

# ---------------------------------------------------------------- pipeline


class ParamSpec(Strict):
    default: Any = None
    type: Literal["string", "integer", "number", "boolean", "object", "array"] | None = None
    description: str = ""


class PipelineConfig(Strict):
    schedule: str | None = Field(None, description="Cron expression, @preset, or null for manual runs only.")
    start_date: str = Field("2024-01-01", description="ISO date or datetime of the first data interval.")
    timezone: str = "UTC"
    catchup: bool = False
    max_active_runs: int = Field(1, ge=1, le=64)
    dagrun_timeout_seconds: int | None = Field(None, gt=0)
    retries: int = Field(1, ge=0, le=20)
    retry_delay_seconds: int = Field(300, ge=0)
    execution_timeout_seconds: int | None = Field(3600, gt=0)
    owner: str = "etl"
    params: dict[Identifier, ParamSpec] = Field(default_factory=dict)


# ---------------------------------------------------------------- connectors


class DatabaseConnectorConfig(Strict):
    engine: Literal["postgresql", "sqlite"]
    host: str | None = None
    port: int = Field(5432, ge=1, le=65535)
    database: str | None = None
    path: str | None = Field(None, description="SQLite file path.")
    schema_: str | None = Field(None, alias="schema")
    options: dict[str, Any] = Field(default_factory=dict, description="Extra libpq parameters (sslmode…).")

    @model_validator(mode="after")
    def engine_needs(self) -> DatabaseConnectorConfig:
        if self.engine == "postgresql" and not (self.host and self.database):
            raise ValueError("a postgresql connector needs 'host' and 'database'")
        if self.engine == "sqlite" and not self.path:
            raise ValueError("a sqlite connector needs 'path'")
        return self


class ApiConnectorConfig(Strict):
    base_url: HttpUrl
    auth: Literal["none", "bearer", "basic", "api_key"] = "none"
    api_key_header: str = "X-API-Key"
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(30, gt=0)
    max_retries: int = Field(3, ge=0, le=10)
    verify_tls: bool = True


class FileConnectorConfig(Strict):
    root: str = Field(
        ..., min_length=1, description="Folder the connector may read and write, under ETL_FILE_ROOTS."
    )
    format: Literal["csv", "jsonl", "parquet"] = "csv"


class CloudConnectorConfig(Strict):
    provider: Literal["s3"] = "s3"
    bucket: str = Field(..., min_length=3)
    prefix: str = ""
    endpoint_url: HttpUrl | None = Field(None, description="For MinIO or any S3-compatible API.")
    region: str | None = None
    format: Literal["csv", "jsonl", "parquet"] = "parquet"


CONNECTOR_SCHEMAS: dict[str, type[Strict]] = {
    "database": DatabaseConnectorConfig,
    "api": ApiConnectorConfig,
    "file": FileConnectorConfig,
    "cloud": CloudConnectorConfig,
}

# Secret keys each connector type reads from its credential (documented; checked when a credential is attached).
CREDENTIAL_KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    "database": {"postgresql": ("user", "password"), "sqlite": ()},
    "api": {"bearer": ("token",), "basic": ("username", "password"), "api_key": ("api_key",), "none": ()},
    "cloud": {"s3": ("access_key_id", "secret_access_key")},
    "file": {},
}
