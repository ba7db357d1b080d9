"""Alert lifecycle: one open alert per problem, updated while it lasts, resolved when it is over.

The one way alerts are raised and resolved, from the write-back package, the maintenance jobs and Django-side
checks alike (no Airflow import):

- :func:`raise_alert` — an *open* alert with the same ``condition_key`` (the same condition on the same
  step, say ``task_failed:<pipeline id>:<step id>``; :func:`condition_key` builds one) is updated — one more
  occurrence, ``last_seen_at``, the latest message, metadata, run and task run, the level raised if the new
  one is higher — instead of adding an alert; otherwise one is created. Returns ``(alert, created)``.
  *Race-safe*: the partial unique index ``unique_open_alert_condition`` allows one open alert per condition,
  so of two concurrent first raisers one inserts and the other updates; updates lock the row
  (``select_for_update``). *Idempotent per event*: ``metadata["event_key"]`` names the event (a try of a
  task of a run, a check of a run…); the alert keeps the last :data:`EVENTS_KEPT` event keys (with their run)
  in ``metadata["events"]``, so the same event reported twice (callback and listener, reconciliation) counts
  once, also after the alert was resolved meanwhile.
- :func:`resolve_alerts` — resolves the open alerts of some conditions (``is_resolved``, ``resolved_at``)
  and says how in ``metadata["resolution"]``: :data:`LATER_SUCCESS`, :data:`SUPERSEDED` (tasks cleared and
  re-run), :data:`BY_HAND` (a member, in the admin), :data:`CONDITION_CLEARED` (a check found it gone).

A new alert, and an open one whose level rose, are handed to routing (``monitoring.routing``) in the same
transaction: the delivery outbox row commits with the alert or not at all, and a routing error never loses
the alert.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from django_etl.monitoring.choices import AlertLevel

log = logging.getLogger("django_etl.monitoring")

EVENTS_KEPT = 50
RECENT_RESOLVED_CHECKED = 3
MESSAGE_MAX = 4000
CONDITION_KEY_MAX = 255
RAISE_ATTEMPTS = 3
RESOLVE_BATCH = 500
# What an update keeps of the alert's first metadata (the rest is the latest occurrence's).
KEPT_METADATA = ("recurrence_of", "first_seen_at", "escalated_from")
LEVEL_RANK = {AlertLevel.INFO: 0, AlertLevel.WARNING: 1, AlertLevel.ERROR: 2, AlertLevel.CRITICAL: 3}

# How an alert was resolved (metadata["resolution"]["how"]).
LATER_SUCCESS = "later_success"
SUPERSEDED = "superseded"
BY_HAND = "by_hand"
CONDITION_CLEARED = "condition_cleared"


def condition_key(alert_type: str, *parts: Any) -> str:
    """``"<type>:<part>:<part>…"`` (empty parts left out); hashed past 255 characters so it still fits."""
    key = ":".join([str(alert_type), *(str(p) for p in parts if p is not None and p != "")])
    if len(key) <= CONDITION_KEY_MAX:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{key[: CONDITION_KEY_MAX - 33]}:{digest}"


def step_condition(alert_type: str, pipeline_id: Any, step_key: Any, *detail: Any) -> str:
    """The condition of one kind of problem on one step of one pipeline (the usual key)."""
    return condition_key(alert_type, pipeline_id, step_key, *detail)


def raise_alert(
    *,
    alert_type: str,
    level: str,
    condition_key: str,
    message: str,
    metadata: dict[str, Any] | None = None,
    organization_id: Any = None,
    pipeline_run=None,
    task_run=None,
    using: str | None = None,
):
    """Create the open alert of ``condition_key`` or update it; ``(alert, created)``. See the module docstring.

    ``created`` is False both when an open alert was updated and when the event (``metadata["event_key"]``)
    had been counted already (then nothing changes). ``pipeline_run`` / ``task_run`` are model instances.
    """
    from django_etl.monitoring.models import Alert

    if not condition_key:
        raise ValueError("raise_alert needs a condition_key (the problem's identity, see condition_key())")
    if len(condition_key) > CONDITION_KEY_MAX:
        raise ValueError(
            f"condition_key is longer than {CONDITION_KEY_MAX} characters; build it with condition_key()"
        )
    alias = using or "default"
    metadata = dict(metadata or {})
    event = _event_id(metadata.get("event_key"), pipeline_run)
    for attempt in range(RAISE_ATTEMPTS):
        try:
            with transaction.atomic(using=alias):
                alerts = Alert.objects.using(alias)
                current = (
                    alerts.select_for_update().filter(condition_key=condition_key, is_resolved=False).first()
                )
                if current is not None:
                    if event and event in _events(current):
                        return current, False
                    escalated = _update(
                        current, level, message, metadata, event, pipeline_run, task_run, alias
                    )
                    if escalated:
                        _route(current, "escalated", alias)
                    return current, False
                if event:
                    counted = _recent_with_event(alerts, condition_key, event)
                    if counted is not None:
                        return counted, False
                previous = (
                    alerts.filter(condition_key=condition_key)
                    .order_by("-last_seen_at")
                    .values_list("pk", flat=True)
                    .first()
                )
                if previous is not None:
                    metadata.setdefault("recurrence_of", str(previous))
                alert = Alert(
                    alert_type=alert_type,
                    level=level,
                    condition_key=condition_key,
                    message=message[:MESSAGE_MAX],
                    metadata={
                        **metadata,
                        "first_seen_at": timezone.now().isoformat(),
                        "events": [event] if event else [],
                    },
                    organization_id=organization_id,
                    pipeline_run=pipeline_run,
                    task_run=task_run,
                    occurrences=1,
                    last_seen_at=timezone.now(),
                )
                alert.save(using=alias, force_insert=True)
                _route(alert, "new", alias)
                return alert, True
        except IntegrityError:
            # Another raiser opened this condition's alert between our read and our insert: update it.
            if attempt == RAISE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def resolve_alerts(
    *,
    condition_keys: Iterable[str] = (),
    alerts=None,
    how: str,
    by: str | None = None,
    pipeline_run=None,
    note: str | None = None,
    using: str | None = None,
) -> int:
    """Resolve the open alerts of ``condition_keys`` (or of the queryset ``alerts``); how many were resolved.

    ``how``: :data:`LATER_SUCCESS`, :data:`SUPERSEDED`, :data:`BY_HAND` or :data:`CONDITION_CLEARED`;
    ``by``: who (a user name) for by-hand resolutions; ``pipeline_run``: the run that resolved them (its
    Airflow run id is recorded); ``note``: free text. Each alert's ``metadata["resolution"]`` says so.
    """
    from django_etl.monitoring.models import Alert

    alias = using or "default"
    keys = [key for key in condition_keys if key]
    if alerts is None:
        if not keys:
            return 0
        alerts = Alert.objects.using(alias).filter(condition_key__in=keys)
    elif keys:
        alerts = alerts.filter(condition_key__in=keys)
    now = timezone.now()
    resolution = {"how": how, "at": now.isoformat()}
    if by:
        resolution["by"] = by
    if pipeline_run is not None:
        resolution["run_id"] = getattr(pipeline_run, "airflow_run_id", None) or str(pipeline_run.pk)
    if note:
        resolution["note"] = note[:500]
    # The usual answer is "nothing open": one light read, no transaction and no lock (write-back asks at
    # every run end and after every retried success). Alerts found open are locked and resolved in batches.
    count = 0
    while True:
        batch = list(
            alerts.using(alias).filter(is_resolved=False).values_list("pk", flat=True)[:RESOLVE_BATCH]
        )
        if not batch:
            return count
        with transaction.atomic(using=alias):
            locked = Alert.objects.using(alias).select_for_update().filter(pk__in=batch, is_resolved=False)
            for alert in locked.order_by("pk"):
                alert.is_resolved = True
                alert.resolved_at = now
                alert.metadata = {**(alert.metadata or {}), "resolution": resolution}
                alert.save(using=alias, update_fields=["is_resolved", "resolved_at", "metadata"])
                count += 1
        if len(batch) < RESOLVE_BATCH:
            return count


# ---------------------------------------------------------------- internals
def _event_id(event_key: Any, pipeline_run) -> str | None:
    """An event's identity: its key within its run (keys like ``task_failed:<task>:<try>`` repeat across runs)."""
    if not event_key:
        return None
    run = getattr(pipeline_run, "pk", None)
    return f"{run}|{event_key}" if run is not None else str(event_key)


