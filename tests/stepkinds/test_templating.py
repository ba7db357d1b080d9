"""The template sandbox: documented values and filters render; everything else fails, naming key and name."""

from __future__ import annotations

import pytest

from django_etl.errors import ConfigurationError
from django_etl.stepkinds.templating import (
    check_templates,
    render_config,
    sql_identifier,
    sql_literal,
    values_from_context,
)

VALUES = {
    "ds": "2025-01-02",
    "ds_nodash": "20250102",
    "data_interval_start": "2025-01-02T00:00:00+00:00",
    "data_interval_end": "2025-01-03T00:00:00+00:00",
    "logical_date": "2025-01-02T00:00:00+00:00",
    "run_id": "scheduled__2025-01-02T00:00:00+00:00",
    "params": {"country": "FR", "quote": "O'Brien", "ids": [1, 2], "limits": {"max": 10}},
    "conf": {"table": "orders", "day": "2025-01-02"},
}


def messages(config, step_type=None):
    return check_templates(config, step_type)


def test_render_config_documented_values_and_filters():
    config = {
        "connector": "landing",
        "path": "orders/{{ data_interval_start | strftime('%Y/%m/%d') }}/{{ ds_nodash }}.csv",
        "params": {
            "since": "{{ ds }}",
            "until": "{{ data_interval_end }}",
            "limit": "{{ params.limits.max }}",
        },
        "endpoint": "/{{ params.country | lower }}/{{ conf['table'] | upper }}",
        "records_path": "{{ conf.missing | default('data') }}{% if params.ids is defined %}.items{% endif %}",
        "batch_size": 100,
    }
    assert render_config(config, VALUES, "extract") == {
        "connector": "landing",
        "path": "orders/2025/01/02/20250102.csv",
        "params": {"since": "2025-01-02", "until": "2025-01-03T00:00:00+00:00", "limit": "10"},
        "endpoint": "/fr/ORDERS",
        "records_path": "data.items",
        "batch_size": 100,
    }


def test_render_config_quotes_values_for_sql():
    query = (
        "SELECT * FROM {{ conf.table | sql_identifier }} WHERE day = '{{ ds }}' "
        "AND name = {{ params.quote | sql_literal }} AND id IN ({{ params.ids | sql_literal }})"
    )
    rendered = render_config({"connector": "db", "query": query}, VALUES, "extract")
    assert rendered["query"] == (
        "SELECT * FROM \"orders\" WHERE day = '2025-01-02' AND name = 'O''Brien' AND id IN (1, 2)"
    )


def test_render_config_leaves_plain_strings_and_other_values_alone():
    config = {"sql": "SELECT '{' AS brace, 1 % 2 AS odd", "operations": [], "n": 1.5, "flag": None}
    assert render_config(config, VALUES, "transform") == config


