"""The archived months' admin: platform operators (superusers) read it; organization members never see it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def archive():
    from django_etl.runs.models import PartitionArchive

    return PartitionArchive.objects.create(
        month=dt.date(2025, 1, 1),
        partition="task_runs_y2025m01",
        state="dropped",
        location="/var/etl/archives/task_runs_y2025m01",
        manifest={"files": {"task_runs.csv.gz": {"rows": 1200}}},
        summary={"pipeline_runs": 40},
    )


def test_archive_admin_is_read_only_for_a_superuser(client, archive):
    from django_etl.core.models import User

    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-root-123"))
    listing = client.get(reverse("admin:runs_partitionarchive_changelist"))
    assert listing.status_code == 200 and "task_runs_y2025m01" in listing.content.decode()
    page = client.get(reverse("admin:runs_partitionarchive_change", args=[archive.pk]))
    assert page.status_code == 200
    assert "task_runs.csv.gz" in page.content.decode()
    assert (
        client.post(
            reverse("admin:runs_partitionarchive_delete", args=[archive.pk]), {"post": "yes"}
        ).status_code
        == 403
    )


def test_archive_admin_is_closed_to_an_organization_owner(client, user, organization, archive):
    client.force_login(user)  # the owner of Acme: every role, no superuser flag
    assert client.get(reverse("admin:runs_partitionarchive_changelist")).status_code == 403
    assert client.get(reverse("admin:runs_partitionarchive_change", args=[archive.pk])).status_code == 403
    assert "partitionarchive" not in client.get(reverse("admin:index")).content.decode()
