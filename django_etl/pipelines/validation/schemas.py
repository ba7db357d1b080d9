"""The per-type configuration schemas: one for the pipeline, one per step type, one per connector type.

This is the single registry every layer validates against (admin forms, Model.clean(), generate_dags, the
operators). docs/step-config.md documents it with one example per type.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

Identifier = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
DatasetName = Identifier
Severity = Literal["warning", "error"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


# ---------------------------------------------------------------- steps


class StepOptions(Strict):
    """Options every step type accepts; each overrides the pipeline's default."""

    retries: int | None = Field(None, ge=0, le=20)
    retry_delay_seconds: int | None = Field(None, ge=0)
    execution_timeout_seconds: int | None = Field(None, gt=0)


class Pagination(Strict):
    style: Literal["page", "offset", "cursor", "next_link"]
    page_param: str = "page"
    size_param: str = "page_size"
    page_size: int = Field(100, ge=1)
    cursor_param: str = "cursor"
    cursor_path: str = Field("next_cursor", description="Dotted path of the next cursor in the response.")
    next_link_path: str = Field("next", description="Dotted path of the next page's URL in the response.")
    max_pages: int = Field(10_000, ge=1)


class ExtractConfig(StepOptions):
    connector: str = Field(
        ..., min_length=1, description="Name of a connector of the pipeline's organization."
    )
    output: DatasetName | None = Field(None, description="Dataset name for later steps; default the task id.")
    # database connectors
    query: str | None = None
    table: str | None = None
    # file and cloud connectors
    path: str | None = Field(None, description="Path or glob, relative to the connector's root or prefix.")
    format: Literal["csv", "jsonl", "parquet"] | None = None
    delimiter: str = Field(",", min_length=1, max_length=1)
    # API connectors
    endpoint: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    records_path: str | None = Field(None, description="Dotted path of the record list in each response.")
    pagination: Pagination | None = None
    # incremental extraction
    watermark_column: str | None = None
    batch_size: int = Field(50_000, ge=1)


class Select(Strict):
    op: Literal["select"]
    columns: list[str] = Field(..., min_length=1)


class Rename(Strict):
    op: Literal["rename"]
    columns: dict[str, Identifier] = Field(..., min_length=1)


class Cast(Strict):
    op: Literal["cast"]
    columns: dict[str, str] = Field(..., min_length=1, description="column -> SQL type")


class Filter(Strict):
    op: Literal["filter"]
    condition: str = Field(..., min_length=1)


class Derive(Strict):
    op: Literal["derive"]
    column: Identifier
    expression: str = Field(..., min_length=1)


class Aggregate(Strict):
    op: Literal["aggregate"]
    group_by: list[str] = Field(default_factory=list)
    aggregations: dict[Identifier, str] = Field(..., min_length=1, description="output column -> expression")


class Deduplicate(Strict):
    op: Literal["deduplicate"]
    columns: list[str] = Field(default_factory=list, description="Key columns; empty means whole rows.")
    order_by: str | None = Field(None, description="Which duplicate to keep, e.g. 'updated_at DESC'.")


class Join(Strict):
    op: Literal["join"]
    dataset: DatasetName
    on: list[str] = Field(..., min_length=1)
    how: Literal["inner", "left", "right", "full"] = "inner"


Operation = Annotated[
    Select | Rename | Cast | Filter | Derive | Aggregate | Deduplicate | Join, Field(discriminator="op")
]


class TransformConfig(StepOptions):
    inputs: list[DatasetName] = Field(default_factory=list, description="Default: the upstream outputs.")
    sql: str | None = Field(None, description="SQL over the inputs, each readable as a table of its name.")
    operations: list[Operation] = Field(default_factory=list)
    output: DatasetName | None = None

    @model_validator(mode="after")
    def one_kind(self) -> TransformConfig:
        if bool(self.sql) == bool(self.operations):
            raise ValueError("give either 'sql' or 'operations' (not both, not neither)")
        return self


