"""The alert admin: rules only with one's own organization's connectors and pipelines; resolving by hand.

The role matrix and the leak walk over every admin page (tests/admin/) cover the rules and the delivery log
too; these are the cases particular to alerts.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def api_connector(user):
    from django_etl.connectors.models import Connector

    def make(organization, name="hooks"):
        return Connector.objects.create(
            name=name,
            connector_type="api",
            organization=organization,
            created_by=user,
            config={"base_url": "http://127.0.0.1:9/", "auth": "none"},
        )

    return make


def _rule_form(organization, **fields):
    data = {
        "organization": str(organization.pk),
        "name": "on call",
        "is_active": "on",
        "min_level": "error",
        "email_recipients": "ops@example.com",
        "webhook_path": "",
        "webhook_format": "json",
        "on_escalation": "on",
    }
    return {**data, **fields}


def test_rule_admin_refuses_another_organizations_connector_and_pipeline(
    client, user, organization, other_organization, api_connector, pipeline
):
    from django_etl.monitoring.models import AlertRule
    from django_etl.pipelines.models import Pipeline

    foreign_connector = api_connector(other_organization, name="their hooks")
    foreign_pipeline = Pipeline.objects.create(
        name="Theirs", organization=other_organization, created_by=user, config={"schedule": None}
    )
    client.force_login(user)  # owner of Acme only
    url = reverse("admin:monitoring_alertrule_add")
    response = client.post(
        url,
        _rule_form(
            organization, webhook_connector=str(foreign_connector.pk), pipelines=[str(foreign_pipeline.pk)]
        ),
    )
    assert response.status_code == 200  # the form again, with errors
    errors = response.context["adminform"].form.errors
    assert "webhook_connector" in errors and "pipelines" in errors
    response = client.post(url, _rule_form(other_organization))
    assert "organization" in response.context["adminform"].form.errors
    assert not AlertRule.objects.exists()

    response = client.post(
        url,
        _rule_form(
            organization, webhook_connector=str(api_connector(organization).pk), pipelines=[str(pipeline.pk)]
        ),
    )
    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert rule.organization == organization and list(rule.pipelines.all()) == [pipeline]


def test_rule_admin_form_reports_bad_recipients(client, user, organization):
    client.force_login(user)
    response = client.post(
        reverse("admin:monitoring_alertrule_add"),
        _rule_form(organization, email_recipients="ops@example.com\nnot an address"),
    )
    assert response.status_code == 200
    assert "is not an email address" in str(response.context["adminform"].form.errors)


def test_alert_admin_resolving_by_hand_records_who(client, user, organization):
    from django_etl.monitoring.lifecycle import raise_alert
    from django_etl.monitoring.models import Alert

    alert, _ = raise_alert(
        alert_type="task_failed",
        level="error",
        condition_key="task_failed:p:s",
        message="boom",
        organization_id=organization.pk,
    )
    client.force_login(user)
    response = client.post(
        reverse("admin:monitoring_alert_changelist"),
        {"action": "mark_resolved", "_selected_action": [str(alert.pk)]},
        follow=True,
    )
    assert "Resolved 1 alert(s)." in response.content.decode()
    alert = Alert.objects.get(pk=alert.pk)
    assert alert.is_resolved and alert.resolved_at is not None
    assert alert.metadata["resolution"] == {**alert.metadata["resolution"], "how": "by_hand", "by": "ada"}
    # Resolved, the condition may open a new alert; the one resolved stays as it was.
    new, created = raise_alert(
        alert_type="task_failed",
        level="error",
        condition_key="task_failed:p:s",
        message="boom again",
        organization_id=organization.pk,
    )
    assert created and new.pk != alert.pk


def test_alert_admin_lists_by_last_seen_with_occurrences(client, user, organization):
    from django_etl.monitoring.lifecycle import raise_alert

    for event in ("one", "two", "three"):
        raise_alert(
            alert_type="task_failed",
            level="error",
            condition_key="task_failed:p:s",
            message=f"failed {event}",
            metadata={"event_key": event},
            organization_id=organization.pk,
        )
    client.force_login(user)
    page = client.get(reverse("admin:monitoring_alert_changelist"))
    assert page.status_code == 200
    row = page.context["cl"].result_list[0]
    assert row.occurrences == 3 and row.message == "failed three"
    assert "-last_seen_at" in page.context["cl"].get_ordering(page.wsgi_request, page.context["cl"].queryset)


def test_delivery_admin_sends_a_failed_delivery_again_for_admins_only(client, user, organization):
    from django_etl.core.models import MembershipRole, OrganizationMembership, User
    from django_etl.monitoring.lifecycle import raise_alert
    from django_etl.monitoring.models import AlertDelivery, AlertRule

    AlertRule.objects.create(organization=organization, name="ops", email_recipients="ops@example.com")
    alert, _ = raise_alert(
        alert_type="task_failed",
        level="error",
        condition_key="k",
        message="m",
        organization_id=organization.pk,
    )
    delivery = alert.deliveries.get()
    AlertDelivery.objects.filter(pk=delivery.pk).update(status="failed", attempts=8, last_error="refused")
    url = reverse("admin:monitoring_alertdelivery_changelist")
    form = {"action": "send_again", "_selected_action": [str(delivery.pk)]}

    editor = User.objects.create_user("eve", "eve@example.com", "pw-eve-123")
    OrganizationMembership.objects.create(user=editor, organization=organization, role=MembershipRole.EDITOR)
    client.force_login(editor)
    client.post(url, form, follow=True)
    assert AlertDelivery.objects.get(pk=delivery.pk).status == "failed"  # the action is not theirs

    client.force_login(user)  # the owner
    response = client.post(url, form, follow=True)
    assert "Queued 1 delivery(ies) again" in response.content.decode()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
