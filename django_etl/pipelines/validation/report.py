"""A validation report: every problem found, each naming the object and the key it concerns."""

from __future__ import annotations

from dataclasses import dataclass, field


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
