"""check_runs: runs still running far past their baseline or the hard limit are flagged while they run."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from django_etl.monitoring.running import check_running_runs
from tests.support.run_history import seed_history

pytestmark = pytest.mark.django_db


def _running(pipeline, minutes_ago: float, run_id: str = "manual__now"):
    from django_etl.runs.models import PipelineRun

    return PipelineRun.objects.create(
        pipeline=pipeline,
        status="running",
        trigger_type="manual",
        started_at=timezone.now() - dt.timedelta(minutes=minutes_ago),
        airflow_dag_id=pipeline.dag_id,
        airflow_run_id=run_id,
    )


def test_check_running_runs_overdue_run_flagged_once(pipeline):
    from django_etl.monitoring.models import Alert

    seed_history(pipeline, {}, runs=12, run_seconds=60.0, rows=100)
    late = _running(pipeline, minutes_ago=10)
    _running(pipeline, minutes_ago=0.5, run_id="manual__fresh")  # within its baseline
    report = check_running_runs()
    assert (report.checked, report.flagged, report.alerts_raised) == (2, 1, 1)
    assert report.flagged_runs == [str(late.pk)]
    check_running_runs()  # every few minutes: still one alert, the run counted once
    alert = Alert.objects.get()
    assert (alert.alert_type, alert.level, alert.occurrences, alert.pipeline_run) == (
        "performance_degradation",
        "warning",
        1,
        late,
    )
    meta = alert.metadata
    assert meta["phase"] == "running" and meta["reason"] == "baseline"
    assert meta["baseline"]["median"] == pytest.approx(60.0, rel=0.02)
    assert meta["observed"] >= 600 and meta["ratio"] >= 10
    assert (meta["window"], meta["n"]) == (30, 12)
    assert "is still running after" in alert.message


def test_check_running_runs_little_history_not_flagged(pipeline):
    seed_history(pipeline, {}, runs=9, run_seconds=60.0, rows=100)
    _running(pipeline, minutes_ago=120)
    assert check_running_runs().flagged == 0


def test_check_running_runs_hard_limit_without_history(pipeline):
    from django_etl.monitoring.models import Alert

    pipeline.config = {**pipeline.config, "monitoring": {"max_run_seconds": 300}}
    pipeline.save()
    _running(pipeline, minutes_ago=6)
    assert check_running_runs().flagged == 1
    alert = Alert.objects.get()
    assert (alert.level, alert.metadata["reason"], alert.metadata["limit_seconds"]) == ("error", "limit", 300)


def test_check_running_runs_finished_slow_run_updates_the_same_alert(pipeline, make_step):
    from django_etl.monitoring.models import Alert
    from django_etl.monitoring.performance import check_finished_run

    seed_history(pipeline, {}, runs=12, run_seconds=60.0, rows=100)
    run = _running(pipeline, minutes_ago=10)
    check_running_runs()
    run.status, run.completed_at = "success", timezone.now()
    run.metrics = {"duration_seconds": 600.0, "rows_moved": 100}
    run.save()
    check_finished_run(run)
    alert = Alert.objects.get()
    assert (alert.occurrences, alert.metadata["phase"]) == (2, "finished")


def test_check_runs_command_prints_the_report(pipeline, capsys):
    seed_history(pipeline, {}, runs=12, run_seconds=60.0, rows=100)
    _running(pipeline, minutes_ago=10)
    call_command("check_runs")
    out = capsys.readouterr().out
    assert "1 running run(s) checked; 1 overdue, 1 new alert(s)." in out
    assert "running for" in out
