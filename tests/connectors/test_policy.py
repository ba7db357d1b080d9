"""OrganizationPolicy: superusers only, validated openings and roots, and the allowance connectors carry."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def root_user(db):
    from django_etl.core.models import User

    return User.objects.create_superuser("root", "root@example.com", "pw-root-123")


def test_policy_admin_is_a_superusers_only(client, user, organization):
    """An owner of the organization (``user``) neither sees nor changes its own boundary."""
    from django_etl.connectors.models import OrganizationPolicy

    policy = OrganizationPolicy.objects.create(organization=organization, allowed_networks=["10.0.0.0/8"])
    client.force_login(user)
    assert client.get(reverse("admin:connectors_organizationpolicy_changelist")).status_code == 403
    assert client.get(reverse("admin:connectors_organizationpolicy_add")).status_code == 403
    change = reverse("admin:connectors_organizationpolicy_change", args=[policy.pk])
    assert client.get(change).status_code == 404
    assert (
        client.post(
            change, {"organization": organization.pk, "allowed_networks": '["0.0.0.0/0"]'}
        ).status_code
        == 404
    )
    assert OrganizationPolicy.objects.get(pk=policy.pk).allowed_networks == ["10.0.0.0/8"]
    assert b"organization polic" not in client.get(reverse("admin:index")).content.lower()


def test_policy_admin_validates_for_the_superuser(client, root_user, organization, tmp_path):
    from django_etl.connectors.models import OrganizationPolicy

    client.force_login(root_user)
    add = reverse("admin:connectors_organizationpolicy_add")
    bad = client.post(
        add,
        {
            "organization": organization.pk,
            "allowed_networks": '["intranet.example.com"]',
            "file_roots": '["relative"]',
        },
    )
    assert bad.status_code == 200
    text = bad.content.decode()
    assert "&#x27;intranet.example.com&#x27; is not a network" in text and "is not an absolute folder" in text
    good = client.post(
        add,
        {
            "organization": organization.pk,
            "allowed_networks": '["10.20.0.0/16", "127.0.0.1:9000"]',
            "file_roots": f'["{tmp_path}"]',
        },
    )
    assert good.status_code == 302
    assert OrganizationPolicy.objects.get(organization=organization).file_roots == [str(tmp_path)]


def test_policy_roots_are_exclusive_and_apart_from_the_platform(
    organization, other_organization, tmp_path, settings
):
    from django_etl.connectors.models import OrganizationPolicy

    OrganizationPolicy.objects.create(organization=other_organization, file_roots=[str(tmp_path / "b")])
    around = OrganizationPolicy(organization=organization, file_roots=[str(tmp_path)])
    with pytest.raises(ValidationError, match="overlaps a folder assigned to another organization"):
        around.full_clean()
    settings.ETL_STAGING_URL = str(tmp_path / "a" / "staging")
    inside_staging = OrganizationPolicy(organization=organization, file_roots=[str(tmp_path / "a")])
    with pytest.raises(ValidationError, match="overlaps the staging folder"):
        inside_staging.full_clean()


def test_policy_allowance_carries_openings_roots_and_foreign_roots(
    organization, other_organization, tmp_path
):
    from django_etl.connectors.models import OrganizationPolicy

    OrganizationPolicy.objects.create(
        organization=organization, allowed_networks=["10.0.0.0/8"], file_roots=[str(tmp_path / "a")]
    )
    OrganizationPolicy.objects.create(organization=other_organization, file_roots=[str(tmp_path / "b")])
    ours = OrganizationPolicy.objects.allowance_for(organization.pk)
    assert ours.networks == ("10.0.0.0/8",) and ours.file_roots == (str(tmp_path / "a"),)
    assert ours.foreign_roots == (str(tmp_path / "b"),)
    nobody = OrganizationPolicy.objects.allowance_for(None)
    assert nobody.file_roots is None and set(nobody.foreign_roots) == {
        str(tmp_path / "a"),
        str(tmp_path / "b"),
    }


def test_policy_reaches_the_runtime_settings(file_connector, organization, tmp_path):
    from django_etl.connectors.models import OrganizationPolicy

    OrganizationPolicy.objects.create(organization=organization, file_roots=[str(tmp_path)])
    allowance = file_connector.runtime_settings()["allowance"]
    assert allowance["file_roots"] == [str(tmp_path)] and allowance["organization"] == str(organization.pk)
