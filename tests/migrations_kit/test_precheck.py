"""The pre-check counts and samples the existing rows a pending constraint would reject, before any change."""

from __future__ import annotations

import pytest
from django.db import migrations, models

from django_etl.migrations_kit import precheck
from tests.migrations_kit.seed import seed_rows

pytestmark = pytest.mark.integration


def pending(app_label: str, *operations) -> list:
    migration = migrations.Migration("9001_pending", app_label)
    migration.operations = list(operations)
    return [(migration, False)]


def orgs(alias: str, *names: str) -> None:
    from django_etl.core.models import Organization

    Organization.objects.using(alias).bulk_create(
        [Organization(name=name, slug=f"{name.lower()}-{n}") for n, name in enumerate(names)]
    )


def test_precheck_counts_duplicates_of_a_new_unique_constraint(scratch):
    orgs(scratch.alias, "Acme", "Acme", "Acme", "Globex", "Initech", "Initech")
    plan = pending(
        "core",
        migrations.AddConstraint(
            "organization", models.UniqueConstraint(fields=["name"], name="unique_organization_name")
        ),
    )
    report = precheck.check_plan(scratch, plan)
    [violation] = report.violations
    assert (violation.migration, violation.table, violation.count) == (
        "core.9001_pending",
        "organizations",
        5,
    )
    assert violation.sample == [{"name": "Acme", "rows": 3}, {"name": "Initech", "rows": 2}]
    assert "unique constraint unique_organization_name on organizations — 5 row(s)" in report.describe()


def test_precheck_honours_the_condition_of_a_partial_unique_constraint(scratch):
    orgs(scratch.alias, "Acme", "Acme", "Globex", "Globex")
    constraint = models.UniqueConstraint(
        fields=["name"], condition=models.Q(name="Globex"), name="unique_globex"
    )
    report = precheck.check_plan(
        scratch, pending("core", migrations.AddConstraint("organization", constraint))
    )
    assert [(v.count, v.sample) for v in report.violations] == [(2, [{"name": "Globex", "rows": 2}])]


def test_precheck_counts_rows_a_check_constraint_rejects_as_postgresql_would(scratch):
    seeded = seed_rows(scratch.alias)
    from django_etl.runs.models import TaskRun

    TaskRun.objects.using(scratch.alias).filter(pk=seeded["task_runs"][0].pk).update(retry_count=7)
    TaskRun.objects.using(scratch.alias).filter(pk=seeded["task_runs"][1].pk).update(started_at=None)
    constraint = models.CheckConstraint(
        condition=models.Q(retry_count__lt=5) & models.Q(started_at__isnull=False) | models.Q(logs="ok"),
        name="few_retries",
    )
    report = precheck.check_plan(scratch, pending("runs", migrations.AddConstraint("taskrun", constraint)))
    assert report.violations == []  # every seeded task run has logs "ok"

    TaskRun.objects.using(scratch.alias).filter(pk=seeded["task_runs"][0].pk).update(logs="")
    report = precheck.check_plan(scratch, pending("runs", migrations.AddConstraint("taskrun", constraint)))
    [violation] = report.violations
    assert violation.count == 1
    assert violation.sample[0]["id"] == seeded["task_runs"][0].pk
    assert violation.sample[0]["retry_count"] == 7


def test_precheck_finds_nulls_long_values_and_a_unique_field_added_with_one_default(scratch):
    orgs(scratch.alias, "Acme", "Globex Corporation")
    plan = pending(
        "core",
        migrations.AlterField("user", "last_login_ip", models.GenericIPAddressField(null=False)),
        migrations.AlterField("organization", "name", models.CharField(max_length=6)),
        migrations.AddField("organization", "code", models.CharField(max_length=8, default="x", unique=True)),
    )
    from django_etl.core.models import User

    User.objects.using(scratch.alias).create(username="nobody", last_login_ip=None)
    report = precheck.check_plan(scratch, plan)
    rules = {violation.rule: violation for violation in report.violations}
    assert rules["last_login_ip NOT NULL"].count == 1
    assert rules["name max_length 6"].sample == [
        {"id": rules["name max_length 6"].sample[0]["id"], "name": "Globex Corporation"}
    ]
    assert rules["new unique field code (every existing row gets the same default)"].count == 2


def test_precheck_skips_tables_a_pending_migration_creates_and_notes_what_it_cannot_check(scratch):
    plan = pending(
        "core",
        migrations.CreateModel(
            "Fresh", [("id", models.AutoField(primary_key=True)), ("n", models.IntegerField())]
        ),
        migrations.AddConstraint(
            "fresh", models.CheckConstraint(condition=models.Q(n__gt=0), name="n_positive")
        ),
        migrations.RunSQL("SELECT 1"),
        migrations.AddField("organization", "rank", models.IntegerField(default=0)),
        migrations.AddConstraint(
            "organization", models.CheckConstraint(condition=models.Q(rank__gte=0), name="rank_positive")
        ),
    )
    report = precheck.check_plan(scratch, plan)
    assert report.violations == []
    assert any("RunSQL" in note or "Raw SQL" in note for note in report.notes), report.notes
    assert any("rank_positive could not be checked before migrating" in note for note in report.notes), (
        report.notes
    )
