"""The one JSON input rule of the admin: size, nesting depth, NUL, NaN/Infinity and lone surrogates are refused.

Whatever a member types into a JSON field (connector config, credential secret, step config, pipeline config,
metadata, preferences) is parsed here, so bad input becomes a form error on that field instead of a
RecursionError, a PostgreSQL error on NUL or NaN, or an encoding error — each an HTTP 500. Messages name the
position and the rule, never the input (a credential secret is JSON too).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput, JSONString

MAX_JSON_CHARACTERS = 256 * 1024
MAX_JSON_DEPTH = 32

# Characters that change nesting or string state; everything else is skipped in one regex step.
_STRUCTURE = re.compile(r'["\\\[\]{}]')
_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONInputError(ValueError):
    """Input that is not acceptable JSON; the message is safe to show (it never quotes the input)."""


def parse_json(
    text: str, *, max_characters: int = MAX_JSON_CHARACTERS, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """Parse ``text`` as strict JSON within the limits, or raise JSONInputError saying what is wrong and where."""
    if len(text) > max_characters:
        raise JSONInputError(f"Too large: {len(text):,} characters; the limit is {max_characters:,}.")
    _check_depth(text, max_depth)
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"Not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}.") from None
    except JSONInputError:
        raise
    except (ValueError, RecursionError):  # an integer with more digits than Python converts
        raise JSONInputError("Not valid JSON: a number has too many digits.") from None
    _check_strings(value)
    return value


def _check_depth(text: str, max_depth: int) -> None:
    """Refuse nesting deeper than ``max_depth`` before parsing (the parser would recurse until it crashes)."""
    depth = 0
    in_string = False
    skip_until = -1
    for match in _STRUCTURE.finditer(text):
        position = match.start()
        if position < skip_until:
            continue  # the character after a backslash is escaped
        char = match.group()
        if in_string:
            if char == "\\":
                skip_until = position + 2
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                line = text.count("\n", 0, position) + 1
                raise JSONInputError(f"Nested deeper than {max_depth} levels (line {line}).")
        elif char in "]}":
            depth -= 1


def _refuse_constant(name: str):
    raise JSONInputError(f"{name} is not allowed: JSON numbers must be finite.")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise JSONInputError("A number is too large: JSON numbers must be finite.")
    return number


def _check_strings(value: Any) -> None:
    """Refuse NUL characters and lone surrogates in keys and strings (PostgreSQL and UTF-8 cannot store them)."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            for key, item in current.items():
                _check_string(key)
                stack.append(item)
        elif isinstance(current, list):
            stack.extend(current)
        elif isinstance(current, str):
            _check_string(current)


def _check_string(text: str) -> None:
    if "\x00" in text:
        raise JSONInputError("NUL characters (\\u0000) are not allowed.")
    if _SURROGATE.search(text):
        raise JSONInputError("Lone surrogate characters (\\ud800-\\udfff) are not allowed.")


class SafeJSONField(forms.JSONField):
    """Django's JSON form field with the limits above; every refusal is a ValidationError on the field."""

    def to_python(self, value):
        if self.disabled:
            return value
        if value in self.empty_values:
            return None
        if isinstance(value, (list, dict, int, float, JSONString)):
            return value
        try:
            converted = parse_json(value)
        except JSONInputError as exc:
            raise ValidationError(str(exc), code="invalid") from None
        return JSONString(converted) if isinstance(converted, str) else converted

    def bound_data(self, data, initial):
        # Django parses the submitted text again to redisplay it; that parse must obey the same limits.
        if self.disabled:
            return initial
        if data is None:
            return None
        try:
            return parse_json(data)
        except JSONInputError:
            return InvalidJSONInput(data)
