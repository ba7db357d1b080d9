"""PERFORMANCE_DEGRADATION and volume (DATA_QUALITY) alerts: a finished run against its pipeline's baseline.

At the end of each successful run (write-back's reconciliation calls :func:`check_finished_run`) the run's
duration, each step's duration and rows per second, and the rows of the run and of each step are compared with
the robust baseline (``baselines.py``) of the same pipeline's last ``window`` successful runs. Slower runs or
steps raise one PERFORMANCE_DEGRADATION warning per pipeline (condition ``performance_degradation:<pipeline>``,
also the one ``check_runs`` raises while a run is overdue); rows far below or above their median raise one
DATA_QUALITY warning per pipeline (``data_quality:<pipeline>:volume``). Each lists every finding; its
``metadata`` holds the main one's ``baseline`` (median, mad), ``observed``, ``ratio``, ``window`` and ``n``.
A later run back within its baseline resolves them (``condition_cleared``). Two indexed queries per run end:
the pipeline's recent successful runs (``pipeline_runs_dashboard_idx``), then their task runs (partition
pruned by ``run_started_at``, ``(pipeline_run, status)`` index).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django_etl.alertpolicy import Policy, resolve
from django_etl.monitoring.baselines import Deviation, deviation, robust_baseline
from django_etl.monitoring.choices import AlertLevel, AlertType

DURATION = "duration_seconds"
THROUGHPUT = "rows_per_second"
ROWS = "rows"
VOLUME_CONDITION = "volume"


@dataclass
class StepFacts:
    step_id: str
    name: str = ""
    duration: float | None = None
    rows: float | None = None
    throughput: float | None = None


@dataclass
class RunFacts:
    duration: float | None = None
    rows: float | None = None
    steps: dict[str, StepFacts] = field(default_factory=dict)


@dataclass
class Comparison:
    """What a finished run's check found; ``compared``: the run had enough history to be compared at all."""

    slow: list[Deviation] = field(default_factory=list)
    volume: list[Deviation] = field(default_factory=list)
    over_limit: dict[str, Any] | None = None
    compared: bool = False
    window: int = 0
    history: int = 0


# ---------------------------------------------------------------- pure comparison
def compare(current: RunFacts, history: list[RunFacts], policy: Policy) -> Comparison:
    """The deviations of ``current`` from ``history`` (newest first, successful runs only) under ``policy``."""
    result = Comparison(window=policy.window, history=len(history))
    if policy.max_run_seconds and current.duration is not None and current.duration > policy.max_run_seconds:
        result.over_limit = {"observed": round(current.duration, 3), "limit_seconds": policy.max_run_seconds}
    history = history[: policy.window]
    tolerance, min_history = policy.tolerance, policy.min_history

    def base(values):
        return robust_baseline(values, min_history=min_history)

    run_duration = base(h.duration for h in history)
    result.compared = run_duration is not None
    if current.duration is not None and current.duration >= policy.min_seconds:
        found = deviation(
            DURATION, current.duration, run_duration, tolerance=tolerance, min_ratio=policy.min_ratio
        )
        _add(result.slow, found)
    found = deviation(
        ROWS,
        current.rows,
        base(h.rows for h in history),
        tolerance=tolerance,
        min_ratio=policy.volume_ratio,
        direction="either",
    )
    _add(result.volume, found)
    for step_id, step in current.steps.items():
        past = [h.steps[step_id] for h in history if step_id in h.steps]
        where = {"step_id": step_id, "step_name": step.name}
        volume = deviation(
            ROWS,
            step.rows,
            base(p.rows for p in past),
            tolerance=tolerance,
            min_ratio=policy.volume_ratio,
            direction="either",
            **where,
        )
        _add(result.volume, volume)
        if step.duration is None or step.duration < policy.min_seconds:
            continue
        durations = base(p.duration for p in past)
        result.compared = result.compared or durations is not None
        _add(
            result.slow,
            deviation(
                DURATION, step.duration, durations, tolerance=tolerance, min_ratio=policy.min_ratio, **where
            ),
        )
        # Rows per second only mean something for a step that took measurable time, and fall with the rows
        # themselves: a step that got far fewer rows has a volume finding, not a slowness one.
        if step.rows and not (volume and volume.direction == "below"):
            throughputs = base(p.throughput for p in past if p.rows)
            _add(
                result.slow,
                deviation(
                    THROUGHPUT,
                    step.throughput,
                    throughputs,
                    tolerance=tolerance,
                    min_ratio=policy.min_ratio,
                    direction="below",
                    **where,
                ),
            )
    return result


