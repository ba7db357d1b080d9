"""A validation report: every problem found, each naming the object and the key it concerns.

Neutral ground for the validation of connectors (``connectors.validation``) and of pipelines
(``pipelines.validation``): neither imports the other for it. No Django import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError as PydanticError


@dataclass(frozen=True)
class Problem:
    where: str  # "pipeline 'Orders' step 'load orders'"
    key: str  # "config.mode", "dependencies[1]", "" for the object itself
    message: str
    field: str = "__all__"  # the model field a form should show it on

    def __str__(self) -> str:
        key = f" {self.key}" if self.key else ""
        return f"{self.where}{key}: {self.message}"


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)

    def add(self, where: str, key: str, message: str, *, field: str = "__all__") -> None:
        self.problems.append(Problem(where, key, message, field))

    def extend(self, other: Report) -> None:
        self.problems.extend(other.problems)

    def __bool__(self) -> bool:
        return bool(self.problems)

    def __iter__(self):
        return iter(self.problems)

    def __len__(self) -> int:
        return len(self.problems)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)

    def as_django_dict(self) -> dict[str, list[str]]:
        """Errors keyed by model field, as ValidationError and admin forms expect."""
        errors: dict[str, list[str]] = {}
        for problem in self.problems:
            errors.setdefault(problem.field, []).append(str(problem))
        return errors


def _loc(prefix: str, loc: Sequence[Any]) -> str:
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not str(part).startswith(("function-", "tagged-union")):
            text += f".{part}"
    return text


def check_schema(
    report: Report,
    schema: Any,
    data: Any,
    where: str,
    key: str,
    field: str,
    *,
    union_tags: frozenset[str] = frozenset(),
) -> Any:
    """Validate ``data`` against a pydantic model (or a function parsing with one), adding one problem per
    error; the parsed value or None. ``union_tags``: tags of tagged unions, left out of error locations.
    """
    if not isinstance(data, dict):
        report.add(where, key, f"must be a JSON object, not {type(data).__name__}", field=field)
        return None
    parse: Callable[[Any], Any] = getattr(schema, "model_validate", schema)
    try:
        return parse(data)
    except PydanticError as exc:
        for error in exc.errors(include_url=False):
            # Discriminated unions add the tag to the location: drop it, the index already names the item.
            loc = [p for p in error["loc"] if not (isinstance(p, str) and p in union_tags)]
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            report.add(where, _loc(key, loc), message, field=field)
        return None
