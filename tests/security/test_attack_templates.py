"""A hostile tenant's second round against templates: quoted values that escape their quotes, amplification."""

from __future__ import annotations

import pytest

from django_etl.errors import ConfigurationError
from django_etl.stepkinds.templating import check_templates, render_config

VALUES = {"ds": "2025-01-02", "run_id": "manual__1", "params": {}, "conf": {"q": "x' OR 1=1 --", "n": 1}}


# Each is accepted by a naive rule (the value does end in a quoting filter); each lets the value out of its
# literal: rendered with conf.q = "x' OR 1=1 --", the WHERE clause would be true for every row.
ESCAPING = [
    (
        "inside a LIKE pattern",
        "SELECT * FROM t WHERE name LIKE '%{{ conf.q | sql_literal }}%'",
        "written inside '…'",
    ),
    ("inside a quoted name", 'SELECT "a{{ conf.q | sql_identifier }}" FROM t', 'written inside "…"'),
    ("an escape string", "SELECT * FROM t WHERE a = E{{ conf.q | sql_literal }}", "glued to the SQL"),
    ("a unicode string", "SELECT * FROM t WHERE a = U&{{ conf.q | sql_literal }}", "glued to the SQL"),
    ("a line comment", "SELECT * FROM t -- {{ conf.q | sql_literal }}\nWHERE false", "inside an SQL comment"),
    (
        "a block comment",
        "SELECT * FROM t /* {{ conf.q | sql_literal }} */ WHERE false",
        "inside an SQL comment",
    ),
    ("a dollar quote", "SELECT * FROM t WHERE a = $${{ conf.q | sql_literal }}$$", "written inside $$…$$"),
    ("a tagged dollar quote", "SELECT $x$ {{ conf.q | sql_literal }} $x$", "written inside $x$…$x$"),
    (
        "two values as one",
        "SELECT * FROM t WHERE a = {{ conf.q | sql_literal }}{{ conf.q | sql_literal }}",
        "glued",
    ),
    ("after a literal", "SELECT * FROM t WHERE a = 'a'{{ conf.q | sql_literal }}", "glued to the SQL"),
    ("a name it chooses", "SELECT col{{ conf.n | sql_literal }} FROM t", "glued to the SQL"),
    ("before a literal", "SELECT * FROM t WHERE a = {{ conf.q | sql_literal }}'b'", "glued to the SQL"),
    (
        "a quote opened in another output",
        "SELECT * FROM t WHERE a = '{{ ds }} {{ conf.q | sql_literal }}'",
        "written inside '…'",
    ),
]


@pytest.mark.parametrize(("name", "sql", "expected"), ESCAPING, ids=[e[0] for e in ESCAPING])
def test_check_templates_quoted_value_that_leaves_its_literal_is_refused(name, sql, expected):
    problems = check_templates({"sql": sql}, "transform")
    assert [key for key, _ in problems] == ["config.sql"]
    assert expected in problems[0][1]
    with pytest.raises(ConfigurationError, match=r"^config\.sql: "):
        render_config({"sql": sql}, VALUES, "transform")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM t WHERE a = {{ conf.q | sql_literal }} AND b IN ({{ conf.n | sql_literal }})",
        "SELECT * FROM t WHERE d = '{{ ds }}' AND n = 'it''s' AND q = {{ conf.q | sql_literal }}",
        "SELECT s.{{ conf.q | sql_identifier }} FROM s -- a comment\nWHERE x={{ conf.q | sql_literal }}",
        "SELECT $$a$$ || {{ conf.q | sql_literal }}, /* c /* nested */ */ {{ conf.q | sql_literal }}",
        "SELECT x::text = {{ conf.q | sql_literal }}",
        "SELECT * FROM t WHERE name LIKE '%' || {{ conf.q | sql_literal }} || '%'",  # docs/step-config.md
        "{% if conf.q %}WHERE a = {{ conf.q | sql_literal }}{% endif %}",
    ],
)
def test_check_templates_quoted_value_on_its_own_passes(sql):
    assert check_templates({"sql": sql}, "transform") == []
    assert "'x'' OR 1=1 --'" in render_config({"sql": sql}, VALUES, "transform")["sql"]


def test_render_config_many_bounded_replaces_share_one_budget():
    # Each item renders to 30,000 characters (under the 1,000,000 limit); a thousand of them side by side would
    # build 30 MB before the length check. The replaces of one string share one budget instead.
    item = "{{ ds" + ("|replace('2', '" + "2" * 100 + "')") * 2 + " }}"
    with pytest.raises(ConfigurationError, match="replace: the results add up to more than"):
        render_config({"path": item * 1000}, VALUES, "extract")
    assert len(render_config({"path": item * 10}, VALUES, "extract")["path"]) > 10 * 30_000


@pytest.mark.parametrize(
    "template",
    [
        "{{ params.__class__ }}",
        "{{ params|attr('__class__') }}",
        "{{ '{0.__class__}'.format(params) }}",
        "{{ params.items() }}",
        "{{ (params|tojson).upper }}",
        "{{ ds|format(params) }}",
        "{{ ti }}",
        "{{ var.value.secret }}",
        "{{ conn.platform.password }}",
        "{{ macros.datetime }}",
        "{{ dag_run.conf }}",
        "{{ self }}",
        "{{ lipsum }}",
        "{{ range(10**9)|list }}",
        "{{ 'a' * 10**9 }}",
        "{% for x in params %}{% for y in params %}{{ x }}{% endfor %}{% endfor %}",
        "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
        "{% include '/etc/passwd' %}",
        "{% import 'x' as y %}",
        "{% set x = ds %}{{ x }}",
        "{{ params.l[::-1] }}",
        "{{ {'a': 1} }}",
        "{{ conf[conf.k] }}",
        "{{ ds|default(ds.__class__) }}",
    ],
)
def test_render_config_sandbox_escape_is_refused_naming_the_key(template):
    assert [key for key, _ in check_templates({"path": template}, "extract")] != []
    with pytest.raises(ConfigurationError, match=r"^config\.path: "):
        render_config({"path": template}, {**VALUES, "params": {"l": [1], "k": "x"}}, "extract")