def _add(findings: list[Deviation], found: Deviation | None) -> None:
    if found is not None:
        findings.append(found)


def main_finding(findings: list[Deviation]) -> Deviation:
    """The run's own figure first, else the step furthest from its median (by ratio, either way)."""
    for found in findings:
        if found.step_id is None:
            return found

    def distance(found: Deviation) -> float:
        if found.ratio is None:
            return float("inf")
        return found.ratio if found.ratio >= 1 else 1 / max(found.ratio, 1e-9)

    return max(findings, key=distance)


def describe(found: Deviation) -> str:
    """One finding in words: "step 'Enrich' took 42.0 s, 4.2x its median of 10.0 s"."""
    who = f"step {found.step_name!r}" if found.step_id else "the run"
    median = found.baseline.median
    ratio = f"{found.ratio:.1f}x" if found.ratio is not None else "far above"
    if found.measure == DURATION:
        return f"{who} took {found.observed:.1f} s, {ratio} its median of {median:.1f} s"
    if found.measure == THROUGHPUT:
        return f"{who} moved {found.observed:,.0f} rows/s, {ratio} its median of {median:,.0f} rows/s"
    return f"{who} moved {found.observed:,.0f} rows, {ratio} its median of {median:,.0f}"


def metadata_of(findings: list[Deviation], comparison: Comparison, policy: Policy) -> dict[str, Any]:
    main = main_finding(findings)
    return {
        **main.as_dict(comparison.window),
        "findings": [f.as_dict(comparison.window) for f in findings],
        "policy": {
            "tolerance": policy.tolerance,
            "min_ratio": policy.min_ratio,
            "volume_ratio": policy.volume_ratio,
            "min_history": policy.min_history,
        },
    }


# ---------------------------------------------------------------- facts from the database
def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _seconds(start, end) -> float | None:
    return (end - start).total_seconds() if start and end else None


def step_facts(step_id, name, metrics: dict[str, Any] | None, started=None, completed=None) -> StepFacts:
    """A step's duration (its own timing, else the task's), rows (out, else in) and rows per second."""
    metrics = metrics or {}
    duration = _number(metrics.get("duration_seconds"))
    if duration is None:
        duration = _seconds(started, completed)
    rows = _number(metrics.get("rows_out")) or _number(metrics.get("rows_in"))
    throughput = _number(metrics.get("rows_per_second"))
    if throughput is None and rows and duration:
        throughput = rows / duration
    return StepFacts(str(step_id), name, duration, rows, throughput)


def current_facts(pipeline_run, task_runs, names: dict[str, str]) -> RunFacts:
    metrics = pipeline_run.metrics or {}
    duration = _number(metrics.get("duration_seconds"))
    if duration is None:
        duration = _seconds(pipeline_run.started_at, pipeline_run.completed_at)
    facts = RunFacts(duration=duration, rows=_number(metrics.get("rows_moved")))
    from django_etl.runs.choices import RunStatus

    for task_run in task_runs:
        if task_run.status != RunStatus.SUCCESS:
            continue
        step_id = str(task_run.pipeline_step_id)
        facts.steps[step_id] = step_facts(
            step_id, names.get(step_id, ""), task_run.metrics, task_run.started_at, task_run.completed_at
        )
    return facts


