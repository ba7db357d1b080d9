"""Step-config templates in a strict sandbox: documented run values and safe filters only (no Django, no Airflow).

Tenant editors write the templates, so they are hostile input (docs/security.md, "Templates"). Airflow's own
Jinja trusts DAG authors (``{{ macros.uuid.os.environ }}`` works there), so step configs never go through it:
the operator renders them here instead. The environment is Jinja's immutable sandbox with no globals, no
extensions and only the filters and tests below; the values are plain data (strings, numbers, lists, dicts)
whose "attributes" are their keys, so nothing leads to an object, a module or the process. On top of that
every template is checked against Jinja's syntax tree before it is rendered (and when the step is saved):
only the documented names, filters, tests and constructs pass, and in a key that holds SQL a value from
``params``, ``conf`` or ``run_id`` must end in a quoting filter.

docs/step-config.md lists the variables and filters.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from jinja2 import StrictUndefined, Undefined, nodes
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.filters import do_default, do_lower, do_trim, do_upper
from jinja2.sandbox import ImmutableSandboxedEnvironment

from django_etl.errors import ConfigurationError

__all__ = [
    "FILTERS",
    "QUOTING_FILTERS",
    "SQL_KEYS",
    "TESTS",
    "UNTRUSTED_VARIABLES",
    "VARIABLES",
    "check_templates",
    "render_config",
    "sql_identifier",
    "sql_literal",
    "values_from_context",
]

# The values a template may read (docs/step-config.md). Dates are ISO 8601 strings in UTC.
VARIABLES: dict[str, str] = {
    "ds": "the run's logical date, YYYY-MM-DD",
    "ds_nodash": "the same, YYYYMMDD",
    "data_interval_start": "start of the run's data interval, ISO 8601 (2025-01-02T00:00:00+00:00)",
    "data_interval_end": "end of the run's data interval, ISO 8601",
    "logical_date": "the run's logical date, ISO 8601",
    "run_id": "the Airflow run id (chosen by whoever triggers a manual run)",
    "params": "the pipeline's params, with the values the run was triggered with (plain JSON)",
    "conf": "the run's conf, as given when it was triggered (plain JSON)",
}
# Whoever triggers a run chooses these: in SQL they must go through a quoting filter.
UNTRUSTED_VARIABLES = frozenset({"params", "conf", "run_id"})
QUOTING_FILTERS = frozenset({"sql_literal", "sql_identifier"})

# Keys whose value is SQL, per step kind ("*" matches any list index or mapping key).
SQL_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "extract": (("query",),),
    "transform": (
        ("sql",),
        ("operations", "*", "condition"),
        ("operations", "*", "expression"),
        ("operations", "*", "aggregations", "*"),
        ("operations", "*", "order_by"),
    ),
    "validate": (("checks", "*", "sql"),),
}

MAX_RENDERED_LENGTH = 1_000_000  # characters per rendered string: a template cannot blow memory up
_REPLACED: contextvars.ContextVar[int] = contextvars.ContextVar("etl_template_replaced", default=0)


class TemplateValueError(ValueError):
    """A filter refused its input (the message says which filter and why)."""


# ---------------------------------------------------------------- filters


def sql_literal(value: Any) -> str:
    """A value as a standard SQL literal: 'text' (quotes doubled), 42, 1.5, TRUE, NULL; a list as a, b, c."""
    if isinstance(value, list | tuple):
        if any(isinstance(item, list | tuple | dict) for item in value):
            raise TemplateValueError("sql_literal: a list may hold only plain values")
        return ", ".join(sql_literal(item) for item in value) if value else "NULL"
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TemplateValueError("sql_literal: not a finite number")
        return repr(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise TemplateValueError("sql_literal: text holds a NUL character")
        return "'" + value.replace("'", "''") + "'"
    raise TemplateValueError(f"sql_literal: cannot quote a {_kind(value)}")


def sql_identifier(value: Any) -> str:
    """A name as a quoted SQL identifier: "my column" (double quotes doubled)."""
    if not isinstance(value, str) or not value:
        raise TemplateValueError(f"sql_identifier: needs a non-empty text, not {_kind(value)}")
    if "\x00" in value or len(value) > 128:
        raise TemplateValueError("sql_identifier: not a usable name (NUL character or over 128 characters)")
    return '"' + value.replace('"', '""') + '"'


def tojson(value: Any) -> str:
    """The value as JSON (keys sorted)."""
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TemplateValueError(f"tojson: {exc}") from None


def replace(value: Any, old: Any, new: Any, count: Any = None) -> str:
    """str.replace, refusing results longer than the rendering limit (repeated replaces grow geometrically)."""
    text, old, new = str(value), str(old), str(new)
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        raise TemplateValueError("replace: count must be a whole number")
    occurrences = text.count(old) if count is None or count < 0 else min(text.count(old), count)
    size = len(text) + occurrences * (len(new) - len(old))
    if size > MAX_RENDERED_LENGTH:
        raise TemplateValueError(f"replace: the result would exceed {MAX_RENDERED_LENGTH} characters")
    # Each result is bounded, but a template can hold hundreds of them side by side: all the replaces of one
    # rendered string share one budget, so the string is never built far past the limit it is checked against.
    spent = _REPLACED.get() + size
    if spent > 2 * MAX_RENDERED_LENGTH:
        raise TemplateValueError(
            f"replace: the results add up to more than {2 * MAX_RENDERED_LENGTH} characters"
        )
    _REPLACED.set(spent)
    return text.replace(old, new, -1 if count is None else count)


def strftime(value: Any, pattern: Any) -> str:
    """Format an ISO 8601 date value (ds, data_interval_start...): {{ data_interval_start | strftime('%Y/%m') }}."""
    if not isinstance(pattern, str) or len(pattern) > 100:
        raise TemplateValueError("strftime: the format must be a text of at most 100 characters")
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return moment.strftime(pattern)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TemplateValueError(f"strftime: {exc}") from None


def to_int(value: Any, default: Any = 0) -> Any:
    """A whole number from a number or its text (``default`` when it is not one)."""
    if isinstance(value, bool):
        return int(value)
    try:
        if isinstance(value, str) and len(value) <= 100:
            text = value.strip()
            return int(text) if text.lstrip("+-").isdigit() else int(float(text))
        if isinstance(value, int | float):
            return int(value)
    except (ValueError, OverflowError):
        pass
    return default


def to_string(value: Any) -> str:
    """The value's text (an undefined value is an error, as everywhere)."""
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises, naming the value
    return str(value)


