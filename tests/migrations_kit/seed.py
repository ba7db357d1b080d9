"""Representative rows in every table of the platform and of the contrib apps it installs.

The hand-made rows are what the platform holds in use: an organization with members, connectors and a
credential, a pipeline with steps, runs with task runs in several monthly partitions (and one in the default
partition), alerts, lineage, sessions, admin log, groups and permissions. A table of a model added later that
is still empty gets one generic row (:func:`fill_empty_tables`), so the reversibility walk keeps covering
every table.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.apps import apps
from django.db import models
from django.utils import timezone


def seed_rows(alias: str) -> dict:
    """Create the rows in database ``alias``; returns the main objects by name."""
    from django.contrib.admin.models import ADDITION, LogEntry
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType
    from django.contrib.sessions.models import Session

    from django_etl.connectors.models import Connector, Credential
    from django_etl.core.models import Organization, OrganizationMembership, User
    from django_etl.lineage.models import DataLineage
    from django_etl.monitoring.models import Alert
    from django_etl.pipelines.models import Pipeline, PipelineStep
    from django_etl.runs.models import PipelineRun, TaskRun

    db = alias
    org = Organization(name="Acme", slug=f"acme-{uuid.uuid4().hex[:6]}", settings={"tz": "UTC"})
    other = Organization(name="Globex", slug=f"globex-{uuid.uuid4().hex[:6]}")
    Organization.objects.using(db).bulk_create([org, other])
    ada = User(username="ada", email="ada@example.com", password="md5$x$y")
    bob = User(username="bob", email="bob@example.com", password="md5$x$z")
    User.objects.using(db).bulk_create([ada, bob])
    OrganizationMembership.objects.using(db).bulk_create(
        [
            OrganizationMembership(user=ada, organization=org, role="owner"),
            OrganizationMembership(user=bob, organization=other, role="viewer"),
        ]
    )
    group = Group.objects.using(db).create(name="operators")
    permission = Permission.objects.using(db).order_by("pk").first()
    group.permissions.add(permission)
    ada.groups.add(group)
    ada.user_permissions.add(permission)

    credential = Credential(name="warehouse login", organization=org, encryption_key_id="dev")
    credential.encrypt_data({"user": "etl", "password": "s3cr3t-canary"})
    Credential.objects.using(db).bulk_create([credential])
    connector = Connector(
        name="warehouse",
        connector_type="database",
        organization=org,
        created_by=ada,
        config={"engine": "postgresql", "host": "127.0.0.1", "database": "warehouse"},
        credential=credential,
    )
    Connector.objects.using(db).bulk_create([connector])
    pipeline = Pipeline(
        name="Orders daily", organization=org, created_by=ada, status="active", config={"schedule": "@daily"}
    )
    Pipeline.objects.using(db).bulk_create([pipeline])
    extract = PipelineStep(
        pipeline=pipeline,
        name="extract",
        step_type="extract",
        order_index=1,
        config={"connector": "warehouse"},
    )
    load = PipelineStep(pipeline=pipeline, name="load", step_type="load", order_index=2, config={})
    PipelineStep.objects.using(db).bulk_create([extract, load])

    now = timezone.now()
    starts = [
        now,
        now - dt.timedelta(days=31),
        dt.datetime(2019, 3, 14, 12, tzinfo=dt.UTC),
    ]  # the last: default
    runs = [
        PipelineRun(
            pipeline=pipeline, triggered_by=ada, status=status, started_at=start, trigger_type="scheduled"
        )
        for start, status in zip(starts, ["running", "success", "failed"], strict=True)
    ]
    PipelineRun.objects.using(db).bulk_create(runs)
    task_runs = [
        TaskRun(pipeline_run=run, pipeline_step=step, status=run.status, started_at=run.started_at, logs="ok")
        for run in runs
        for step in (extract, load)
    ]
    TaskRun.objects.using(db).bulk_create(task_runs)
    Alert.objects.using(db).bulk_create(
        [
            Alert(
                pipeline_run=runs[2],
                task_run=task_runs[4],
                level="error",
                alert_type="task_failed",
                message="x",
            ),
            Alert(pipeline_run=runs[0], level="warning", alert_type="data_quality", message="y"),
        ]
    )
    DataLineage.objects.using(db).bulk_create(
        [DataLineage(source_task=task_runs[0], target_task=task_runs[1], relationship_type="direct")]
    )
    Session.objects.using(db).create(session_key=uuid.uuid4().hex, session_data="e30=", expire_date=now)
    LogEntry.objects.using(db).create(
        user_id=ada.pk,
        content_type=ContentType.objects.db_manager(db).get_for_model(Pipeline),
        object_id=str(pipeline.pk),
        object_repr=str(pipeline.name),
        action_flag=ADDITION,
    )
    fill_empty_tables(db)
    return {
        "organization": org,
        "user": ada,
        "pipeline": pipeline,
        "steps": [extract, load],
        "task_runs": task_runs,
    }


def fill_empty_tables(alias: str) -> None:
    """One row in each still-empty table of a concrete model, its fields filled with plain values."""
    pending = [model for model in apps.get_models(include_auto_created=True) if model._meta.managed]
    for _ in range(3):  # a model may need a row of another empty one first
        left = []
        for model in pending:
            manager = model._base_manager.using(alias)
            if manager.exists():
                continue
            values = plain_values(model, alias)
            if values is None:
                left.append(model)
                continue
            manager.bulk_create([model(**values)])
        pending = left
    if pending:
        names = ", ".join(model._meta.label for model in pending)
        raise AssertionError(f"no representative row for {names}: add one to tests/migrations_kit/seed.py")


def plain_values(model, alias: str) -> dict | None:
    values = {}
    for field in model._meta.concrete_fields:
        if (field.primary_key and field.has_default()) or isinstance(field, models.AutoField):
            continue
        if field.is_relation:
            target = field.related_model._base_manager.using(alias).order_by("pk").first()
            if target is None:
                if field.null:
                    continue
                return None
            values[field.name] = target
            continue
        if (
            field.has_default()
            or field.null
            or getattr(field, "auto_now", False)
            or getattr(field, "auto_now_add", False)
        ):
            continue
        values[field.name] = plain_value(field)
    return values


def plain_value(field):
    if field.choices:
        return field.choices[0][0]
    if isinstance(field, models.JSONField):
        return {}
    if isinstance(field, models.BooleanField):
        return False
    if isinstance(field, (models.IntegerField, models.DecimalField, models.FloatField)):
        return 1
    if isinstance(field, models.DateTimeField):
        return timezone.now()
    if isinstance(field, models.DateField):
        return dt.date.today()
    if isinstance(field, models.UUIDField):
        return uuid.uuid4()
    if isinstance(field, models.EmailField):
        return "seed@example.com"
    if isinstance(field, models.GenericIPAddressField):
        return "127.0.0.1"
    if isinstance(field, (models.CharField, models.TextField)):
        return f"seed-{uuid.uuid4().hex[:8]}"[: field.max_length or 40]
    if isinstance(field, models.BinaryField):
        return b"seed"
    if isinstance(field, models.DurationField):
        return dt.timedelta(seconds=1)
    raise AssertionError(f"{field.model._meta.label}.{field.name}: no plain value for {type(field).__name__}")
