"""The alert lifecycle: one open alert per condition, counted once per event, resolved with a reason."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connections


@pytest.fixture
def run(pipeline):
    from django_etl.runs.models import PipelineRun

    return PipelineRun.objects.create(pipeline=pipeline, trigger_type="manual", status="failed")


def _raise(key="task_failed:p:s", event="e1", level="error", **extra):
    from django_etl.monitoring.lifecycle import raise_alert

    return raise_alert(
        alert_type="task_failed",
        level=level,
        condition_key=key,
        message=f"boom {event}",
        metadata={"event_key": event, "detail": event},
        **extra,
    )


@pytest.mark.django_db
def test_raise_alert_same_condition_updates_the_open_alert(run, organization):
    from django_etl.monitoring.models import Alert

    first, created = _raise(event="try1", pipeline_run=run)
    second, created_again = _raise(event="try2", pipeline_run=run)
    assert created and not created_again
    assert first.pk == second.pk
    alert = Alert.objects.get()
    assert alert.occurrences == 2
    assert alert.last_seen_at >= alert.created_at
    assert alert.message == "boom try2" and alert.metadata["detail"] == "try2"
    assert alert.organization_id == organization.pk


@pytest.mark.django_db
def test_raise_alert_same_event_twice_counts_once(run):
    from django_etl.monitoring.models import Alert

    _raise(event="try1", pipeline_run=run)
    _, created = _raise(event="try1", pipeline_run=run)
    assert not created
    assert Alert.objects.get().occurrences == 1


@pytest.mark.django_db
def test_raise_alert_late_duplicate_after_resolution_adds_nothing(run):
    from django_etl.monitoring.lifecycle import LATER_SUCCESS, resolve_alerts
    from django_etl.monitoring.models import Alert

    _raise(event="try1", pipeline_run=run)
    assert resolve_alerts(condition_keys=["task_failed:p:s"], how=LATER_SUCCESS) == 1
    _, created = _raise(event="try1", pipeline_run=run)  # the listener's copy of the same failure, late
    assert not created
    assert Alert.objects.count() == 1


@pytest.mark.django_db
def test_raise_alert_after_resolution_opens_a_new_alert_naming_the_old(run):
    from django_etl.monitoring.lifecycle import LATER_SUCCESS, resolve_alerts

    old, _ = _raise(event="run1", pipeline_run=run)
    resolve_alerts(condition_keys=["task_failed:p:s"], how=LATER_SUCCESS)
    new, created = _raise(event="run2", pipeline_run=run)
    assert created and new.pk != old.pk
    assert new.metadata["recurrence_of"] == str(old.pk)


@pytest.mark.django_db
def test_raise_alert_higher_level_escalates_lower_keeps(run):
    from django_etl.monitoring.models import Alert

    _raise(event="retry", level="warning", pipeline_run=run)
    _raise(event="final", level="error", pipeline_run=run)
    alert = Alert.objects.get()
    assert alert.level == "error" and alert.metadata["escalated_from"] == "warning"
    _raise(event="again", level="warning", pipeline_run=run)
    assert Alert.objects.get().level == "error"


@pytest.mark.django_db
def test_raise_alert_without_condition_key_is_refused(run):
    from django_etl.monitoring.lifecycle import raise_alert

    with pytest.raises(ValueError, match="condition_key"):
        raise_alert(alert_type="task_failed", level="error", condition_key="", message="x")


@pytest.mark.django_db
def test_open_alerts_unique_per_condition_in_the_database(organization):
    from django_etl.monitoring.models import Alert

    Alert.objects.create(
        organization=organization, level="error", alert_type="task_failed", message="a", condition_key="k"
    )
    with pytest.raises(IntegrityError):
        Alert.objects.create(
            organization=organization, level="error", alert_type="task_failed", message="b", condition_key="k"
        )


@pytest.mark.django_db
def test_resolve_alerts_records_how_and_by_whom(organization):
    from django_etl.monitoring.lifecycle import BY_HAND, resolve_alerts
    from django_etl.monitoring.models import Alert

    _raise(key="k1", organization_id=organization.pk)
    _raise(key="k2", organization_id=organization.pk)
    assert resolve_alerts(condition_keys=["k1"], how=BY_HAND, by="ada") == 1
    resolved = Alert.objects.get(condition_key="k1")
    assert resolved.is_resolved and resolved.resolved_at is not None
    assert (
        resolved.metadata["resolution"]["how"] == "by_hand" and resolved.metadata["resolution"]["by"] == "ada"
    )
    assert not Alert.objects.get(condition_key="k2").is_resolved
    assert resolve_alerts(condition_keys=["k1"], how=BY_HAND) == 0  # already resolved: nothing to do


def test_condition_key_long_parts_are_hashed_to_fit():
    from django_etl.monitoring.lifecycle import condition_key

    long_a, long_b = condition_key("t", "x" * 300, "a"), condition_key("t", "x" * 300, "b")
    assert len(long_a) <= 255 and long_a != long_b
    assert condition_key("task_failed", "p", None, "s") == "task_failed:p:s"


@pytest.mark.django_db(transaction=True)
def test_raise_alert_concurrent_raisers_make_one_alert(organization):
    """Eight threads raise the same condition at once (distinct events): one alert, eight occurrences."""
    from django_etl.monitoring.models import Alert

    threads, errors = [], []
    barrier = threading.Barrier(8)

    def worker(number: int) -> None:
        try:
            barrier.wait(timeout=10)
            _raise(key="concurrent", event=f"e{number}", organization_id=organization.pk)
        except Exception as exc:  # reported below: a thread's exception would otherwise vanish
            errors.append(exc)
        finally:
            connections.close_all()

    for number in range(8):
        threads.append(threading.Thread(target=worker, args=(number,)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    alert = Alert.objects.get(condition_key="concurrent")
    assert alert.occurrences == 8
    assert sorted(alert.metadata["events"]) == sorted(f"e{n}" for n in range(8))


@pytest.mark.django_db(transaction=True)
def test_raise_alert_concurrent_same_event_counts_once(organization):
    from django_etl.monitoring.models import Alert

    barrier = threading.Barrier(6)
    errors = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            _raise(key="same-event", event="only", organization_id=organization.pk)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert Alert.objects.get(condition_key="same-event").occurrences == 1
