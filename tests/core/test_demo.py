"""load_demo creates a usable demo organization and can run again without duplicating anything."""

from __future__ import annotations

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_load_demo_is_idempotent(settings, tmp_path):
    from django_etl.connectors.models import Connector
    from django_etl.pipelines.models import Pipeline, PipelineStep
    from django_etl.pipelines.validation import validate_pipeline

    settings.VAR_DIR = tmp_path
    settings.ETL_FILE_ROOTS = [str(settings.BASE_DIR / "demo_data"), str(tmp_path / "exports")]
    call_command("load_demo", verbosity=0)
    counts = (Pipeline.objects.count(), PipelineStep.objects.count(), Connector.objects.count())
    versions = sorted(Pipeline.objects.values_list("version", flat=True))
    call_command("load_demo", verbosity=0)
    assert (Pipeline.objects.count(), PipelineStep.objects.count(), Connector.objects.count()) == counts
    assert sorted(Pipeline.objects.values_list("version", flat=True)) == versions

    active = Pipeline.objects.filter(status="active")
    assert active.count() >= 2
    used_types = set(PipelineStep.objects.filter(pipeline__in=active).values_list("step_type", flat=True))
    assert used_types == {"extract", "transform", "load", "validate", "notify"}
    for pipeline in active:
        assert not validate_pipeline(pipeline), str(validate_pipeline(pipeline))
    assert (tmp_path / "demo" / "crm.sqlite3").exists()


def test_demo_analyst_signs_in_and_only_looks(client, settings, tmp_path):
    """The demo's read-only analyst (a viewer) sees the pipelines and changes nothing: the role is the permission."""
    from django.urls import reverse

    from django_etl.core.demo import DEMO_ANALYST
    from django_etl.pipelines.models import Pipeline

    settings.VAR_DIR = tmp_path
    settings.ETL_FILE_ROOTS = [str(settings.BASE_DIR / "demo_data"), str(tmp_path / "exports")]
    settings.DEBUG = True  # the development demo: the well-known passwords
    call_command("load_demo", verbosity=0)
    username, password = DEMO_ANALYST
    # A real sign-in through the login page (django-axes needs the request to count failures).
    response = client.post(reverse("admin:login"), {"username": username, "password": password})
    assert response.status_code == 302, response.content[:500]
    assert client.get(reverse("admin:pipelines_pipeline_changelist")).status_code == 200
    pipeline = Pipeline.objects.filter(status="active").first()
    page = client.get(reverse("admin:pipelines_pipeline_change", args=[pipeline.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.get(reverse("admin:connectors_credential_changelist")).status_code == 403


def test_load_demo_without_debug_generates_passwords_shown_once(settings, tmp_path):
    """With DJANGO_DEBUG off no demo user keeps a well-known password: a generated one, printed once."""
    from io import StringIO

    from django_etl.core.demo import DEMO_ADMIN, DEMO_ANALYST
    from django_etl.core.models import User

    settings.DEBUG = False
    settings.VAR_DIR = tmp_path
    settings.ETL_FILE_ROOTS = [str(settings.BASE_DIR / "demo_data"), str(tmp_path / "exports")]
    first = StringIO()
    call_command("load_demo", stdout=first)
    admin = User.objects.get(username=DEMO_ADMIN[0])
    assert not admin.check_password(DEMO_ADMIN[1])
    assert not User.objects.get(username=DEMO_ANALYST[0]).check_password(DEMO_ANALYST[1])
    assert "admin / admin" not in first.getvalue()
    [line] = [line for line in first.getvalue().splitlines() if "generated password for admin:" in line]
    assert admin.check_password(line.split("admin: ")[1].split()[0])
    again = StringIO()
    call_command("load_demo", stdout=again)
    assert "generated password" not in again.getvalue()
    assert User.objects.get(username=DEMO_ADMIN[0]).password == admin.password  # kept, not reset


def test_load_demo_without_debug_replaces_a_well_known_password(settings, tmp_path):
    from django_etl.core.demo import DEMO_ADMIN
    from django_etl.core.models import User

    User.objects.create_user(username=DEMO_ADMIN[0], password=DEMO_ADMIN[1])
    settings.DEBUG = False
    settings.VAR_DIR = tmp_path
    settings.ETL_FILE_ROOTS = [str(settings.BASE_DIR / "demo_data"), str(tmp_path / "exports")]
    call_command("load_demo", verbosity=0)
    assert not User.objects.get(username=DEMO_ADMIN[0]).check_password(DEMO_ADMIN[1])
