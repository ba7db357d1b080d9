"""Property tests with generated hostile input: no crash, every refusal names a key, no canary ever comes out.

Bounded and derandomized (the same examples on every run, so CI is stable). A canary environment value and a
canary file outside every root are planted; the generators know their names and paths (as an attacker would),
never their contents, so any appearance of a content in an output, error, record or file is a leak.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_etl.errors import EtlError
from django_etl.stepkinds.templating import check_templates, render_config
from tests.security.conftest import CANARY_VARIABLE

CANARY_VALUE = f"canary-env-{uuid.uuid4().hex}"
CANARY_TEXT = f"canary-file-{uuid.uuid4().hex}"


def bounded(max_examples: int) -> settings:
    """Derandomized, without an example database; function-scoped fixtures (a staged input, folders) are set
    up once per test and only read by its examples."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The canary file (outside every root) and the canary environment value, for the whole module."""
    folder = tmp_path_factory.mktemp("outside")
    canary = folder / "canary.txt"
    canary.write_text(CANARY_TEXT + "\n")
    previous = os.environ.get(CANARY_VARIABLE)
    os.environ[CANARY_VARIABLE] = CANARY_VALUE
    yield canary
    if previous is None:
        del os.environ[CANARY_VARIABLE]
    else:
        os.environ[CANARY_VARIABLE] = previous


def assert_clean(*texts: object) -> None:
    for text in texts:
        rendered = text if isinstance(text, str) else json.dumps(text, default=str)
        assert CANARY_VALUE not in rendered
        assert CANARY_TEXT not in rendered


def files_under(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*"))


# ---------------------------------------------------------------- templates

TEMPLATE_WORDS = [
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    " ",
    ".",
    "|",
    "(",
    ")",
    "[",
    "]",
    ",",
    "'",
    '"',
    "~",
    "*",
    "**",
    "+",
    "-",
    "0",
    "9",
    "1e9",
    "if",
    "else",
    "endif",
    "for",
    "in",
    "endfor",
    "set",
    "=",
    "macro",
    "endmacro",
    "raw",
    "endraw",
    "include",
    "import",
    "is",
    "not",
    "and",
    "or",
    "ds",
    "ds_nodash",
    "data_interval_start",
    "logical_date",
    "run_id",
    "params",
    "conf",
    "macros",
    "uuid",
    "os",
    "environ",
    "get",
    "popen",
    "read",
    "self",
    "cycler",
    "lipsum",
    "namespace",
    "joiner",
    "range",
    "dict",
    "__class__",
    "__mro__",
    "__globals__",
    "__subclasses__",
    "__init__",
    "__builtins__",
    "mro",
    "items",
    "keys",
    "attr",
    "map",
    "format",
    "sql_literal",
    "sql_identifier",
    "tojson",
    "default",
    "lower",
    "upper",
    "replace",
    "int",
    "string",
    "strftime",
    "defined",
    "callable",
    CANARY_VARIABLE,
    f"'{CANARY_VARIABLE}'",
]

# A structured expression: names, attribute and key lookups, filters, calls.
NAMES = st.sampled_from(
    ["ds", "params", "conf", "run_id", "macros", "self", "cycler", "lipsum", "range", "os", "x"]
)
ATTRIBUTES = st.sampled_from(
    [
        "a",
        "uuid",
        "os",
        "environ",
        "__class__",
        "__globals__",
        "mro",
        "items",
        "get",
        "popen",
        CANARY_VARIABLE,
    ]
)
FILTER_NAMES = st.sampled_from(
    ["sql_literal", "sql_identifier", "tojson", "default", "lower", "replace", "int", "attr", "map", "format"]
)
LITERALS = st.one_of(
    st.integers(-5, 5).map(str),
    st.sampled_from([f"'{CANARY_VARIABLE}'", "'id'", "''", "'a'"]),
)


def expressions():
    def extend(inner):
        return st.one_of(
            st.tuples(inner, ATTRIBUTES).map(lambda t: f"{t[0]}.{t[1]}"),
            st.tuples(inner, LITERALS).map(lambda t: f"{t[0]}[{t[1]}]"),
            st.tuples(inner, FILTER_NAMES, st.lists(LITERALS, max_size=2)).map(
                lambda t: f"{t[0]} | {t[1]}" + (f"({', '.join(t[2])})" if t[2] else "")
            ),
            st.tuples(inner, st.lists(LITERALS | inner, max_size=2)).map(
                lambda t: f"{t[0]}({', '.join(t[1])})"
            ),
            st.tuples(inner, inner).map(lambda t: f"{t[0]} ~ {t[1]}"),
        )

    return st.recursive(NAMES | LITERALS, extend, max_leaves=6)


TEMPLATES = st.one_of(
    st.lists(st.sampled_from(TEMPLATE_WORDS) | st.text(max_size=3), max_size=25).map("".join),
    expressions().map(lambda e: "{{ " + e + " }}"),
    st.tuples(expressions(), expressions()).map(
        lambda t: "{% if " + t[0] + " %}{{ " + t[1] + " }}{% endif %}"
    ),
)
TEMPLATE_KEYS = st.sampled_from(
    [
        ("extract", "path"),
        ("extract", "query"),
        ("extract", "endpoint"),
        ("transform", "sql"),
        ("notify", "subject"),
    ]
)
RUN_VALUES = {
    "ds": "2025-01-02",
    "ds_nodash": "20250102",
    "data_interval_start": "2025-01-02T00:00:00+00:00",
    "data_interval_end": "2025-01-03T00:00:00+00:00",
    "logical_date": "2025-01-02T00:00:00+00:00",
    "run_id": "manual__fuzz",
    "params": {"a": "x'y", "id": 1},
    "conf": {"a": {"a": "z"}},
}


@bounded(400)
@given(template=TEMPLATES, where=TEMPLATE_KEYS)
def test_fuzz_template_sandbox_never_leaks(planted, template, where):
    step_type, key = where
    config = {key: template}
    problems = check_templates(config, step_type)
    assert all(k == f"config.{key}" and message for k, message in problems)
    try:
        rendered = render_config(config, RUN_VALUES, step_type)
    except EtlError as exc:  # ConfigurationError: the only way a template may fail
        assert str(exc).startswith(f"config.{key}: ") and exc.retryable is False
        assert_clean(str(exc))
    else:
        assert not problems
        assert isinstance(rendered[key], str)
        assert_clean(rendered)


# ---------------------------------------------------------------- config validators


JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 10**12),
    st.floats(allow_nan=False),
    TEMPLATES,
    st.text(max_size=8),
)
STEP_KEYS = st.sampled_from(
    [
        "connector",
        "query",
        "table",
        "path",
        "format",
        "endpoint",
        "params",
        "output",
        "inputs",
        "sql",
        "operations",
        "op",
        "condition",
        "expression",
        "columns",
        "checks",
        "check",
        "mode",
        "key",
        "email",
        "webhook_connector",
        "retries",
        "__class__",
        CANARY_VARIABLE,
    ]
)
CONFIGS = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(STEP_KEYS, inner, max_size=4),
    max_leaves=10,
)


