"""The audit trail: who changed what, field by field, on the audited models; secrets only as "secret changed"."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, user, organization):
    client.force_login(user)  # ada, owner of Acme
    return client


def test_history_records_admin_change_field_by_field_with_its_author(
    signed_in, user, organization, credential
):
    from django_etl.audit import queries

    url = reverse("admin:connectors_credential_change", args=[credential.pk])
    form = {
        "name": "warehouse login v2",
        "organization": str(organization.pk),
        "secret": "",
        "expires_at": "",
    }
    response = signed_in.post(url, form)
    assert response.status_code == 302, response.content[:3000]
    latest = queries.versions(credential).first()
    assert latest.history_type == "~" and latest.history_user_id == user.pk
    assert [(c.field, c.old, c.new) for c in queries.changes(latest)] == [
        ("name", "warehouse login", "warehouse login v2")
    ]
    assert latest.secret_changed is False  # an empty secret keeps the stored one

    form["secret"] = '{"user": "etl", "password": "fresh-s3cr3t-value"}'
    assert signed_in.post(url, form).status_code == 302
    assert queries.versions(credential).first().secret_changed is True


def test_history_is_queryable_per_organization(organization, other_organization, pipeline):
    from django_etl.pipelines.models import Pipeline

    original = pipeline.name
    pipeline.name = "Renamed"
    pipeline.save()
    rows = Pipeline.history.filter(organization=organization).order_by("history_id")
    assert list(rows.values_list("name", "history_type")) == [(original, "+"), ("Renamed", "~")]
    assert not Pipeline.history.filter(organization=other_organization).exists()


def test_credential_history_records_secret_change_never_the_ciphertext(credential):
    from django_etl.connectors.models import Credential

    credential.name = "warehouse login v2"
    credential.save()
    credential.encrypt_data({"user": "etl", "password": "n3w-s3cr3t-canary"})
    credential.save()
    created, renamed, resecreted = Credential.history.filter(id=credential.pk).order_by("history_id")
    assert (created.secret_changed, renamed.secret_changed, resecreted.secret_changed) == (True, False, True)
    columns = {f.name for f in Credential.history.model._meta.fields}
    assert "encrypted_data" not in columns and "secret_changed" in columns
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM audit_credential_history")
        dump = repr(cursor.fetchall())
    assert "gAAAA" not in dump  # no Fernet token at all (every token starts with it)


def test_rotate_credentials_adds_no_history(credential, settings):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    from django_etl.connectors.keyring import get_keyring
    from django_etl.connectors.models import Credential

    before = Credential.history.count()
    settings.ETL_CREDENTIAL_KEYS = f"{settings.ETL_CREDENTIAL_KEYS},next:{Fernet.generate_key().decode()}"
    settings.ETL_CREDENTIAL_CURRENT_KEY = "next"
    get_keyring.cache_clear()
    try:
        call_command("rotate_credentials", verbosity=0)
        credential.refresh_from_db()
        assert credential.encryption_key_id == "next"
        assert credential.decrypt_data()["password"] == "s3cr3t-canary"
    finally:
        get_keyring.cache_clear()
    assert Credential.history.count() == before  # history holds nothing a retired key encrypted


def test_history_page_shows_changes_and_secret_flag(signed_in, credential):
    credential.encrypt_data({"user": "etl", "password": "another-s3cr3t"})
    credential.save()
    history = signed_in.get(reverse("admin:connectors_credential_history", args=[credential.pk]))
    assert history.status_code == 200
    assert b"secret changed" in history.content and b"another-s3cr3t" not in history.content
    record = credential.history.order_by("-history_id").first()
    version = signed_in.get(
        reverse("admin:connectors_credential_simple_history", args=[credential.pk, record.history_id])
    )
    assert version.status_code == 200
    assert b"The secret changed" in version.content and b"gAAAA" not in version.content


def test_history_of_another_organizations_object_is_404(signed_in, other_organization):
    from django_etl.core.models import Organization

    record = Organization.history.filter(id=other_organization.pk).first()
    assert record is not None
    assert (
        signed_in.get(reverse("admin:core_organization_history", args=[other_organization.pk])).status_code
        == 404
    )
    version = reverse(
        "admin:core_organization_simple_history", args=[other_organization.pk, record.history_id]
    )
    assert signed_in.get(version).status_code == 404


def test_history_version_of_another_object_is_404(signed_in, organization, other_organization):
    from django_etl.core.models import Organization

    foreign = Organization.history.filter(id=other_organization.pk).first()
    url = reverse("admin:core_organization_simple_history", args=[organization.pk, foreign.history_id])
    assert signed_in.get(url).status_code == 404
    assert (
        signed_in.get(
            reverse("admin:core_organization_simple_history", args=[organization.pk, "x"])
        ).status_code
        == 404
    )


def test_viewer_sees_no_credential_history(client, organization, credential):
    from django_etl.core.models import OrganizationMembership, User

    viewer = User.objects.create_user(username="vic", password="pw-vic-123")
    OrganizationMembership.objects.create(user=viewer, organization=organization, role="viewer")
    client.force_login(viewer)
    assert client.get(reverse("admin:connectors_credential_history", args=[credential.pk])).status_code in (
        403,
        404,
    )


def test_task_runs_and_pipeline_runs_have_no_history():
    from django_etl.runs.models import PipelineRun, TaskRun

    assert not hasattr(TaskRun, "history") and not hasattr(PipelineRun, "history")
    tables = connection.introspection.table_names()
    assert not [t for t in tables if "history" in t and ("task" in t and "run" in t)]