FILTERS: dict[str, Callable[..., Any]] = {
    "sql_literal": sql_literal,
    "sql_identifier": sql_identifier,
    "tojson": tojson,
    "default": do_default,
    "lower": do_lower,
    "upper": do_upper,
    "trim": do_trim,
    "replace": replace,
    "int": to_int,
    "string": to_string,
    "strftime": strftime,
}
TESTS: dict[str, Callable[..., bool]] = {
    "defined": lambda value: not isinstance(value, Undefined),
    "undefined": lambda value: isinstance(value, Undefined),
    "none": lambda value: value is None,
    "number": lambda value: isinstance(value, int | float) and not isinstance(value, bool),
    "string": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool),
}


# ---------------------------------------------------------------- the environment


class PlainDataEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox where ``a.b`` and ``a['b']`` only look up keys and list items of plain data."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        return self.getitem(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Undefined):
            return obj  # the first missing name is the one to report
        if isinstance(obj, dict) and isinstance(argument, str) and argument in obj:
            return obj[argument]
        if (
            isinstance(obj, list)
            and isinstance(argument, int)
            and not isinstance(argument, bool)
            and -len(obj) <= argument < len(obj)
        ):
            return obj[argument]
        where = getattr(obj, "where", None) or _kind(obj)
        return self.undefined(f"{where} has no key {argument!r}", obj=obj, name=str(argument))

    def call(self, *args: Any, **kwargs: Any) -> Any:  # filters are called directly, never through here
        raise SecurityError("templates cannot call functions")


