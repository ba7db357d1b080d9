"""Alert routing: an organization's rules say who hears of an alert; deliveries wait in an outbox.

- :func:`enqueue` is called by the lifecycle (``lifecycle.raise_alert``) in the transaction that creates an
  alert (``new``) or raises its level (``escalated``): it writes one ``AlertDelivery`` row per matching rule
  and channel, and sends nothing. The scheduler's listener and the task callbacks therefore never wait for a
  mail server or a webhook; the outbox row commits with the alert or not at all.
- :func:`deliver_alerts` drains the outbox: the ``etl_alert_delivery`` maintenance DAG (every 2 minutes,
  ETL_ALERT_DELIVERY_SCHEDULE) and the ``deliver_alerts`` command call it. Each due delivery is locked
  (``SKIP LOCKED``: two drains never send one twice), sent through ``django_etl.messaging`` (the notify
  step's code), and marked sent; a failure is logged on the row and retried with exponential backoff
  (ETL_ALERT_DELIVERY_BACKOFF doubling, at most ETL_ALERT_DELIVERY_MAX_BACKOFF) until
  ETL_ALERT_DELIVERY_ATTEMPTS; a webhook the network policy refuses is marked refused at once. A failed
  delivery never touches its alert.

Which boundary holds a rule's input (docs/security.md): recipients are validated addresses; a webhook is an
API connector of the rule's own organization (checked when the rule is saved and again before each send),
so its URL goes through the network policy, as every connector's does.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from django_etl.monitoring.choices import AlertType, DeliveryChannel, DeliveryReason, DeliveryStatus

log = logging.getLogger("django_etl.monitoring")

MAX_RECIPIENTS = 20
SEPARATORS = re.compile(r"[,;\s]+")
ERROR_MAX = 2000
WEBHOOK_TIMEOUT = 10.0  # seconds, at most, for one webhook attempt


# ---------------------------------------------------------------- rules
def parse_recipients(text: str) -> list[str]:
    return [address for address in SEPARATORS.split(text or "") if address]


def rule_problems(rule) -> dict[str, list[str]]:
    """What is wrong with a rule, by field (its clean() and the admin form report all of them at once)."""
    from django_etl.monitoring.lifecycle import LEVEL_RANK

    problems: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        problems.setdefault(field, []).append(message)

    recipients = parse_recipients(rule.email_recipients)
    if len(recipients) > MAX_RECIPIENTS:
        add("email_recipients", f"at most {MAX_RECIPIENTS} addresses, not {len(recipients)}")
    for address in recipients:
        try:
            validate_email(address)
        except ValidationError:
            add("email_recipients", f"{address[:80]!r} is not an email address")
    types = rule.alert_types if isinstance(rule.alert_types, list) else None
    if types is None:
        add("alert_types", "must be a list of alert types")
    else:
        for value in types:
            if value not in AlertType.values:
                add(
                    "alert_types", f"{str(value)[:40]!r} is not an alert type ({', '.join(AlertType.values)})"
                )
    if rule.min_level not in LEVEL_RANK:
        add("min_level", f"{rule.min_level!r} is not a level")
    connector = rule.webhook_connector if rule.webhook_connector_id else None
    if connector is not None:
        if connector.organization_id != rule.organization_id:
            add("webhook_connector", "the connector belongs to another organization")
        elif connector.connector_type != "api":
            add(
                "webhook_connector",
                f"{connector.name!r} is a {connector.connector_type} connector, not an API one",
            )
    if rule.webhook_path and (
        rule.webhook_path.startswith(("http:", "https:", "//")) or "\x00" in rule.webhook_path
    ):
        add("webhook_path", "a path under the connector's base URL, not a URL of its own")
    if not recipients and connector is None:
        add("email_recipients", "give email recipients, a webhook connector, or both")
    return problems


def matching_rules(alert, kind: str, *, using: str = "default") -> list:
    """The organization's active rules that route ``alert`` (its level, type and pipeline)."""
    from django_etl.monitoring.lifecycle import LEVEL_RANK
    from django_etl.monitoring.models import AlertRule

    if alert.organization_id is None:
        return []  # platform alerts (no organization) are the operators' (the admin, logs)
    rules = list(AlertRule.objects.using(using).filter(organization_id=alert.organization_id, is_active=True))
    if not rules:
        return []
    pipeline_id = _pipeline_of(alert, using)
    limited: dict[Any, set[str]] = {}
    through = AlertRule.pipelines.through.objects.using(using)
    for rule_id, pid in through.filter(alertrule__in=rules).values_list("alertrule_id", "pipeline_id"):
        limited.setdefault(rule_id, set()).add(str(pid))
    rank = LEVEL_RANK.get(alert.level, 0)
    found = []
    for rule in rules:
        if kind == DeliveryReason.ESCALATED and not rule.on_escalation:
            continue
        if rank < LEVEL_RANK.get(rule.min_level, 0):
            continue
        if rule.alert_types and alert.alert_type not in rule.alert_types:
            continue
        if rule.pk in limited and (pipeline_id is None or pipeline_id not in limited[rule.pk]):
            continue
        found.append(rule)
    return found


