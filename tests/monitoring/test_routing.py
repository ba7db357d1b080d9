"""Alert routing: rules queue deliveries in the outbox; the drain sends them to a real SMTP sink and webhook.

Receivers are real loopback servers (tests/support/receivers.py); the network policy is the real one.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.support.receivers import SmtpSink, WebhookReceiver, smtp_sink, webhook_receiver  # noqa: F401
from tests.support.servers import free_port

pytestmark = pytest.mark.django_db

HOOK_TOKEN = "hook-token-canary-7f3e"


@pytest.fixture
def hook_connector(organization, user):
    from django_etl.connectors.models import Connector, Credential

    def make(base_url: str, name: str = "hooks", org=None, max_retries: int = 0):
        org = org or organization
        credential = Credential.objects.create_encrypted(
            name=f"{name} token", organization=org, data={"token": HOOK_TOKEN}
        )
        return Connector.objects.create(
            name=name,
            connector_type="api",
            organization=org,
            created_by=user,
            credential=credential,
            config={"base_url": base_url, "auth": "bearer", "max_retries": max_retries, "timeout_seconds": 2},
        )

    return make


@pytest.fixture
def rule(organization):
    from django_etl.monitoring.models import AlertRule

    def make(**fields):
        defaults = {
            "organization": organization,
            "name": f"rule {AlertRule.objects.count()}",
            "min_level": "warning",
        }
        return AlertRule.objects.create(**{**defaults, **fields})

    return make


def _raise(organization, key="task_failed:p:s", level="error", alert_type="task_failed", event="e1", **extra):
    from django_etl.monitoring.lifecycle import raise_alert

    alert, _ = raise_alert(
        alert_type=alert_type,
        level=level,
        condition_key=key,
        message=f"Step 'clean' failed ({event})",
        metadata={"event_key": event},
        organization_id=organization.pk,
        **extra,
    )
    return alert


def _deliveries():
    from django_etl.monitoring.models import AlertDelivery

    return list(AlertDelivery.objects.order_by("created_at", "channel"))


def test_deliver_alerts_email_reaches_the_smtp_sink(organization, rule, smtp_sink):  # noqa: F811
    rule(email_recipients="ops@example.com, oncall@example.com")
    alert = _raise(organization)
    [delivery] = _deliveries()
    assert delivery.status == "pending" and smtp_sink.messages == []  # raising sends nothing itself
    from django_etl.monitoring.routing import deliver_alerts

    assert deliver_alerts().sent == 1
    [received] = smtp_sink.messages
    assert sorted(received.recipients) == ["oncall@example.com", "ops@example.com"]
    assert "Task Failed" in received.message["Subject"] and "Acme" in received.message["Subject"]
    assert "Step 'clean' failed" in received.message.get_content()
    delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.sent_at is not None and delivery.attempts == 1
    assert deliver_alerts().sent == 0  # sent once
    _raise(organization, event="e2")  # the same problem again: the open alert is updated, nobody re-mailed
    assert deliver_alerts().sent == 0 and len(smtp_sink.messages) == 1
    assert alert.deliveries.count() == 1


def test_deliver_alerts_webhook_reaches_the_receiver_with_its_credential(
    organization,
    rule,
    hook_connector,
    webhook_receiver,  # noqa: F811
):
    rule(webhook_connector=hook_connector(webhook_receiver.base_url), webhook_path="/alerts")
    alert = _raise(organization)
    from django_etl.monitoring.routing import deliver_alerts

    assert deliver_alerts().sent == 1
    [post] = webhook_receiver.posts
    assert post["path"] == "/alerts"
    assert post["headers"]["Authorization"] == f"Bearer {HOOK_TOKEN}"
    assert post["body"]["alert_id"] == str(alert.pk) and post["body"]["level"] == "error"
    [delivery] = _deliveries()
    assert delivery.response == "HTTP 200" and HOOK_TOKEN not in delivery.target


def test_deliver_alerts_survives_the_receivers_being_down(organization, rule, hook_connector, settings):
    """Both receivers down: the attempt is logged and retried after its backoff; back up, it is delivered."""
    from django_etl.monitoring.models import Alert
    from django_etl.monitoring.routing import deliver_alerts

    settings.ETL_ALERT_DELIVERY_BACKOFF = 60
    sink, receiver = SmtpSink(port=free_port()), WebhookReceiver(port=free_port())  # not started: down
    settings.MAILERS = sink.mailers()
    rule(email_recipients="ops@example.com", webhook_connector=hook_connector(receiver.base_url))
    _raise(organization)
    now = timezone.now()
    first = deliver_alerts(now=now)
    assert (first.sent, first.retrying) == (0, 2)
    for delivery in _deliveries():
        assert delivery.status == "pending" and delivery.attempts == 1 and delivery.last_error
        assert delivery.next_attempt_at == now + dt.timedelta(seconds=60)
    assert Alert.objects.get().is_resolved is False  # a failed delivery never touches its alert
    assert deliver_alerts(now=now + dt.timedelta(seconds=30)).retrying == 0  # not due yet: not tried
    second = deliver_alerts(now=now + dt.timedelta(seconds=61))
    assert second.retrying == 2
    assert {d.next_attempt_at for d in _deliveries()} == {now + dt.timedelta(seconds=61 + 120)}  # doubled
    sink.start(), receiver.start()
    try:
        assert deliver_alerts(now=now + dt.timedelta(seconds=200)).sent == 2
        assert len(sink.messages) == 1 and len(receiver.posts) == 1
        assert [(d.status, d.attempts, d.last_error) for d in _deliveries()] == [("sent", 3, "")] * 2
    finally:
        sink.stop(), receiver.stop()


def test_deliver_alerts_gives_up_after_the_last_attempt(organization, rule, settings):
    from django_etl.monitoring.routing import deliver_alerts

    settings.ETL_ALERT_DELIVERY_ATTEMPTS = 2
    settings.MAILERS = SmtpSink(port=free_port()).mailers()  # nobody listens
    rule(email_recipients="ops@example.com")
    _raise(organization)
    later = timezone.now() + dt.timedelta(days=1)
    deliver_alerts(now=later)
    assert deliver_alerts(now=later + dt.timedelta(days=1)).failed == 1
    [delivery] = _deliveries()
    assert delivery.status == "failed" and delivery.attempts == 2
    assert deliver_alerts(now=later + dt.timedelta(days=9)).failed == 0  # failed is final


def test_deliver_alerts_webhook_off_the_network_policy_is_refused_and_logged(
    organization,
    rule,
    hook_connector,
    webhook_receiver,  # noqa: F811
    settings,
):
    from django_etl.monitoring.models import Alert
    from django_etl.monitoring.routing import deliver_alerts

    settings.ETL_NETWORK_ALLOW = []  # loopback is off the policy again, as in production
    rule(webhook_connector=hook_connector(webhook_receiver.base_url))
    _raise(organization)
    assert deliver_alerts().refused == 1
    [delivery] = _deliveries()
    assert delivery.status == "refused" and "127.0.0.1" in delivery.last_error
    assert webhook_receiver.posts == []
    assert HOOK_TOKEN not in delivery.last_error
    assert deliver_alerts(now=timezone.now() + dt.timedelta(days=1)).refused == 0  # never tried again
    assert Alert.objects.count() == 1


def test_enqueue_rules_filter_by_level_type_and_pipeline(organization, rule, pipeline, user):
    from django_etl.pipelines.models import Pipeline
    from django_etl.runs.models import PipelineRun

    other_pipeline = Pipeline.objects.create(
        name="Other", organization=organization, created_by=user, config={"schedule": None}
    )
    errors_only = rule(name="errors", min_level="error", email_recipients="a@example.com")
    quality = rule(name="quality", alert_types=["data_quality"], email_recipients="b@example.com")
    scoped = rule(name="scoped", email_recipients="c@example.com")
    scoped.pipelines.set([other_pipeline])
    rule(name="off", is_active=False, email_recipients="d@example.com")

    run = PipelineRun.objects.create(pipeline=pipeline, trigger_type="manual", status="failed")
    _raise(organization, key="k-warning", level="warning", pipeline_run=run)
    _raise(organization, key="k-error", level="error", pipeline_run=run)
    _raise(organization, key="k-dq", level="warning", alert_type="data_quality", pipeline_run=run)
    other_run = PipelineRun.objects.create(pipeline=other_pipeline, trigger_type="manual", status="failed")
    _raise(organization, key="k-other", level="warning", pipeline_run=other_run)
    routed = {(d.alert.condition_key, d.rule.name) for d in _deliveries()}
    assert routed == {("k-error", errors_only.name), ("k-dq", quality.name), ("k-other", scoped.name)}


def test_enqueue_escalation_is_delivered_to_rules_that_ask(organization, rule):
    rule(name="tell me again", email_recipients="a@example.com")
    rule(name="once", email_recipients="b@example.com", on_escalation=False)
    _raise(organization, level="warning", event="retry")
    _raise(organization, level="error", event="final")
    routed = sorted((d.rule.name, d.reason, d.level) for d in _deliveries())
    assert routed == [
        ("once", "new", "warning"),
        ("tell me again", "escalated", "error"),
        ("tell me again", "new", "warning"),
    ]


def test_enqueue_never_routes_another_organizations_alert(organization, other_organization, rule):
    rule(email_recipients="a@example.com")
    _raise(other_organization)
    assert _deliveries() == []


def test_deliver_alerts_refuses_a_connector_moved_to_another_organization(
    organization,
    other_organization,
    rule,
    hook_connector,
    webhook_receiver,  # noqa: F811
):
    from django_etl.monitoring.routing import deliver_alerts

    connector = hook_connector(webhook_receiver.base_url)
    rule(webhook_connector=connector)
    _raise(organization)
    type(connector).objects.filter(pk=connector.pk).update(organization=other_organization)
    assert deliver_alerts().refused == 1
    assert webhook_receiver.posts == []


def test_rule_clean_names_every_problem(organization, other_organization, hook_connector):
    from django.core.exceptions import ValidationError

    from django_etl.monitoring.models import AlertRule

    foreign = hook_connector("http://127.0.0.1:9", org=other_organization)
    bad = AlertRule(
        organization=organization,
        name="bad",
        email_recipients="ops@example.com, not-an-address",
        alert_types=["task_failed", "nonsense"],
        webhook_connector=foreign,
        webhook_path="https://elsewhere.example/",
    )
    with pytest.raises(ValidationError) as caught:
        bad.full_clean()
    problems = caught.value.message_dict
    assert set(problems) == {"email_recipients", "alert_types", "webhook_connector", "webhook_path"}
    assert "'not-an-address'" in problems["email_recipients"][0]
    assert "another organization" in problems["webhook_connector"][0]


def test_deliver_alerts_command_prints_its_summary(organization, rule, smtp_sink, capsys):  # noqa: F811
    rule(email_recipients="ops@example.com")
    _raise(organization)
    call_command("deliver_alerts")
    assert "1 sent, 0 to retry later, 0 failed for good, 0 refused." in capsys.readouterr().out
    assert len(smtp_sink.messages) == 1


def test_raise_alert_keeps_the_alert_when_routing_fails(organization, rule, monkeypatch):
    """A routing error (a bug, a lock) is logged; the alert is stored all the same."""
    from django_etl.monitoring import routing
    from django_etl.monitoring.models import Alert

    rule(email_recipients="ops@example.com")

    def broken(*args, **kwargs):
        raise RuntimeError("routing broke")

    monkeypatch.setattr(routing, "enqueue", broken)
    alert = _raise(organization)
    assert Alert.objects.filter(pk=alert.pk).exists() and _deliveries() == []


def test_deliver_alerts_one_request_per_attempt_whatever_the_connectors_retries(
    organization,
    rule,
    hook_connector,
    webhook_receiver,  # noqa: F811
):
    """The outbox retries, not the connector: a 503 is one request, logged, and tried again after the backoff."""
    from django_etl.monitoring.routing import deliver_alerts

    rule(webhook_connector=hook_connector(webhook_receiver.base_url, max_retries=3))
    _raise(organization)
    webhook_receiver.status = 503
    now = timezone.now()
    assert deliver_alerts(now=now).retrying == 1
    assert len(webhook_receiver.posts) == 1
    [delivery] = _deliveries()
    assert "HTTP 503" in delivery.last_error
    webhook_receiver.status = 200
    assert deliver_alerts(now=now + dt.timedelta(hours=1)).sent == 1
    assert len(webhook_receiver.posts) == 2
