"""Before migrating: count and sample the existing rows that a pending constraint would reject.

A migration that adds a constraint fails on the first row that breaks it — after the earlier operations of the
run, and with its table locked while PostgreSQL scans. This walks the pending plan's model states, operation
by operation, and for each one that adds a rule on existing rows asks the database how many rows break it:

- ``AddConstraint`` of a ``CheckConstraint`` (the constraint's own SQL, so NULL counts as PostgreSQL counts it)
  or of a ``UniqueConstraint`` over fields (rows sharing a value, its condition and ``nulls_distinct`` honoured);
- ``AlterUniqueTogether`` (the new field sets);
- ``AlterField`` to NOT NULL without a default, to ``unique``, or to a shorter ``max_length``;
- ``AddField`` of a ``unique`` field with a default on a table that has rows (they would all get that one value).

Rules on tables that a pending migration creates (empty) are skipped; what cannot be checked before migrating
(a column a pending migration adds, a constraint over expressions, ``RunSQL``) is listed as a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import DatabaseError, models, transaction
from django.db.migrations import operations as ops
from django.db.migrations.executor import MigrationExecutor
from django.db.models.functions import Length

from django_etl.errors import first_line
from django_etl.migrations_kit.plan import label

SAMPLE_SIZE = 5
VALUE_CHARS = 60


@dataclass
class Violation:
    migration: str
    rule: str
    table: str
    count: int
    sample: list[dict] = field(default_factory=list)

    def describe(self) -> str:
        lines = [f"  {self.migration}: {self.rule} on {self.table} — {self.count} row(s) break it, e.g."]
        lines += [
            "      " + ", ".join(f"{key}={shorten(value)}" for key, value in row.items())
            for row in self.sample
        ]
        return "\n".join(lines)


@dataclass
class PrecheckReport:
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: int = 0  # rules checked against existing rows

    def describe(self) -> str:
        lines = [violation.describe() for violation in self.violations]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def shorten(value) -> str:
    """A sampled value as an operator reads it: text quoted (an empty one shows), NULL, or the value as text."""
    text = repr(value) if isinstance(value, str) else "NULL" if value is None else str(value)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 3] + "..."


def check_plan(connection, plan, *, sample_size: int = SAMPLE_SIZE) -> PrecheckReport:
    """Walk ``plan`` ([(migration, backwards)]) from the database's current state; report what would break."""
    report = PrecheckReport()
    if not plan:
        return report
    executor = MigrationExecutor(connection)
    state = executor._create_project_state(with_applied_migrations=True)
    existing = set(connection.introspection.table_names())
    checker = Checker(connection, existing, report, sample_size)
    for migration, backwards in plan:
        if backwards:
            report.notes.append(f"{label(migration, True)}: unapplying is not checked")
            continue
        for operation in migration.operations:
            # The model class from before the operation stays usable after the state moves on.
            model = checker.model_before(migration.app_label, operation, state)
            operation.state_forwards(migration.app_label, state)
            if model is not None:
                checker.check(label(migration), migration.app_label, operation, model, state)
            elif isinstance(operation, (ops.RunSQL, ops.SeparateDatabaseAndState)):
                report.notes.append(f"{label(migration)}: {operation.describe()} is not checked (raw SQL)")
    return report


