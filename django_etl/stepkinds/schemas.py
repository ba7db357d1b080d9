"""The configuration model of each step kind (what a PipelineStep's ``config`` may hold), Django-free.

docs/step-config.md documents every key with one example per kind.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from django_etl.configmodel import DatasetName, FileFormat, Identifier, Strict, union_tags

Severity = Literal["warning", "error"]


class StepOptions(Strict):
    """Options every step type accepts; each overrides the pipeline's default."""

    retries: int | None = Field(None, ge=0, le=20)
    retry_delay_seconds: int | None = Field(None, ge=0)
    execution_timeout_seconds: int | None = Field(None, gt=0)
    memory_limit_mb: int | None = Field(
        None,
        ge=1,
        description="Peak memory (MiB) of this step's task above which a RESOURCE_EXHAUSTION alert is raised; "
        "overrides the pipeline's monitoring.memory_limit_mb (docs/alerts.md).",
    )


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
    format: FileFormat | None = None
    delimiter: str = Field(",", min_length=1, max_length=1)
    encoding: str = Field(
        "utf-8",
        min_length=1,
        description="The files' character encoding (utf-8, latin-1, cp1252, utf-16...).",
    )
    # API connectors
    endpoint: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    records_path: str | None = Field(None, description="Dotted path of the record list in each response.")
    pagination: Pagination | None = None
    # incremental extraction
    watermark_column: str | None = None
    batch_size: int = Field(50_000, ge=1)
    # what the dataset's columns are when a run finds no rows (and the types their values are cast to)
    schema_: dict[str, str] | None = Field(
        None,
        alias="schema",
        description="Column -> type (string, int64, float64, bool, date, timestamp, timestamptz, decimal(p,s)...).",
    )

    @field_validator("encoding")
    @classmethod
    def known_encoding(cls, encoding: str) -> str:
        from django_etl.dataplane.csvpieces import text_codec

        text_codec(encoding)  # ValueError: unknown, or not a text encoding (zlib, base64...)
        return encoding

    @field_validator("schema_")
    @classmethod
    def known_types(cls, declared: dict[str, str] | None) -> dict[str, str] | None:
        from django_etl.dataplane.typenames import canonical_type

        if declared is None:
            return None
        if not declared:
            raise ValueError("declare at least one column, or leave 'schema' out")
        problems, canonical = [], {}
        for column, kind in declared.items():
            try:
                canonical[column] = canonical_type(kind)
            except ValueError as exc:
                problems.append(f"column {column!r}: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return canonical


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
    format: FileFormat | None = None
    mode: Literal["append", "replace", "upsert", "replace_interval"] = "append"
    key: list[str] = Field(default_factory=list, description="Key columns for upsert.")
    interval_column: str | None = Field(None, description="Timestamp column for replace_interval.")
    create_table: bool = True
    allow_empty: bool = Field(False, description="Let a 'replace' of zero rows empty the target.")
    on_schema_change: Literal["fail", "ignore", "append_new_columns", "sync_all_columns"] = Field(
        "fail", description="What a database load does when the staged columns differ from the table's."
    )

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