def _pipeline_of(alert, using: str) -> str | None:
    from django_etl.runs.models import PipelineRun

    if alert.pipeline_run_id is not None:
        pid = (
            PipelineRun.objects.using(using)
            .filter(pk=alert.pipeline_run_id)
            .values_list("pipeline_id", flat=True)
        )
        found = pid.first()
        return str(found) if found else None
    pid = (alert.metadata or {}).get("pipeline_id")
    return str(pid) if pid else None


def enqueue(alert, kind: str, *, using: str = "default") -> int:
    """Queue one delivery per matching rule and channel (``kind``: new or escalated); how many were queued."""
    from django_etl.monitoring.models import AlertDelivery

    rows = []
    for rule in matching_rules(alert, kind, using=using):
        common = {"alert": alert, "rule": rule, "organization_id": alert.organization_id, "reason": kind}
        recipients = rule.recipients()
        if recipients:
            rows.append(
                AlertDelivery(
                    channel=DeliveryChannel.EMAIL, level=alert.level, target=", ".join(recipients), **common
                )
            )
        if rule.webhook_connector_id:
            target = f"connector {rule.webhook_connector_id} path {rule.webhook_path or '/'}"
            rows.append(
                AlertDelivery(channel=DeliveryChannel.WEBHOOK, level=alert.level, target=target, **common)
            )
    if rows:
        AlertDelivery.objects.using(using).bulk_create(rows, ignore_conflicts=True)
    return len(rows)


# ---------------------------------------------------------------- the drain
@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    refused: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "retrying": self.retrying, "failed": self.failed, "refused": self.refused}


class Refused(Exception):
    """This delivery can never succeed as set up (network policy, a connector gone or of another organization)."""


class Retry(Exception):
    """This attempt failed; a later one may succeed."""


def deliver_alerts(
    *, limit: int = 200, now=None, using: str = "default", log_progress=None
) -> DeliveryReport:
    """Send the deliveries that are due (at most ``limit``); returns what happened to them."""
    from django_etl.monitoring.models import AlertDelivery

    report = DeliveryReport()
    now = now or timezone.now()
    due = (
        AlertDelivery.objects.using(using)
        .filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in list(due):
        with transaction.atomic(using=using):
            delivery = (
                AlertDelivery.objects.using(using)
                .select_for_update(skip_locked=True, of=("self",))
                .select_related("alert", "rule", "rule__webhook_connector")
                .filter(pk=pk, status=DeliveryStatus.PENDING)
                .first()
            )
            if delivery is None:  # another drain has it, or it was sent meanwhile
                continue
            _attempt(delivery, now, report, using)
        if log_progress:
            log_progress(
                f"delivery {delivery.pk}: {delivery.status} ({delivery.channel} to {delivery.target[:60]})"
            )
    return report


def _attempt(delivery, now, report: DeliveryReport, using: str) -> None:
    delivery.attempts += 1
    try:
        delivery.response = send(delivery)[:200]
    except Refused as exc:
        delivery.status = DeliveryStatus.REFUSED
        delivery.last_error = str(exc)[:ERROR_MAX]
        report.refused += 1
        log.warning("alert delivery %s refused: %s", delivery.pk, exc)
    except Exception as exc:  # Retry, or anything unforeseen: logged on the row, tried again later
        delivery.last_error = (str(exc) if isinstance(exc, Retry) else f"{type(exc).__name__}: {exc}")[
            :ERROR_MAX
        ]
        if delivery.attempts >= settings.ETL_ALERT_DELIVERY_ATTEMPTS:
            delivery.status = DeliveryStatus.FAILED
            report.failed += 1
        else:
            delivery.next_attempt_at = now + backoff(delivery.attempts)
            report.retrying += 1
        log.warning(
            "alert delivery %s attempt %s failed: %s", delivery.pk, delivery.attempts, delivery.last_error
        )
    else:
        delivery.status = DeliveryStatus.SENT
        delivery.sent_at = timezone.now()
        delivery.last_error = ""
        report.sent += 1
    delivery.save(
        using=using,
        update_fields=["attempts", "status", "last_error", "next_attempt_at", "sent_at", "response"],
    )


def backoff(attempts: int) -> timedelta:
    """The wait after ``attempts`` failed attempts: the base, doubled each time, capped."""
    base = float(settings.ETL_ALERT_DELIVERY_BACKOFF)
    cap = float(settings.ETL_ALERT_DELIVERY_MAX_BACKOFF)
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), cap))


