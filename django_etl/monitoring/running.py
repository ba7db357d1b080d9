"""Runs still running far past their baseline, flagged while they run (``check_runs``, the etl_run_checks DAG).

Every few minutes (ETL_RUN_CHECKS_SCHEDULE) each PipelineRun Django holds as *running* is compared with its
pipeline's run-duration baseline (``baselines.py``, the pipeline's last ``window`` successful runs): a run whose
elapsed time is past ``overdue_ratio`` times the median (and past the tolerance), or past the hard limit
``max_run_seconds``, raises the pipeline's PERFORMANCE_DEGRADATION alert (the same condition the end-of-run
check uses, so an overdue run that ends slow is one alert). Each run counts once however often it is seen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from django_etl.alertpolicy import Policy, resolve
from django_etl.monitoring.baselines import Baseline, clean_values, deviation, robust_baseline
from django_etl.monitoring.choices import AlertLevel, AlertType
from django_etl.monitoring.performance import degradation_condition


@dataclass
class RunChecksReport:
    checked: int = 0
    flagged: int = 0
    alerts_raised: int = 0
    flagged_runs: list[str] = field(default_factory=list)


def overdue(elapsed: float, baseline: Baseline | None, policy: Policy) -> dict[str, Any] | None:
    """Why a run ``elapsed`` seconds in is overdue (past its baseline or the hard limit), else None."""
    if policy.max_run_seconds and elapsed > policy.max_run_seconds:
        return {"reason": "limit", "limit_seconds": policy.max_run_seconds}
    if baseline is None or elapsed < policy.min_seconds:
        return None
    found = deviation(
        "duration_seconds", elapsed, baseline, tolerance=policy.tolerance, min_ratio=policy.overdue_ratio
    )
    return {"reason": "baseline", "ratio": found.ratio, "score": found.score} if found else None


def duration_baseline(pipeline_id, before, policy: Policy, using: str) -> Baseline | None:
    """The run-duration baseline of a pipeline's last successful runs that started before ``before``."""
    from django.db.models.fields.json import KT

    from django_etl.runs.choices import RunStatus
    from django_etl.runs.models import PipelineRun

    rows = (
        PipelineRun.objects.using(using)
        .filter(pipeline_id=pipeline_id, status=RunStatus.SUCCESS, started_at__lt=before)
        .order_by("-started_at")
        .annotate(duration=KT("metrics__duration_seconds"))
        .values_list("started_at", "completed_at", "duration")[: policy.window]
    )
    values = []
    for started, completed, duration in rows:
        seconds = clean_values([duration])
        if seconds:
            values.append(seconds[0])
        elif started and completed:
            values.append((completed - started).total_seconds())
    return robust_baseline(values, min_history=policy.min_history)


def check_running_runs(
    *, now: dt.datetime | None = None, using: str = "default", out: Callable[[str], None] | None = None
) -> RunChecksReport:
    """Flag every running run that is far past its pipeline's baseline or the hard limit."""
    from django_etl.monitoring.lifecycle import raise_alert
    from django_etl.runs.choices import RunStatus
    from django_etl.runs.models import PipelineRun

    now = now or timezone.now()
    report = RunChecksReport()
    running = (
        PipelineRun.objects.using(using)
        .filter(status=RunStatus.RUNNING, started_at__lte=now)  # the partial index active_runs_idx
        .select_related("pipeline__organization")
        .order_by("started_at")
    )
    for run in running:
        report.checked += 1
        pipeline = run.pipeline
        policy = resolve(pipeline.config, pipeline.organization.settings)
        if not policy.enabled:
            continue
        elapsed = (now - run.started_at).total_seconds()
        baseline = duration_baseline(pipeline.pk, run.started_at, policy, using)
        why = overdue(elapsed, baseline, policy)
        if why is None:
            continue
        report.flagged += 1
        report.flagged_runs.append(str(run.pk))
        run_id = run.airflow_run_id or str(run.pk)
        if why["reason"] == "limit":
            words = f"past its limit of {policy.max_run_seconds} s (monitoring.max_run_seconds)"
        else:
            words = f"{why['ratio']:.1f}x its median duration of {baseline.median:.0f} s (last {baseline.n} successful runs)"
        metadata = {
            "phase": "running",
            "run_id": run_id,
            "measure": "elapsed_seconds",
            "observed": round(elapsed, 3),
            "baseline": baseline.as_dict() if baseline else None,
            "ratio": round(elapsed / baseline.median, 3) if baseline and baseline.median else None,
            "window": policy.window,
            "n": baseline.n if baseline else 0,
            "reason": why["reason"],
            "limit_seconds": why.get("limit_seconds"),
            "overdue_ratio": policy.overdue_ratio,
            "event_key": "performance_running",
        }
        _, created = raise_alert(
            alert_type=AlertType.PERFORMANCE_DEGRADATION,
            level=AlertLevel.ERROR if why["reason"] == "limit" else AlertLevel.WARNING,
            condition_key=degradation_condition(pipeline.pk),
            message=f"Run {run_id} of pipeline {pipeline.name!r} is still running after {elapsed:.0f} s, {words}.",
            metadata=metadata,
            organization_id=pipeline.organization_id,
            pipeline_run=run,
            using=using,
        )
        report.alerts_raised += int(created)
        if out is not None:
            out(f"run {run_id} of {pipeline.name!r}: running for {elapsed:.0f} s, {words}")
    return report