def recent_history(pipeline_run, window: int, using: str) -> list[RunFacts]:
    """The pipeline's last ``window`` successful runs before this one, newest first: two indexed queries."""
    from django.db.models.fields.json import KT

    from django_etl.runs.choices import RunStatus
    from django_etl.runs.models import PipelineRun, TaskRun

    runs = list(
        PipelineRun.objects.using(using)
        .filter(
            pipeline_id=pipeline_run.pipeline_id,
            status=RunStatus.SUCCESS,
            started_at__lt=pipeline_run.started_at,
        )
        .order_by("-started_at")
        .annotate(duration=KT("metrics__duration_seconds"), rows=KT("metrics__rows_moved"))
        .values_list("pk", "started_at", "completed_at", "duration", "rows")[:window]
    )
    if not runs:
        return []
    facts: dict[Any, RunFacts] = {}
    for pk, started, completed, duration, rows in runs:
        seconds = _number(duration)
        facts[pk] = RunFacts(
            duration=seconds if seconds is not None else _seconds(started, completed), rows=_number(rows)
        )
    steps = (
        TaskRun.objects.using(using)
        .filter(
            pipeline_run_id__in=list(facts),
            # The partition key: only the partitions of those runs are read.
            run_started_at__gte=runs[-1][1],
            run_started_at__lte=runs[0][1],
            status=RunStatus.SUCCESS,
        )
        .annotate(
            duration=KT("metrics__duration_seconds"),
            rows_out=KT("metrics__rows_out"),
            rows_in=KT("metrics__rows_in"),
            throughput=KT("metrics__rows_per_second"),
        )
        .values_list(
            "pipeline_run_id",
            "pipeline_step_id",
            "started_at",
            "completed_at",
            "duration",
            "rows_out",
            "rows_in",
            "throughput",
        )
    )
    for run_id, step_id, started, completed, duration, rows_out, rows_in, throughput in steps:
        metrics = {
            "duration_seconds": duration,
            "rows_out": rows_out,
            "rows_in": rows_in,
            "rows_per_second": throughput,
        }
        facts[run_id].steps[str(step_id)] = step_facts(step_id, "", metrics, started, completed)
    return [facts[pk] for pk, *_ in runs]


def pipeline_facts(pipeline_id, using: str) -> dict[str, Any] | None:
    """name, organization, config and organization settings of a pipeline, in one query."""
    from django_etl.pipelines.models import Pipeline

    return (
        Pipeline.objects.using(using)
        .filter(pk=pipeline_id)
        .values("name", "organization_id", "config", "organization__settings")
        .first()
    )


# ---------------------------------------------------------------- the check at a run's end
def check_finished_run(
    pipeline_run, task_runs=None, *, using: str = "default", pipeline=None, names=None
) -> Comparison | None:
    """Compare a finished run with its pipeline's baseline; raise or resolve its alerts. None: not checked.

    ``pipeline`` (:func:`pipeline_facts`) and ``names`` (:func:`step_names`): when the caller read them already.
    """
    from django_etl.runs.choices import RunStatus

    if pipeline_run.status != RunStatus.SUCCESS:
        return None  # a failed run's timing says nothing about speed (its failure has its own alerts)
    pipeline = pipeline or pipeline_facts(pipeline_run.pipeline_id, using)
    if pipeline is None:
        return None
    policy = resolve(pipeline["config"], pipeline["organization__settings"])
    if not policy.enabled:
        return None
    if task_runs is None:
        from django_etl.runs.models import TaskRun

        task_runs = list(
            TaskRun.objects.using(using).filter(
                pipeline_run=pipeline_run, run_started_at=pipeline_run.started_at
            )
        )
    names = names if names is not None else step_names(pipeline_run.pipeline_id, using)
    comparison = compare(
        current_facts(pipeline_run, task_runs, names),
        recent_history(pipeline_run, policy.window, using),
        policy,
    )
    _name_steps(comparison, names)
    raise_findings(pipeline_run, pipeline, comparison, policy, using=using)
    return comparison


def step_names(pipeline_id, using: str) -> dict[str, str]:
    """step id -> name of a pipeline's steps, in one query."""
    return {step_id: name for step_id, (name, _) in step_rows(pipeline_id, using).items()}


def step_rows(pipeline_id, using: str) -> dict[str, tuple[str, Any]]:
    """step id -> (name, the step's own memory limit in MiB or None), in one query."""
    from django.db.models.fields.json import KT

    from django_etl.pipelines.models import PipelineStep

    return {
        str(pk): (name, _number(limit))
        for pk, name, limit in PipelineStep.objects.using(using)
        .filter(pipeline_id=pipeline_id)
        .annotate(limit=KT("config__memory_limit_mb"))
        .values_list("pk", "name", "limit")
    }


