"""Test connection and sample-row preview: the probe functions and the two connector admin actions."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from django_etl.connectors import probe
from tests.support.servers import PG_PASSWORD

pytestmark = pytest.mark.integration


@pytest.fixture
def warehouse(pg_target, organization, user):
    from django_etl.connectors.models import Connector, Credential

    runtime, conn = pg_target
    conn.execute("CREATE TABLE customers (id int, name text)")
    conn.execute("INSERT INTO customers VALUES (1, 'Ada'), (2, 'Bob')")
    credential = Credential.objects.create_encrypted(
        name="wh",
        organization=organization,
        data={"user": runtime["secret"]["user"], "password": PG_PASSWORD},
    )
    return Connector.objects.create(
        name="warehouse",
        connector_type="database",
        organization=organization,
        created_by=user,
        config=runtime["config"],
        credential=credential,
    )


@pytest.fixture
def ghost(warehouse, organization, user):
    from django_etl.connectors.models import Connector, Credential

    credential = Credential.objects.create_encrypted(
        name="ghost", organization=organization, data={"user": "ghost_role", "password": PG_PASSWORD}
    )
    return Connector.objects.create(
        name="ghost",
        connector_type="database",
        organization=organization,
        created_by=user,
        config=warehouse.config,
        credential=credential,
    )


def test_probe_test_connection_reports_success(warehouse):
    result = probe.test_connection(warehouse)
    assert result.ok and result.message.startswith("warehouse: connected to PostgreSQL")


def test_probe_test_connection_reports_precise_failure_without_secret(ghost):
    result = probe.test_connection(ghost)
    assert not result.ok
    assert 'role "ghost_role" does not exist' in result.message and PG_PASSWORD not in result.message


def test_probe_preview_returns_sample_rows(warehouse):
    result = probe.preview(warehouse, limit=5)
    assert result.ok and result.columns == ["id", "name"] and result.rows == [["1", "Ada"], ["2", "Bob"]]


def test_probe_preview_file_connector(file_connector, tmp_path):
    (tmp_path / "people.csv").write_text("id,name\n7,Cy\n")
    assert probe.preview(file_connector).rows == [["7", "Cy"]]


@pytest.fixture
def admin(client, user):
    user.is_staff = user.is_superuser = True
    user.save()
    client.force_login(user)
    return client


def act(client, action, connectors):
    return client.post(
        reverse("admin:connectors_connector_changelist"),
        {"action": action, "_selected_action": [str(c.pk) for c in connectors]},
        follow=True,
    )


def test_admin_test_connection_action_reports_each_connector(admin, warehouse, ghost):
    response = act(admin, "test_connection", [warehouse, ghost])
    texts = sorted(str(m) for m in get_messages(response.wsgi_request))
    assert texts[0].startswith("Failed: connector 'ghost': cannot connect") and texts[1].startswith(
        "warehouse: connected"
    )
    assert PG_PASSWORD not in response.content.decode()


def test_admin_preview_action_renders_rows(admin, warehouse):
    response = act(admin, "preview_sample_rows", [warehouse])
    page = response.content.decode()
    assert response.status_code == 200 and "Sample rows of warehouse" in page
    assert "<td>Ada</td>" in page and PG_PASSWORD not in page


def test_admin_preview_action_needs_one_connector(admin, warehouse, ghost):
    response = act(admin, "preview_sample_rows", [warehouse, ghost])
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Select exactly one connector to preview."
    ]