def _events(alert) -> list[str]:
    events = (alert.metadata or {}).get("events")
    return events if isinstance(events, list) else []


def _recent_with_event(alerts, key: str, event: str):
    """A resolved alert of this condition that already counted ``event`` (a late duplicate), else None."""
    for alert in alerts.filter(condition_key=key, is_resolved=True).order_by("-last_seen_at")[
        :RECENT_RESOLVED_CHECKED
    ]:
        if event in _events(alert):
            return alert
    return None


def _update(alert, level, message, metadata, event, pipeline_run, task_run, alias) -> bool:
    """One more occurrence on the open ``alert`` (locked); True when its level rose."""
    events = _events(alert)
    if event:
        events = [*events, event][-EVENTS_KEPT:]
    escalated = LEVEL_RANK.get(level, 0) > LEVEL_RANK.get(alert.level, 0)
    kept = {k: v for k, v in (alert.metadata or {}).items() if k in KEPT_METADATA}
    alert.metadata = {**metadata, **kept, "events": events}
    if escalated:
        alert.metadata["escalated_from"] = alert.level
        alert.level = level
    alert.message = message[:MESSAGE_MAX]
    alert.occurrences = (alert.occurrences or 1) + 1
    alert.last_seen_at = timezone.now()
    fields = ["metadata", "level", "message", "occurrences", "last_seen_at"]
    if pipeline_run is not None:
        alert.pipeline_run = pipeline_run
        fields.append("pipeline_run")
    if task_run is not None or pipeline_run is not None:
        alert.task_run = task_run
        fields.append("task_run")
    alert.save(using=alias, update_fields=fields)
    return escalated


def _route(alert, kind: str, alias: str) -> None:
    """Queue the alert's deliveries (same transaction); a routing error is logged, the alert is kept."""
    from django_etl.monitoring.routing import enqueue

    try:
        with transaction.atomic(using=alias):
            enqueue(alert, kind, using=alias)
    except Exception as exc:  # the alert matters more than its delivery
        log.warning("alert %s: deliveries not queued: %s: %s", alert.pk, type(exc).__name__, exc)