class LoadConfig(StepOptions):
    connector: str = Field(..., min_length=1)
    input: DatasetName | None = Field(None, description="Default: the single upstream output.")
    table: str | None = Field(None, description="Target table (database connectors), schema.table allowed.")
    path: str | None = Field(None, description="Target path (file and cloud connectors).")
    format: Literal["csv", "jsonl", "parquet"] | None = None
    mode: Literal["append", "replace", "upsert", "replace_interval"] = "append"
    key: list[str] = Field(default_factory=list, description="Key columns for upsert.")
    interval_column: str | None = Field(None, description="Timestamp column for replace_interval.")
    create_table: bool = True

    @model_validator(mode="after")
    def mode_needs(self) -> LoadConfig:
        if self.mode == "upsert" and not self.key:
            raise ValueError("mode 'upsert' needs 'key': the columns that identify a row")
        if self.mode == "replace_interval" and not self.interval_column:
            raise ValueError("mode 'replace_interval' needs 'interval_column'")
        return self


class CheckBase(Strict):
    severity: Severity = "error"
    name: str | None = None


class RowCount(CheckBase):
    check: Literal["row_count"]
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)


class NotNull(CheckBase):
    check: Literal["not_null"]
    columns: list[str] = Field(..., min_length=1)


class Unique(CheckBase):
    check: Literal["unique"]
    columns: list[str] = Field(..., min_length=1)


class AcceptedValues(CheckBase):
    check: Literal["accepted_values"]
    column: str
    values: list[Any] = Field(..., min_length=1)


class Range(CheckBase):
    check: Literal["range"]
    column: str
    min: float | None = None
    max: float | None = None


class Regex(CheckBase):
    check: Literal["regex"]
    column: str
    pattern: str

    @field_validator("pattern")
    @classmethod
    def compiles(cls, pattern: str) -> str:
        import re

        re.compile(pattern)
        return pattern


class Freshness(CheckBase):
    check: Literal["freshness"]
    column: str
    max_age_hours: float = Field(..., gt=0)


class CustomSql(CheckBase):
    check: Literal["custom_sql"]
    sql: str = Field(..., min_length=1, description="Returns the failing rows; the dataset is table 'data'.")


Check = Annotated[
    RowCount | NotNull | Unique | AcceptedValues | Range | Regex | Freshness | CustomSql,
    Field(discriminator="check"),
]


def union_tags(union: Any, field: str) -> frozenset[str]:
    """The discriminator values of an annotated tagged union: {"select", "rename", …} for Operation."""
    members = get_args(get_args(union)[0])
    return frozenset(get_args(member.model_fields[field].annotation)[0] for member in members)


# Pydantic puts the tag of a tagged union in an error's location; the validation report leaves it out.
UNION_TAGS = union_tags(Operation, "op") | union_tags(Check, "check")


class ValidateConfig(StepOptions):
    input: DatasetName | None = None
    key_columns: list[str] = Field(default_factory=list, description="Columns sampled for failing rows.")
    checks: list[Check] = Field(..., min_length=1)


class NotifyConfig(StepOptions):
    email: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(default_factory=list)
    webhook_connector: str | None = Field(None, description="An API connector to POST the summary to.")
    webhook_path: str = ""
    webhook_format: Literal["json", "slack"] = "json"
    subject: str | None = None
    when: Literal["always", "success", "failure"] = "always"

    @model_validator(mode="after")
    def has_channel(self) -> NotifyConfig:
        if not self.email and not self.webhook_connector:
            raise ValueError("give 'email' recipients, a 'webhook_connector', or both")
        return self


STEP_SCHEMAS: dict[str, type[StepOptions]] = {
    "extract": ExtractConfig,
    "transform": TransformConfig,
    "load": LoadConfig,
    "validate": ValidateConfig,
    "notify": NotifyConfig,
}

# Which connector types each connector-bearing key accepts.
STEP_CONNECTOR_TYPES: dict[tuple[str, str], frozenset[str]] = {
    ("extract", "connector"): frozenset({"database", "api", "file", "cloud"}),
    ("load", "connector"): frozenset({"database", "file", "cloud"}),
    ("notify", "webhook_connector"): frozenset({"api"}),
}


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
