"""The admin's one JSON input rule: strict JSON within size and depth limits, no NUL, NaN or lone surrogate."""

from __future__ import annotations

import pytest

from django_etl.core.jsonfields import MAX_JSON_DEPTH, JSONInputError, SafeJSONField, parse_json


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ('{"a": ', "Not valid JSON (line 1, column 7)"),
        ("[" * 10_000 + "]" * 10_000, f"Nested deeper than {MAX_JSON_DEPTH} levels"),
        ('{"a": "x\\u0000"}', "NUL characters"),
        ('{"\\u0000": 1}', "NUL characters"),
        ('{"a": NaN}', "NaN is not allowed"),
        ("[-Infinity]", "-Infinity is not allowed"),
        ("[1e999]", "must be finite"),
        ("[" + "9" * 5000 + "]", "too many digits"),
        ('["\\udc00"]', "Lone surrogate"),
        ('"' + "x" * 300_000 + '"', "Too large"),
    ],
)
def test_parse_json_refuses(text, rule):
    with pytest.raises(JSONInputError, match=rule.replace("(", r"\(").replace(")", r"\)")):
        parse_json(text)


def test_parse_json_depth_ignores_brackets_inside_strings():
    text = '{"sql": "' + "[" * 100 + '\\"[[[", "a": [[1]]}'
    assert parse_json(text)["a"] == [[1]]
    assert parse_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is not None


def test_parse_json_accepts_ordinary_json():
    assert parse_json('{"a": [1, 2.5, "é", null, true], "b": {"c": "\\u00e9"}}') == {
        "a": [1, 2.5, "é", None, True],
        "b": {"c": "é"},
    }


def test_safe_json_field_turns_refusals_into_a_field_error():
    from django import forms

    class Form(forms.Form):
        config = SafeJSONField()

    form = Form({"config": "[" * 10_000})
    assert not form.is_valid() and "Nested deeper" in form.errors["config"][0]
    assert str(form["config"].value()).startswith("[[[")  # redisplayed as typed, not parsed again