def _environment() -> PlainDataEnvironment:
    env = PlainDataEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, extensions=()
    )
    env.globals.clear()  # range, dict, lipsum, cycler, joiner, namespace
    env.filters = dict(FILTERS)
    env.tests = dict(TESTS)
    return env


ENVIRONMENT = _environment()


# ---------------------------------------------------------------- static check


def check_templates(config: Any, step_type: str | None = None) -> list[tuple[str, str]]:
    """Every problem of every template in ``config``, as (key, message): ``("config.query", "...")``.

    ``step_type`` selects the keys that hold SQL (all kinds' SQL keys when it is not given).
    """
    problems: list[tuple[str, str]] = []
    for path, text in _strings(config, ()):
        key = _key(path)
        problems.extend((key, message) for message in _check_one(text, _is_sql_key(step_type, path)))
    return problems


def _check_one(text: str, sql: bool) -> list[str]:
    if not _looks_templated(text):
        return []
    try:
        tree = ENVIRONMENT.parse(text)
    except TemplateSyntaxError as exc:
        return [f"template syntax error: {exc.message} (line {exc.lineno})"]
    except RecursionError:
        return ["template is nested too deeply"]
    checker = _Checker(sql)
    try:
        checker.visit(tree)
    except RecursionError:
        return ["template is nested too deeply"]
    return list(dict.fromkeys(checker.problems))  # once each, in order


_CONSTRUCT_NAMES = {
    nodes.For: "a {% for %} loop",
    nodes.Macro: "a {% macro %}",
    nodes.CallBlock: "a {% call %} block",
    nodes.FilterBlock: "a {% filter %} block",
    nodes.With: "a {% with %} block",
    nodes.Block: "a {% block %}",
    nodes.Extends: "{% extends %}",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.Assign: "{% set %}",
    nodes.AssignBlock: "{% set %}",
    nodes.Call: "a function or method call",
    nodes.Slice: "a slice",
    nodes.Dict: "a dict literal",
    nodes.BinExpr: "arithmetic",
    nodes.EvalContextModifier: "{% autoescape %}",
}


