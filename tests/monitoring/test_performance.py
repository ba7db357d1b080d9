"""Degradation and volume alerts of a finished run against its pipeline's recent successful runs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from django_etl.alertpolicy import resolve
from django_etl.monitoring.baselines import Baseline
from django_etl.monitoring.performance import RunFacts, StepFacts, check_finished_run, compare
from tests.support.run_history import seed_history

pytestmark = pytest.mark.django_db


def _history(n: int, seconds: float = 10.0, rows: float = 1000) -> list[RunFacts]:
    runs = []
    for i in range(n):
        wobble = 1 + (i % 3) * 0.02
        step = StepFacts("s1", "Enrich", 0.9 * seconds * wobble, rows, rows / (0.9 * seconds * wobble))
        runs.append(RunFacts(duration=seconds * wobble, rows=rows, steps={"s1": step}))
    return runs


def test_compare_slow_run_and_step_found():
    current = RunFacts(
        duration=40.0, rows=1000, steps={"s1": StepFacts("s1", "Enrich", 38.0, 1000, 1000 / 38)}
    )
    result = compare(current, _history(12), resolve({}, {}))
    assert result.compared
    assert {(f.measure, f.step_id) for f in result.slow} == {
        ("duration_seconds", None),
        ("duration_seconds", "s1"),
        ("rows_per_second", "s1"),
    }
    assert result.volume == []


def test_compare_too_little_history_compares_nothing():
    current = RunFacts(duration=400.0, rows=1, steps={"s1": StepFacts("s1", "Enrich", 380.0, 1, 0.01)})
    result = compare(current, _history(9), resolve({}, {}))
    assert (result.compared, result.slow, result.volume) == (False, [], [])


def test_compare_min_history_from_pipeline_config():
    current = RunFacts(duration=40.0, rows=1000)
    policy = resolve({"monitoring": {"min_history": 5}}, {})
    assert [f.measure for f in compare(current, _history(6), policy).slow] == ["duration_seconds"]


def test_compare_short_durations_never_slow():
    history = _history(12, seconds=0.2)
    current = RunFacts(duration=0.9, rows=1000)
    assert compare(current, history, resolve({}, {})).slow == []
    assert compare(current, history, resolve({"monitoring": {"min_seconds": 0}}, {})).slow


def test_compare_volume_drop_and_rise():
    policy = resolve({}, {})
    drop = compare(
        RunFacts(duration=10, rows=10, steps={"s1": StepFacts("s1", "Enrich", 9, 10, 10 / 9)}),
        _history(12),
        policy,
    )
    assert [(f.direction, f.step_id) for f in drop.volume] == [("below", None), ("below", "s1")]
    # Fewer rows per second because there were fewer rows: a volume finding, not a slower step.
    assert drop.slow == []
    rise = compare(RunFacts(duration=10, rows=50_000), _history(12), policy).volume
    assert [(f.direction, f.step_id) for f in rise] == [("above", None)]


def test_compare_hard_limit_without_history():
    result = compare(RunFacts(duration=700.0), [], resolve({"monitoring": {"max_run_seconds": 600}}, {}))
    assert result.over_limit == {"observed": 700.0, "limit_seconds": 600}
    assert not result.compared


# ---------------------------------------------------------------- with the database
@pytest.fixture
def step(make_step):
    return make_step("Enrich", "transform", {"sql": "SELECT * FROM orders", "inputs": ["orders"]}, 1)


def _finished_run(pipeline, step, *, seconds: float, rows: int, step_seconds: float, started=None):
    from django_etl.runs.models import PipelineRun, TaskRun

    started = started or timezone.now() - dt.timedelta(minutes=5)
    run = PipelineRun.objects.create(
        pipeline=pipeline,
        status="success",
        trigger_type="manual",
        started_at=started,
        completed_at=started + dt.timedelta(seconds=seconds),
        metrics={"duration_seconds": seconds, "rows_moved": rows},
        airflow_dag_id=pipeline.dag_id,
        airflow_run_id=f"manual__{started.isoformat()}",
    )
    TaskRun.objects.create(
        pipeline_run=run,
        pipeline_step=step,
        status="success",
        started_at=started,
        completed_at=started + dt.timedelta(seconds=step_seconds),
        metrics={"duration_seconds": step_seconds, "rows_out": rows, "rows_per_second": rows / step_seconds},
    )
    return run


def test_check_finished_run_slow_run_one_alert_with_baseline(pipeline, step):
    from django_etl.monitoring.models import Alert

    seed_history(pipeline, {step: {"seconds": 8.0, "rows": 1000}}, runs=12, run_seconds=10.0, rows=1000)
    run = _finished_run(pipeline, step, seconds=45.0, rows=1000, step_seconds=42.0)
    check_finished_run(run)
    check_finished_run(run)  # reconciliation may run twice: the same run counts once
    alert = Alert.objects.get(alert_type="performance_degradation")
    assert (alert.level, alert.occurrences, alert.pipeline_run, alert.organization) == (
        "warning",
        1,
        run,
        pipeline.organization,
    )
    meta = alert.metadata
    assert meta["measure"] == "duration_seconds" and "step_id" not in meta  # the run's own figure leads
    assert meta["baseline"]["median"] == pytest.approx(10.0, rel=0.02)
    assert meta["baseline"]["mad"] > 0
    assert meta["observed"] == 45.0
    assert meta["ratio"] == pytest.approx(4.5, rel=0.03)
    assert (meta["window"], meta["n"]) == (30, 12)
    assert {(f["measure"], f.get("step_name")) for f in meta["findings"]} == {
        ("duration_seconds", None),
        ("duration_seconds", "Enrich"),
        ("rows_per_second", "Enrich"),
    }
    assert "step 'Enrich' took 42.0 s" in alert.message
    assert not Alert.objects.filter(alert_type="data_quality").exists()


def test_check_finished_run_too_little_history_no_alert(pipeline, step):
    from django_etl.monitoring.models import Alert

    seed_history(pipeline, {step: {"seconds": 8.0, "rows": 1000}}, runs=9, run_seconds=10.0, rows=1000)
    check_finished_run(_finished_run(pipeline, step, seconds=450.0, rows=1, step_seconds=420.0))
    assert not Alert.objects.exists()


def test_check_finished_run_normal_run_resolves_the_alert(pipeline, step):
    from django_etl.monitoring.models import Alert

    seed_history(pipeline, {step: {"seconds": 8.0, "rows": 1000}}, runs=12, run_seconds=10.0, rows=1000)
    slow = _finished_run(pipeline, step, seconds=45.0, rows=1000, step_seconds=42.0)
    check_finished_run(slow)
    normal = _finished_run(pipeline, step, seconds=10.1, rows=1000, step_seconds=8.0, started=timezone.now())
    check_finished_run(normal)
    alert = Alert.objects.get(alert_type="performance_degradation")
    assert alert.is_resolved and alert.metadata["resolution"]["how"] == "condition_cleared"


def test_check_finished_run_volume_anomaly_is_data_quality(pipeline, step):
    from django_etl.monitoring.models import Alert

    seed_history(pipeline, {step: {"seconds": 8.0, "rows": 1000}}, runs=12, run_seconds=10.0, rows=1000)
    check_finished_run(_finished_run(pipeline, step, seconds=10.0, rows=12, step_seconds=8.0))
    alert = Alert.objects.get()
    assert (alert.alert_type, alert.level) == ("data_quality", "warning")
    assert alert.metadata["check"] == "volume"
    assert (alert.metadata["observed"], alert.metadata["baseline"]["median"]) == (12.0, 1000.0)
    assert alert.metadata["direction"] == "below"


def test_check_finished_run_disabled_by_organization(pipeline, step):
    from django_etl.monitoring.models import Alert

    pipeline.organization.settings = {"monitoring": {"enabled": False}}
    pipeline.organization.save()
    seed_history(pipeline, {step: {"seconds": 8.0, "rows": 1000}}, runs=12, run_seconds=10.0, rows=1000)
    assert (
        check_finished_run(_finished_run(pipeline, step, seconds=45.0, rows=1000, step_seconds=42.0)) is None
    )
    assert not Alert.objects.exists()


def test_check_finished_run_failed_run_not_compared(pipeline, step):
    run = _finished_run(pipeline, step, seconds=45.0, rows=1000, step_seconds=42.0)
    run.status = "failed"
    assert check_finished_run(run) is None


def test_baseline_scaled_mad():
    assert Baseline(10, 2, 12).scaled_mad == pytest.approx(2.9652)