class Checker:
    def __init__(
        self, connection, existing_tables: set[str], report: PrecheckReport, sample_size: int
    ) -> None:
        self.connection = connection
        self.existing = existing_tables
        self.report = report
        self.sample_size = sample_size

    def model_before(self, app_label: str, operation, state):
        """The model an operation that is checked applies to, if its table exists and is ours to migrate."""
        if isinstance(operation, (ops.AddConstraint, ops.AlterField, ops.AddField)):
            model_name = operation.model_name
        elif isinstance(operation, ops.AlterUniqueTogether):
            model_name = operation.name
        else:
            return None
        try:
            model = state.apps.get_model(app_label, model_name)
        except LookupError:
            return None
        if model._meta.db_table not in self.existing:
            return None  # created by a pending migration: no rows yet
        if not operation.allow_migrate_model(self.connection.alias, model):
            return None
        return model

    def check(self, migration: str, app_label: str, operation, model, after) -> None:
        if isinstance(operation, ops.AddConstraint):
            self.constraint(migration, model, operation.constraint)
        elif isinstance(operation, ops.AlterUniqueTogether):
            old = {tuple(fields) for fields in model._meta.unique_together}
            for fields in sorted(set(operation.option_value or ()) - old):
                self.duplicates(migration, model, list(fields), f"unique together {', '.join(fields)}")
        elif isinstance(operation, ops.AlterField):
            new_model = after.apps.get_model(app_label, operation.model_name)
            self.altered_field(migration, model, new_model, operation.name)
        elif isinstance(operation, ops.AddField):
            self.added_unique_field(migration, model, operation.field, operation.name)

    def constraint(self, migration: str, model, constraint) -> None:
        if isinstance(constraint, models.CheckConstraint):
            self.check_constraint(migration, model, constraint)
        elif (
            isinstance(constraint, models.UniqueConstraint)
            and constraint.fields
            and not constraint.expressions
        ):
            self.duplicates(
                migration,
                model,
                list(constraint.fields),
                f"unique constraint {constraint.name}",
                condition=constraint.condition,
                nulls_distinct=constraint.nulls_distinct is not False,
            )
        else:
            self.report.notes.append(f"{migration}: {constraint.name} is not checked (expressions)")

    def check_constraint(self, migration: str, model, constraint) -> None:
        editor = self.connection.schema_editor(collect_sql=True)
        check_sql = constraint._get_check_sql(
            model, editor
        )  # the SQL PostgreSQL will check, NULL rules included
        qn = self.connection.ops.quote_name
        table = qn(model._meta.db_table)
        columns = [model._meta.pk.column] + [
            model._meta.get_field(name).column
            for name in sorted(constraint.condition.referenced_base_fields)
            if name != "pk" and name != model._meta.pk.name
        ]
        where = f"NOT ({check_sql})"
        rows = self.query(
            migration,
            f"check constraint {constraint.name}",
            f"SELECT {', '.join(qn(column) for column in columns)} FROM {table} WHERE {where} "
            f"ORDER BY 1 LIMIT {self.sample_size}",
            f"SELECT COUNT(*) FROM {table} WHERE {where}",
        )
        if rows is not None:
            count, sample = rows
            self.found(
                migration,
                f"check constraint {constraint.name}",
                model,
                count,
                [dict(zip(columns, row, strict=True)) for row in sample],
            )

    def duplicates(
        self, migration: str, model, fields: list[str], rule: str, *, condition=None, nulls_distinct=True
    ):
        queryset = model._default_manager.using(self.connection.alias).all()
        if condition is not None:
            queryset = queryset.filter(condition)
        if nulls_distinct:
            queryset = queryset.filter(**{f"{name}__isnull": False for name in fields})
        groups = (
            queryset.values(*fields)
            .annotate(rows=models.Count("pk"))
            .filter(rows__gt=1)
            .order_by("-rows", *fields)
        )
        result = self.run(
            migration,
            rule,
            lambda: (groups.aggregate(n=models.Sum("rows"))["n"] or 0, list(groups[: self.sample_size])),
        )
        if result is not None:
            count, sample = result
            self.found(migration, rule, model, count, sample)

    def altered_field(self, migration: str, model, new_model, name: str) -> None:
        old, new = model._meta.get_field(name), new_model._meta.get_field(name)
        if old.null and not new.null and not has_default(new):
            queryset = model._default_manager.using(self.connection.alias).filter(**{f"{name}__isnull": True})
            self.rows(migration, f"{name} NOT NULL", model, queryset, [name])
        if not old.unique and new.unique and not new.primary_key:
            self.duplicates(migration, model, [name], f"{name} unique")
        old_length, new_length = getattr(old, "max_length", None), getattr(new, "max_length", None)
        if old_length and new_length and new_length < old_length:
            queryset = (
                model._default_manager.using(self.connection.alias)
                .annotate(etl_length=Length(name))
                .filter(etl_length__gt=new_length)
            )
            self.rows(migration, f"{name} max_length {new_length}", model, queryset, [name])

    def added_unique_field(self, migration: str, model, new_field, name: str) -> None:
        if not new_field.unique or new_field.primary_key or (new_field.null and not has_default(new_field)):
            return
        queryset = model._default_manager.using(self.connection.alias).all()
        result = self.run(migration, f"{name} unique (new field)", queryset.count)
        if result is not None and result > 1:
            self.report.violations.append(
                Violation(
                    migration,
                    f"new unique field {name} (every existing row gets the same default)",
                    model._meta.db_table,
                    result,
                )
            )

    def rows(self, migration: str, rule: str, model, queryset, fields: list[str]) -> None:
        pk = model._meta.pk.name
        result = self.run(
            migration,
            rule,
            lambda: (queryset.count(), list(queryset.order_by(pk).values(pk, *fields)[: self.sample_size])),
        )
        if result is not None:
            self.found(migration, rule, model, *result)

    def query(self, migration: str, rule: str, sample_sql: str, count_sql: str):
        def ask():
            with self.connection.cursor() as cursor:
                cursor.execute(count_sql)
                count = cursor.fetchone()[0]
                cursor.execute(sample_sql)
                return count, cursor.fetchall()

        return self.run(migration, rule, ask)

    def run(self, migration: str, rule: str, ask):
        """Ask in a savepoint: a rule on a column a pending migration adds fails here, and becomes a note."""
        self.report.checked += 1
        try:
            with transaction.atomic(using=self.connection.alias):
                return ask()
        except DatabaseError as exc:
            self.report.notes.append(
                f"{migration}: {rule} could not be checked before migrating ({first_line(exc)})"
            )
            return None

    def found(self, migration: str, rule: str, model, count: int, sample: list[dict]) -> None:
        if count:
            self.report.violations.append(Violation(migration, rule, model._meta.db_table, count, sample))


def has_default(field) -> bool:
    return field.has_default() or field.db_default is not models.NOT_PROVIDED