class _Checker:
    """Walks a template's syntax tree; collects a message for each thing outside the documented set."""

    def __init__(self, sql: bool) -> None:
        self.sql = sql
        self.problems: list[str] = []
        self.lexer = SqlLexer()  # where the template's SQL text stands, in document order

    def visit(self, node: nodes.Node) -> None:
        if isinstance(node, nodes.Template):
            for child in node.body:
                self.visit(child)
        elif isinstance(node, nodes.Output):
            for position, child in enumerate(node.nodes):
                if isinstance(child, nodes.TemplateData):
                    self.lexer.feed(child.data)
                    continue
                self.expression(child)
                if self.sql:
                    self.sql_output(child)
                    self.sql_quotes(node.nodes, position)
                self.lexer.feed("0")  # a value: one token (two values side by side merge into one)
                self.lexer.last = _VALUE
        elif isinstance(node, nodes.If):
            self.expression(node.test)
            for child in [*node.body, *node.elif_, *node.else_]:
                self.visit(child)
        else:
            self.refuse(node)

    def refuse(self, node: nodes.Node) -> None:
        words = f"{type(node).__name__}"
        for kind, name in _CONSTRUCT_NAMES.items():
            if isinstance(node, kind):
                words = name
                break
        if isinstance(node, nodes.BinExpr):
            words = f"arithmetic ({node.operator!r})"
        elif isinstance(node, nodes.Call):
            words = f"calling {_describe(node.node)}()"
        self.problems.append(f"{words} is not allowed in templates: use values and filters only")
        # Name what the refused part reaches for too ('macros' in macros.uuid.os.popen(...)).
        for child in node.iter_child_nodes():
            if isinstance(child, nodes.Expr):
                self.expression(child)

    def expression(self, node: nodes.Node) -> None:
        if isinstance(node, nodes.TemplateData | nodes.Const):
            return
        if isinstance(node, nodes.Name):
            self.name(node.name)
        elif isinstance(node, nodes.Getattr | nodes.Getitem):
            self.lookup(node)
        elif isinstance(node, nodes.Filter):
            if node.name not in FILTERS:
                self.problems.append(f"filter {node.name!r} is not available; filters: {', '.join(FILTERS)}")
            else:
                self.arity(node, FILTERS[node.name])
            self.arguments(node)
        elif isinstance(node, nodes.Test):
            if node.name not in TESTS:
                self.problems.append(f"test {node.name!r} is not available; tests: {', '.join(TESTS)}")
            self.arguments(node)
        elif isinstance(node, nodes.CondExpr):
            for child in (node.test, node.expr1, node.expr2):
                if child is not None:
                    self.expression(child)
        elif isinstance(node, nodes.Compare):
            self.expression(node.expr)
            for operand in node.ops:
                self.expression(operand.expr)
        elif isinstance(node, nodes.And | nodes.Or):
            self.expression(node.left)
            self.expression(node.right)
        elif isinstance(node, nodes.Not | nodes.Neg | nodes.Pos):
            self.expression(node.node)
        elif isinstance(node, nodes.Concat):
            for child in node.nodes:
                self.expression(child)
        elif isinstance(node, nodes.List | nodes.Tuple):
            for child in node.items:
                self.expression(child)
        else:
            self.refuse(node)

    def arguments(self, node: nodes.Filter | nodes.Test) -> None:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            self.problems.append(f"{node.name!r}: *args and **kwargs are not allowed in templates")
        for child in [node.node, *node.args, *(k.value for k in node.kwargs)]:
            if child is not None:
                self.expression(child)

    def arity(self, node: nodes.Filter, function: Callable[..., Any]) -> None:
        try:
            inspect.signature(function).bind(None, *node.args, **{k.key: k.value for k in node.kwargs})
        except TypeError as exc:
            self.problems.append(f"filter {node.name!r}: {exc}")

    def name(self, name: str) -> None:
        if name not in VARIABLES:
            self.problems.append(f"{name!r} is not available in templates; variables: {', '.join(VARIABLES)}")

    def lookup(self, node: nodes.Getattr | nodes.Getitem) -> None:
        """``params.a.b`` / ``conf['a'][0]``: key lookups into params or conf, with constant keys."""
        chain: list[Any] = []
        current: nodes.Node = node
        while isinstance(current, nodes.Getattr | nodes.Getitem):
            if isinstance(current, nodes.Getattr):
                chain.append(current.attr)
            elif isinstance(current.arg, nodes.Const) and isinstance(current.arg.value, str | int):
                chain.append(current.arg.value)
            else:
                self.problems.append(f"{_describe(current)}: only constant keys can be looked up")
                self.expression(current.arg)
                chain.append("?")
            current = current.node
        path = _describe(node)
        hidden = [part for part in chain if isinstance(part, str) and part.startswith("_")]
        if hidden:
            self.problems.append(f"{path}: names starting with '_' ({hidden[-1]!r}) are not allowed")
        if not isinstance(current, nodes.Name):
            self.expression(current)
            self.problems.append(f"{path}: only params and conf have keys to look up")
            return
        self.name(current.name)
        if current.name in VARIABLES and current.name not in {"params", "conf"}:
            self.problems.append(
                f"{path}: {current.name} is a plain value without keys; use a filter instead"
            )

    # -------- SQL keys: every untrusted value reaching the output ends in a quoting filter
    def sql_output(self, node: nodes.Node) -> None:
        for name in self.unquoted(node):
            self.problems.append(
                f"{{{{ {name} }}}} would put {name.split('.')[0].split('[')[0]} into SQL as text: end it with "
                f"'| sql_literal' (a value) or '| sql_identifier' (a name), e.g. {{{{ {name} | sql_literal }}}}"
            )

    def sql_quotes(self, siblings: list[nodes.Node], position: int) -> None:
        """A quoted value must stand on its own in the SQL: not inside a literal, a quoted name or a comment.

        ``'%{{ x | sql_literal }}%'`` would close the template's literal and put the value outside it;
        ``E{{ x | sql_literal }}`` makes it a backslash-escape string; ``-- {{ x | sql_literal }}`` is in a
        comment a newline in the value ends; ``{{ a | sql_literal }}{{ b | sql_literal }}`` is one literal.
        """
        node = siblings[position]
        if not (isinstance(node, nodes.Filter) and node.name in QUOTING_FILTERS):
            return
        after = siblings[position + 1] if position + 1 < len(siblings) else None
        right = after.data[:1] if isinstance(after, nodes.TemplateData) else ""
        inside = self.lexer.inside()
        if inside is not None:
            self.problems.append(
                f"{{{{ {_describe(node)} }}}} is written inside {inside}: {node.name} adds the quotes itself; "
                "remove the ones around it (and write it outside comments)"
            )
        elif _glued(self.lexer.last) or right in ("'", '"', "$") or (right and _word_char(right)):
            self.problems.append(
                f"{{{{ {_describe(node)} }}}} is glued to the SQL around it (after {self.lexer.last!r}, before "
                f"{right!r}): leave a space or an operator on both sides"
            )

    def unquoted(self, node: nodes.Node) -> Iterator[str]:
        """The untrusted values whose text reaches the output of ``node`` without a quoting filter last."""
        if isinstance(node, nodes.Filter):
            if node.name in QUOTING_FILTERS:
                return
            # A filter after the quoting one could undo it (``| sql_literal | replace("''", "'")``):
            # below any other filter, every untrusted value counts as unquoted.
            for found in node.find_all(nodes.Name):
                if found.name in UNTRUSTED_VARIABLES:
                    yield _describe(self.outermost_lookup(node, found))
        elif isinstance(node, nodes.Name | nodes.Getattr | nodes.Getitem):
            root = node
            while isinstance(root, nodes.Getattr | nodes.Getitem):
                root = root.node
            if isinstance(root, nodes.Name) and root.name in UNTRUSTED_VARIABLES:
                yield _describe(node)
        elif isinstance(node, nodes.CondExpr):  # the test only chooses; both branches may be output
            for child in (node.expr1, node.expr2):
                if child is not None:
                    yield from self.unquoted(child)
        elif isinstance(node, nodes.And | nodes.Or):  # Jinja's and/or return an operand, not a boolean
            yield from self.unquoted(node.left)
            yield from self.unquoted(node.right)
        elif isinstance(node, nodes.Concat):
            for child in node.nodes:
                yield from self.unquoted(child)
        elif isinstance(node, nodes.List | nodes.Tuple):
            for child in node.items:
                yield from self.unquoted(child)
        # Const, TemplateData, Compare, Test, Not: their text is the platform's (a constant or a boolean)

    @staticmethod
    def outermost_lookup(tree: nodes.Node, name: nodes.Name) -> nodes.Node:
        """``params.a.b`` for the Name ``params`` inside ``tree`` (the longest key lookup rooted at it)."""
        best: nodes.Node = name
        for lookup in tree.find_all((nodes.Getattr, nodes.Getitem)):
            root = lookup
            while isinstance(root, nodes.Getattr | nodes.Getitem):
                root = root.node
            if root is name and len(_describe(lookup)) > len(_describe(best)):
                best = lookup
        return best