def send(delivery) -> str:
    """Send one delivery now; what the receiver answered. Raises Refused or Retry."""
    alert, rule = delivery.alert, delivery.rule
    if rule is None:
        raise Refused("its rule was deleted")
    subject, text, data = message_of(alert, delivery.reason)
    if delivery.channel == DeliveryChannel.EMAIL:
        from django_etl.messaging import EmailNotSent, send_email

        recipients = rule.recipients()
        if not recipients:
            raise Refused("the rule has no email recipients any more")
        try:
            send_email(subject, text, recipients)
        except EmailNotSent as exc:
            raise Retry(str(exc)) from None
        return f"email to {len(recipients)} recipient(s)"
    return _send_webhook(delivery, rule, subject, text, data)


def _send_webhook(delivery, rule, subject: str, text: str, data: dict[str, Any]) -> str:
    from django_etl.connectors.expiry import CredentialExpiredError, refuse_expired
    from django_etl.connectors.models import CredentialDecryptionError
    from django_etl.connectors.secrets import mask, secret_values
    from django_etl.dataplane import adapter_for
    from django_etl.errors import EtlError
    from django_etl.messaging import post_webhook, webhook_payload

    connector = rule.webhook_connector
    if connector is None:
        raise Refused("the rule has no webhook connector any more")
    # Checked again at send time: a connector moved or retyped since the rule was saved is not used.
    if connector.organization_id != delivery.organization_id or connector.connector_type != "api":
        raise Refused(f"connector {connector.name!r} is not an API connector of the alert's organization")
    if not connector.is_active:
        raise Refused(f"connector {connector.name!r} is inactive")
    try:
        refuse_expired(connector)
        runtime = connector.runtime_settings()
    except (CredentialExpiredError, CredentialDecryptionError) as exc:
        raise Retry(str(exc)) from None  # renewing the credential lets a later attempt through
    secrets = secret_values(runtime.get("secret", {}))
    # One try per attempt, briefly: the outbox retries with its own backoff, and one slow receiver must not
    # hold up the drain (the connector's own retries would sleep inside it).
    config = dict(runtime.get("config") or {})
    config["max_retries"] = 0
    config["timeout_seconds"] = min(float(config.get("timeout_seconds") or WEBHOOK_TIMEOUT), WEBHOOK_TIMEOUT)
    runtime = {**runtime, "config": config}
    try:
        adapter = adapter_for(runtime)
        status = post_webhook(
            adapter, rule.webhook_path, webhook_payload(rule.webhook_format, subject, text, data)
        )
    except EtlError as exc:
        message = mask(str(exc), secrets)
        if exc.retryable:
            raise Retry(message) from None
        raise Refused(message) from None
    return f"HTTP {status}"


def message_of(alert, reason: str) -> tuple[str, str, dict[str, Any]]:
    """Subject, text and JSON fields of an alert's message (no secrets: alerts never hold any)."""
    organization = alert.organization.name if alert.organization_id else "platform"
    what = "level raised" if reason == DeliveryReason.ESCALATED else "new alert"
    subject = f"[ETL] {alert.get_level_display()}: {alert.get_alert_type_display()} ({organization}, {what})"
    lines = [
        alert.message,
        "",
        f"Level: {alert.get_level_display()}   Type: {alert.get_alert_type_display()}",
        f"Seen {alert.occurrences} time(s), last at {alert.last_seen_at:%Y-%m-%d %H:%M:%S %Z}",
    ]
    data = {
        "alert_id": str(alert.pk),
        "organization": organization,
        "level": alert.level,
        "alert_type": alert.alert_type,
        "message": alert.message,
        "condition_key": alert.condition_key,
        "occurrences": alert.occurrences,
        "reason": reason,
        "created_at": alert.created_at.isoformat() if alert.created_at else None,
        "last_seen_at": alert.last_seen_at.isoformat() if alert.last_seen_at else None,
        "pipeline_run_id": str(alert.pipeline_run_id) if alert.pipeline_run_id else None,
    }
    return subject, "\n".join(lines), data


def deliver_alerts_job() -> dict[str, int]:
    """The etl_alert_delivery DAG's task: one drain; its summary is the task's XCom."""
    return deliver_alerts(log_progress=log.info).as_dict()