@bounded(200)
@pytest.mark.django_db
@given(
    step_type=st.sampled_from(["extract", "transform", "load", "validate", "notify", "nope"]),
    config=st.dictionaries(STEP_KEYS, CONFIGS, max_size=5) | CONFIGS,
)
def test_fuzz_step_validation_names_a_key_and_never_leaks(planted, step_type, config):
    from django_etl.pipelines.models import PipelineStep
    from django_etl.pipelines.validation import validate_step

    step = PipelineStep(name="fuzzed", step_type=step_type, config=config, order_index=1, dependencies=[])
    report = validate_step(step)
    for problem in report:
        assert problem.key, problem  # every refusal names the key it is about
        assert problem.field in {"config", "step_type", "dependencies", "__all__"}
    assert_clean(str(report))


# ---------------------------------------------------------------- DuckDB fields

SQL_WORDS = [
    " ",
    "(",
    ")",
    ",",
    ";",
    "--",
    "/*",
    "*/",
    "'",
    '"',
    "*",
    "=",
    "<",
    "+",
    "||",
    "1",
    "0",
    "NULL",
    "id",
    "status",
    "amount",
    "orders",
    "data",
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "IN",
    "AS",
    "UNION",
    "WITH",
    "COPY",
    "TO",
    "ATTACH",
    "INSTALL",
    "LOAD",
    "SET",
    "PRAGMA",
    "CALL",
    "CREATE",
    "TABLE",
    "read_text",
    "read_csv",
    "read_parquet",
    "read_blob",
    "glob",
    "query",
    "current_setting",
    "duckdb_settings",
    "getenv",
    "sum",
    "count",
    "lower",
    "CAST",
    "INTEGER",
    "VARCHAR",
    "'/proc/self/environ'",
    f"'{CANARY_VARIABLE}'",
    "'{canary}'",
    "'{dags}/evil.py'",
    "(FORMAT csv)",
    "system.main.",
    "information_schema.tables",
]
SQL_TEXT = st.lists(st.sampled_from(SQL_WORDS), min_size=1, max_size=18).map("".join)


def operation_for(field: str, text: str) -> dict:
    if field == "condition":
        return {"op": "filter", "condition": text}
    if field == "expression":
        return {"op": "derive", "column": "x", "expression": text}
    if field == "aggregation":
        return {"op": "aggregate", "group_by": [], "aggregations": {"n": text}}
    if field == "order_by":
        return {"op": "deduplicate", "columns": ["id"], "order_by": text}
    return {"op": "cast", "columns": {"id": text}}


@bounded(100)
@given(
    field=st.sampled_from(
        ["sql", "condition", "expression", "aggregation", "order_by", "cast", "custom_sql"]
    ),
    text=SQL_TEXT,
)
def test_fuzz_duckdb_fields_refused_cleanly(
    planted, canaries, orders, make_run, execute, staging, settings, field, text
):
    settings.ETL_DUCKDB_TIMEOUT = 5
    text = text.replace("{canary}", str(planted)).replace("{dags}", str(canaries.dags))
    if field == "custom_sql":
        step_run = make_run(
            "validate", {"checks": [{"check": "custom_sql", "sql": text}]}, inputs=["orders"], task_id="check"
        )
        key = "config.checks[0]"
    else:
        config = {"sql": text} if field == "sql" else {"operations": [operation_for(field, text)]}
        step_run = make_run("transform", config, inputs=["orders"], output="result", task_id="shape")
        key = "config.sql" if field == "sql" else "config.operations"
    before = files_under(planted.parent)
    try:
        manifest = execute(step_run)
    except EtlError as exc:  # StepFailure / ConfigurationError: the documented error types, never retried
        assert str(exc).startswith(key), str(exc)
        assert exc.retryable is False
        assert_clean(str(exc))
        manifest = staging.read_manifest(step_run.dag_id, step_run.run_id, step_run.task_id)
    assert_clean(manifest)
    canaries.assert_no_file_written()
    assert files_under(planted.parent) == before
    canaries.assert_absent_from_tree(Path(staging.root))