def _name_steps(comparison: Comparison, names: dict[str, str]) -> None:
    for findings in (comparison.slow, comparison.volume):
        for index, found in enumerate(findings):
            if found.step_id and not found.step_name:
                findings[index] = Deviation(**{**found.__dict__, "step_name": names.get(found.step_id, "")})


def degradation_condition(pipeline_id) -> str:
    from django_etl.monitoring.lifecycle import condition_key

    return condition_key(AlertType.PERFORMANCE_DEGRADATION, pipeline_id)


def volume_condition(pipeline_id) -> str:
    from django_etl.monitoring.lifecycle import condition_key

    return condition_key(AlertType.DATA_QUALITY, pipeline_id, VOLUME_CONDITION)


def raise_findings(
    pipeline_run, pipeline: dict[str, Any], comparison: Comparison, policy: Policy, *, using: str
):
    """One degradation and one volume alert at most for this run; resolve them when the run was normal."""
    from django_etl.monitoring.lifecycle import raise_alert

    name = pipeline["name"]
    common = {
        "organization_id": pipeline["organization_id"],
        "pipeline_run": pipeline_run,
        "using": using,
    }
    run_facts = {"run_id": pipeline_run.airflow_run_id or str(pipeline_run.pk), "phase": "finished"}
    cleared = []
    if comparison.slow or comparison.over_limit:
        metadata = metadata_of(comparison.slow, comparison, policy) if comparison.slow else {}
        words = [describe(f) for f in comparison.slow]
        if comparison.over_limit:
            metadata["over_limit"] = comparison.over_limit
            words.insert(
                0,
                f"the run took {comparison.over_limit['observed']:.0f} s, past its limit of "
                f"{comparison.over_limit['limit_seconds']} s",
            )
            metadata.setdefault("observed", comparison.over_limit["observed"])
        raise_alert(
            alert_type=AlertType.PERFORMANCE_DEGRADATION,
            level=AlertLevel.ERROR if comparison.over_limit else AlertLevel.WARNING,
            condition_key=degradation_condition(pipeline_run.pipeline_id),
            message=f"Pipeline {name!r} ran slower than usual: {'; '.join(words)}" + _over(comparison),
            metadata={**metadata, **run_facts, "event_key": "performance_finished"},
            **common,
        )
    elif comparison.compared:
        cleared.append(degradation_condition(pipeline_run.pipeline_id))
    if comparison.volume:
        raise_alert(
            alert_type=AlertType.DATA_QUALITY,
            level=AlertLevel.WARNING,
            condition_key=volume_condition(pipeline_run.pipeline_id),
            message=f"Pipeline {name!r} moved an unusual number of rows: "
            + "; ".join(describe(f) for f in comparison.volume)
            + _over(comparison),
            metadata={
                **metadata_of(comparison.volume, comparison, policy),
                **run_facts,
                "check": "volume",
                "event_key": "volume",
            },
            **common,
        )
    elif comparison.compared:
        cleared.append(volume_condition(pipeline_run.pipeline_id))
    if cleared:
        clear_conditions(pipeline_run, cleared, using, "a later run was back within its baseline")


def _over(comparison: Comparison) -> str:
    return f" (baseline: the last {comparison.history} successful runs, window {comparison.window})."


def clear_conditions(pipeline_run, conditions: list[str], using: str, note: str) -> int:
    """Resolve the open alerts of ``conditions`` raised by this run or an earlier one (never a later one).

    The usual case (nothing open) costs one read on the open-condition index and no transaction.
    """
    from django.db.models import Q

    from django_etl.monitoring.lifecycle import CONDITION_CLEARED, resolve_alerts
    from django_etl.monitoring.models import Alert

    alerts = Alert.objects.using(using)
    if not alerts.filter(condition_key__in=conditions, is_resolved=False).exists():
        return 0
    return resolve_alerts(
        condition_keys=conditions,
        alerts=alerts.filter(
            Q(pipeline_run__isnull=True) | Q(pipeline_run__started_at__lte=pipeline_run.started_at)
        ),
        how=CONDITION_CLEARED,
        pipeline_run=pipeline_run,
        note=note,
        using=using,
    )