_VALUE = "another value"  # what the lexer's last "character" is right after a value


def _glued(last: str) -> bool:
    """Whether a quoted value written right after ``last`` is no longer a literal of its own.

    'a''b' is one literal, E'…' and U&'…' are escape strings, col'…' or col42 a name the value chooses, $…$ a
    dollar quote, and two values side by side one token.
    """
    return last == _VALUE or (len(last) == 1 and (last in "'\"$&\\" or _word_char(last)))


def _word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


class SqlLexer:
    """Follows SQL text piece by piece: is its end inside a literal, a quoted name, a dollar quote or a comment?

    Standard SQL as PostgreSQL, SQLite and DuckDB read it: '' and "" double a quote, -- runs to the end of the
    line, /* */ nests (PostgreSQL), $tag$...$tag$ quotes (PostgreSQL, DuckDB).
    """

    def __init__(self) -> None:
        self.state: str | None = None  # "'", '"', "--", "/*", or the $tag$ of a dollar quote
        self.depth = 0
        self.last = ""  # the last character fed (what a value would be glued to)

    def inside(self) -> str | None:
        if self.state is None:
            return None
        if self.state in ("--", "/*"):
            return "an SQL comment"
        return f"{self.state}…{self.state}"

    def feed(self, text: str) -> None:
        index, end = 0, len(text)
        while index < end:
            char = text[index]
            state = self.state
            if state is None:
                if char in "'\"":
                    self.state = char
                elif text.startswith("--", index):
                    self.state, index = "--", index + 1
                elif text.startswith("/*", index):
                    self.state, self.depth, index = "/*", 1, index + 1
                elif char == "$" and not _word_char(self.last or " "):
                    found = _DOLLAR_TAG.match(text, index)
                    if found:
                        self.state, index = found.group(0), found.end() - 1
            elif state in ("'", '"'):
                if char == state:
                    if text.startswith(state * 2, index):
                        index += 1  # a doubled quote stays inside
                    else:
                        self.state = None
            elif state == "--":
                if char == "\n":
                    self.state = None
            elif state == "/*":
                if text.startswith("*/", index):
                    self.depth, index = self.depth - 1, index + 1
                    if self.depth == 0:
                        self.state = None
                elif text.startswith("/*", index):
                    self.depth, index = self.depth + 1, index + 1
            elif text.startswith(state, index):  # the closing $tag$
                self.state, index = None, index + len(state) - 1
            self.last = text[index]
            index += 1