@pytest.mark.parametrize(
    ("template", "offending"),
    [
        ("{{ macros.uuid.os.environ.get('ETL_CREDENTIAL_KEYS') }}", "'macros' is not available"),
        ("{{ macros.uuid.os.popen('id').read() }}", "'macros' is not available"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "'__class__'"),
        ("{{ params.__class__ }}", "names starting with '_'"),
        ("{{ params.ids.mro() }}", "calling params.ids.mro()"),
        ("{{ self }}", "'self' is not available"),
        ("{{ self._TemplateReference__context }}", "'self' is not available"),
        ("{{ cycler.__init__.__globals__ }}", "'cycler' is not available"),
        ("{{ lipsum.__globals__['os'] }}", "'lipsum' is not available"),
        ("{{ namespace() }}", "calling namespace()"),
        ("{{ joiner }}", "'joiner' is not available"),
        ("{{ range(99999999) | list }}", "calling range()"),
        ("{% for i in params.ids %}{% for j in params.ids %}x{% endfor %}{% endfor %}", "{% for %} loop"),
        ("{{ 9 ** 9 ** 9 }}", "arithmetic ('**')"),
        ("{{ 'x' * 100000000 }}", "arithmetic ('*')"),
        ("{% set x = 1 %}", "{% set %}"),
        ("{% macro m() %}{% endmacro %}", "{% macro %}"),
        ("{% include 'other' %}", "{% include %}"),
        ("{{ params.country | attr('upper') }}", "filter 'attr' is not available"),
        ("{{ params | map('upper') | list }}", "filter 'map' is not available"),
        ("{{ params.country is callable }}", "test 'callable' is not available"),
        ("{{ ds.upper }}", "ds is a plain value without keys"),
        ("{{ params[conf.table] }}", "only constant keys"),
        ("{{ params.ids[0:1] }}", "a slice"),
        ("{{ {'a': 1} }}", "a dict literal"),
        ("{{ x", "template syntax error"),
    ],
)
def test_check_templates_refuses_with_key_and_name(template, offending):
    problems = messages({"connector": "c", "path": template})
    assert problems, template
    assert all(key == "config.path" for key, _ in problems)
    assert any(offending in message for _, message in problems), problems
    with pytest.raises(ConfigurationError) as caught:
        render_config({"connector": "c", "path": template}, VALUES)
    assert str(caught.value).startswith("config.path: ") and caught.value.retryable is False


def test_check_templates_names_nested_keys():
    config = {
        "operations": [
            {"op": "filter", "condition": "ok"},
            {"op": "derive", "column": "c", "expression": "{{ lipsum() }}"},
        ]
    }
    assert [key for key, _ in messages(config, "transform")] == ["config.operations[1].expression"] * 2


@pytest.mark.parametrize(
    ("step_type", "config", "key"),
    [
        ("extract", {"connector": "db", "query": "SELECT {{ params.country }}"}, "config.query"),
        ("transform", {"sql": "SELECT * FROM t WHERE c = '{{ conf.day }}'"}, "config.sql"),
        ("transform", {"sql": "SELECT '{{ run_id }}'"}, "config.sql"),
        (
            "transform",
            {"operations": [{"op": "filter", "condition": "c = {{ params.country | lower }}"}]},
            "config.operations[0].condition",
        ),
        (
            "transform",
            {"operations": [{"op": "derive", "column": "x", "expression": "{{ conf.day or 'x' }}"}]},
            "config.operations[0].expression",
        ),
        (
            "transform",
            {"operations": [{"op": "aggregate", "aggregations": {"n": "sum({{ conf.column }})"}}]},
            "config.operations[0].aggregations.n",
        ),
        (
            "transform",
            {"operations": [{"op": "deduplicate", "order_by": "{{ params.order }}"}]},
            "config.operations[0].order_by",
        ),
        (
            "validate",
            {"checks": [{"check": "custom_sql", "sql": "SELECT * FROM data WHERE a > {{ params.n }}"}]},
            "config.checks[0].sql",
        ),
        # A filter after the quoting one could undo it.
        (
            "extract",
            {"query": 'SELECT {{ params.quote | sql_literal | replace("\'\'", "\'") }}'},
            "config.query",
        ),
        ("extract", {"query": "SELECT {{ 'x' | replace('x', params.quote) }}"}, "config.query"),
    ],
)
def test_check_templates_sql_keys_need_a_quoting_filter(step_type, config, key):
    problems = messages(config, step_type)
    assert [k for k, _ in problems] == [key]
    assert "'| sql_literal' (a value) or '| sql_identifier' (a name)" in problems[0][1]


def test_check_templates_quoted_values_and_run_dates_pass_in_sql():
    config = {
        "sql": "SELECT * FROM {{ conf.table | sql_identifier }} WHERE d >= '{{ data_interval_start }}' "
        "AND c = {{ (params.country or 'FR') | sql_literal }} "
        "{% if conf.full is defined and conf.full %}AND 1 = 1{% endif %} "
        "AND n = {{ params.n | sql_literal if params.n is defined else 'NULL' }}"
    }
    assert messages(config, "transform") == []