_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$")


def _describe(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_describe(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem):
        key = node.arg.value if isinstance(node.arg, nodes.Const) else "..."
        return f"{_describe(node.node)}[{key!r}]"
    if isinstance(node, nodes.Filter):
        return f"{_describe(node.node) if node.node is not None else ''} | {node.name}"
    if isinstance(node, nodes.Call):
        return f"{_describe(node.node)}(...)"
    if isinstance(node, nodes.Const):
        return repr(node.value)[:40]
    return type(node).__name__.lower()


# ---------------------------------------------------------------- rendering


def render_config(config: Any, values: Mapping[str, Any], step_type: str | None = None) -> Any:
    """``config`` with every string rendered; ConfigurationError (never retried) naming the key otherwise."""
    problems = check_templates(config, step_type)
    if problems:
        raise ConfigurationError(_summary(problems))
    context = {name: _located(values[name], name) for name in VARIABLES if name in values}
    rendered, problems = _render(config, (), context)
    if problems:
        raise ConfigurationError(_summary(problems))
    return rendered


def _render(value: Any, path: tuple, context: dict[str, Any]) -> tuple[Any, list[tuple[str, str]]]:
    if isinstance(value, str):
        if not _looks_templated(value):
            return value, []
        budget = _REPLACED.set(0)
        try:
            text = ENVIRONMENT.from_string(value).render(context)
        except UndefinedError as exc:
            return value, [(_key(path), f"{exc.message}{_unset_hint(exc.message or '', context)}")]
        except (TemplateError, TemplateValueError) as exc:
            return value, [(_key(path), str(exc) or type(exc).__name__)]
        except (TypeError, ValueError, ArithmeticError) as exc:  # a filter given values it cannot take
            return value, [(_key(path), f"a filter failed: {exc}")]
        except RecursionError:
            return value, [(_key(path), "template is nested too deeply")]
        finally:
            _REPLACED.reset(budget)
        if len(text) > MAX_RENDERED_LENGTH:
            return value, [(_key(path), f"renders to more than {MAX_RENDERED_LENGTH} characters")]
        return text, []
    problems: list[tuple[str, str]] = []
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out[key], found = _render(item, (*path, key), context)
            problems.extend(found)
        return out, problems
    if isinstance(value, list):
        items = []
        for index, item in enumerate(value):
            rendered, found = _render(item, (*path, index), context)
            items.append(rendered)
            problems.extend(found)
        return items, problems
    return value, []


def _unset_hint(message: str, context: dict[str, Any]) -> str:
    missing = [name for name in VARIABLES if name not in context and f"'{name}'" in message]
    if missing:
        return " for this run (a run without a logical date has no ds, dates or data interval)"
    return ""


def values_from_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """The template values of an Airflow task context, as plain data (no Airflow import: duck-typed)."""
    values: dict[str, Any] = {}
    for name in ("ds", "ds_nodash"):
        if context.get(name):
            values[name] = str(context[name])
    for name in ("data_interval_start", "data_interval_end", "logical_date"):
        moment = context.get(name)
        if moment is not None:
            values[name] = moment.isoformat() if hasattr(moment, "isoformat") else str(moment)
    if context.get("run_id") is not None:
        values["run_id"] = str(context["run_id"])
    params = context.get("params")
    params = {} if params is None else params
    values["params"] = plain_json(params.dump() if hasattr(params, "dump") else dict(params))
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) if dag_run is not None else None
    values["conf"] = plain_json(conf if isinstance(conf, Mapping) else {})
    return values


def plain_json(value: Any) -> Any:
    """A JSON copy: only dicts, lists, strings, numbers, booleans and None (anything else becomes its text)."""
    return json.loads(json.dumps(value, default=str))


class _Located(dict):
    """A mapping of params or conf that knows its place (``conf.a``), so a missing key is reported by path."""

    where = ""


class _LocatedList(list):
    where = ""


def _located(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        mapping = _Located({key: _located(item, f"{where}.{key}") for key, item in value.items()})
        mapping.where = where
        return mapping
    if isinstance(value, list):
        items = _LocatedList(_located(item, f"{where}[{index}]") for index, item in enumerate(value))
        items.where = where
        return items
    return value


# ---------------------------------------------------------------- helpers


def _looks_templated(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def _strings(value: Any, path: tuple) -> Iterator[tuple[tuple, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _is_sql_key(step_type: str | None, path: tuple) -> bool:
    if step_type is None:
        patterns = [p for kind in SQL_KEYS.values() for p in kind]
    else:
        patterns = list(SQL_KEYS.get(step_type, ()))
    return any(
        len(pattern) == len(path)
        and all(want == "*" or want == str(part) for want, part in zip(pattern, path, strict=True))
        for pattern in patterns
    )


def _key(path: tuple) -> str:
    text = "config"
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _summary(problems: list[tuple[str, str]]) -> str:
    return "; ".join(f"{key}: {message}" for key, message in problems)


def _kind(value: Any) -> str:
    if isinstance(value, Undefined):
        return "an undefined value"
    for kind, name in ((dict, "mapping"), (list, "list"), (str, "text"), (bool, "boolean"), (int, "number")):
        if isinstance(value, kind):
            return name
    return "number" if isinstance(value, float) else type(value).__name__