def test_check_templates_non_sql_keys_take_values_as_text():
    assert messages({"connector": "c", "path": "{{ conf.day }}/{{ params.country }}.csv"}, "extract") == []


def test_render_config_missing_values_name_the_key():
    with pytest.raises(ConfigurationError, match=r"config.path: conf has no key 'nope'"):
        render_config({"path": "{{ conf.nope }}"}, VALUES)
    with pytest.raises(ConfigurationError, match=r"config.path: params.limits has no key 'min'"):
        render_config({"path": "{{ params.limits.min }}"}, VALUES)
    no_date = {k: v for k, v in VALUES.items() if k not in {"ds", "logical_date"}}
    with pytest.raises(ConfigurationError, match=r"config.path: 'ds' is undefined for this run"):
        render_config({"path": "{{ ds }}"}, no_date)


def test_render_config_object_attributes_lead_nowhere():
    # Keys only: a dict's methods are not reachable as attributes.
    with pytest.raises(ConfigurationError, match="params has no key 'items'"):
        render_config({"path": "{{ params.items }}"}, VALUES)


def test_render_config_refuses_output_that_grows_without_bound():
    grow = "{{ ds" + " | replace('', ds)" * 8 + " }}"
    with pytest.raises(ConfigurationError, match=r"config\.path: replace: the result would exceed"):
        render_config({"path": grow}, VALUES)


def test_sql_literal_quotes_every_plain_value():
    assert sql_literal("it's") == "'it''s'"
    assert sql_literal(3) == "3" and sql_literal(2.5) == "2.5"
    assert sql_literal(True) == "TRUE" and sql_literal(None) == "NULL"
    assert sql_literal(["a", 1]) == "'a', 1" and sql_literal([]) == "NULL"
    for bad in ({"a": 1}, [[1]], float("nan"), "nul\x00"):
        with pytest.raises(ValueError, match="sql_literal"):
            sql_literal(bad)


def test_sql_identifier_quotes_names():
    assert sql_identifier('we"ird') == '"we""ird"'
    for bad in ("", 3, None, "x" * 129):
        with pytest.raises(ValueError, match="sql_identifier"):
            sql_identifier(bad)


def test_values_from_context_are_plain_data():
    from datetime import UTC, datetime

    class DagRun:
        conf = {"day": "2025-01-02", "when": datetime(2025, 1, 2, tzinfo=UTC)}

    class Params(dict):
        def dump(self):
            return {"country": "FR"}

    context = {
        "ds": "2025-01-02",
        "ds_nodash": "20250102",
        "logical_date": datetime(2025, 1, 2, tzinfo=UTC),
        "data_interval_start": datetime(2025, 1, 2, tzinfo=UTC),
        "data_interval_end": datetime(2025, 1, 3, tzinfo=UTC),
        "run_id": "manual__1",
        "params": Params(),
        "dag_run": DagRun(),
        "macros": object(),
        "ti": object(),
    }
    assert values_from_context(context) == {
        "ds": "2025-01-02",
        "ds_nodash": "20250102",
        "logical_date": "2025-01-02T00:00:00+00:00",
        "data_interval_start": "2025-01-02T00:00:00+00:00",
        "data_interval_end": "2025-01-03T00:00:00+00:00",
        "run_id": "manual__1",
        "params": {"country": "FR"},
        "conf": {"day": "2025-01-02", "when": "2025-01-02 00:00:00+00:00"},
    }


def test_check_templates_quoting_filter_inside_quotes_is_refused():
    # '{{ x | sql_literal }}' would read ''x'': an empty string, then the value as bare SQL.
    config = {
        "sql": "SELECT * FROM t WHERE a = '{{ conf.day | sql_literal }}' AND b = \"{{ conf.c | sql_identifier }}\""
    }
    assert [message.split(":")[0] for _, message in messages(config, "transform")] == [
        "{{ conf.day | sql_literal }} is written inside '…'",
        '{{ conf.c | sql_identifier }} is written inside "…"',
    ]
