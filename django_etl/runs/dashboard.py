"""Every query of the organization dashboard, in one place: a fixed number of queries, whatever the volume.

Each query is shaped for an index of the seed (docs/partitioning.md): the last run of each pipeline and the
success rates read ``pipeline_runs_dashboard_idx`` (pipeline, -started_at, status); the step statistics read the
daily rollup ``task_runs_daily`` (runs/rollup.py) plus the task runs newer than its mark, filtered on ``status``
and both sides of the partition key ``run_started_at`` (``task_runs_status_run_idx``), so they prune to the
window's months. ``bench/dashboard.py`` times these same functions at 5 million task runs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connections
from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
)
from django.utils import timezone

from django_etl.monitoring.choices import AlertLevel
from django_etl.monitoring.models import Alert
from django_etl.pipelines.models import Pipeline, PipelineStep
from django_etl.runs import rollup
from django_etl.runs.choices import RunStatus
from django_etl.runs.models import PipelineRun, RollupMark, StepDay, TaskRun

WINDOW_DAYS = 30
SHORT_WINDOW_DAYS = 7
TREND_RUNS = 20  # bars per pipeline in the duration trend
TOP_STEPS = 5
# A run that ended: its outcome counts in the success rate (running or pending ones do not yet).
ENDED = [RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMEOUT]
LEVELS = [level.value for level in reversed(AlertLevel)]  # critical first


@dataclass
class Rate:
    succeeded: int = 0
    ended: int = 0

    @property
    def percent(self) -> float | None:
        return 100 * self.succeeded / self.ended if self.ended else None


@dataclass
class PipelineHealth:
    pipeline: Pipeline
    last_run: PipelineRun | None = None
    rate_7d: Rate = field(default_factory=Rate)
    rate_30d: Rate = field(default_factory=Rate)
    trend: list[tuple[float, str]] = field(default_factory=list)  # (seconds, status), oldest first
    open_alerts: dict[str, int] = field(default_factory=dict)


@dataclass
class StepStat:
    step: str
    pipeline: str
    value: float  # seconds for the slowest steps, failures for the most failing


@dataclass
class Dashboard:
    organization: object
    pipelines: list[PipelineHealth]
    open_alerts: dict[str, int]
    slowest_steps: list[StepStat]
    failing_steps: list[StepStat]


def build(organization, *, now=None) -> Dashboard:
    """The dashboard of one organization: seven queries, however many pipelines and runs it has."""
    now = now or timezone.now()
    since = now - timedelta(days=WINDOW_DAYS)
    pipelines = pipelines_with_last_run(organization)
    health = {p.pk: PipelineHealth(p) for p in pipelines}
    last_ids = [h.pipeline.last_run_id for h in health.values() if h.pipeline.last_run_id]
    for run in PipelineRun.objects.filter(pk__in=last_ids).select_related("triggered_by"):
        health[run.pipeline_id].last_run = run
    pipeline_ids = list(health)
    for row in success_counts(pipeline_ids, since, now - timedelta(days=SHORT_WINDOW_DAYS)):
        item = health.get(row["pipeline_id"])
        if item:
            item.rate_30d = Rate(row["ok_30"], row["ended_30"])
            item.rate_7d = Rate(row["ok_7"], row["ended_7"])
    trend_rows = sorted(duration_trend(pipeline_ids, since), key=lambda row: row["started_at"])
    for row in trend_rows:  # oldest first
        item = health.get(row["pipeline_id"])
        if item:
            item.trend.append((row["took"].total_seconds(), row["status"]))
    totals: dict[str, int] = defaultdict(int)
    for row in open_alert_counts(organization):
        item = health.get(row["pipeline_run__pipeline_id"])
        if item:
            item.open_alerts[row["level"]] = row["n"]
        totals[row["level"]] += row["n"]
    for item in health.values():
        item.open_alerts = {level: item.open_alerts[level] for level in LEVELS if level in item.open_alerts}
    # The rollup's mark came with the pipelines (no query of its own): task runs after it are read live.
    mark = pipelines[0].rollup_mark if pipelines else None
    slowest, failing = step_stats(organization, since, now, mark=mark)
    return Dashboard(
        organization=organization,
        pipelines=list(health.values()),
        open_alerts={level: totals[level] for level in LEVELS if totals.get(level)},
        slowest_steps=slowest,
        failing_steps=failing,
    )


def pipelines_with_last_run(organization) -> list[Pipeline]:
    return list(pipelines_with_last_run_query(organization))


def pipelines_with_last_run_query(organization):
    """The organization's pipelines, each with the id of its latest run (one index probe per pipeline)."""
    latest = PipelineRun.objects.filter(pipeline=OuterRef("pk")).order_by("-started_at").values("pk")[:1]
    mark = RollupMark.objects.filter(name=rollup.MARK).values("computed_until")[:1]
    return (
        Pipeline.objects.filter(organization=organization)
        .annotate(last_run_id=Subquery(latest), rollup_mark=Subquery(mark))
        .only("id", "name", "status", "organization_id")
        .order_by("name")
    )


def success_counts(pipeline_ids, since, short_since):
    """Ended and successful runs per pipeline in both windows: (pipeline, started_at, status) is the index."""
    ended = Q(status__in=ENDED)
    recent = Q(started_at__gte=short_since)
    return (
        PipelineRun.objects.filter(pipeline_id__in=pipeline_ids, started_at__gte=since)
        .values("pipeline_id")
        .annotate(  # COUNT(status): every column it reads is in the index (an index-only scan)
            ended_30=Count("status", filter=ended),
            ok_30=Count("status", filter=Q(status=RunStatus.SUCCESS)),
            ended_7=Count("status", filter=ended & recent),
            ok_7=Count("status", filter=Q(status=RunStatus.SUCCESS) & recent),
        )
        .order_by()
    )


def duration_trend(pipeline_ids, since):
    """The last ``TREND_RUNS`` ended runs of each pipeline in the window (pipeline, status, took, started_at).

    One ``UNION ALL`` of a ``LIMIT`` per pipeline: each part walks its pipeline's newest runs in the index and
    stops after ``TREND_RUNS`` (a window function over the whole window read every run of a busy pipeline).
    """
    if not pipeline_ids:
        return []
    took = ExpressionWrapper(F("completed_at") - F("started_at"), output_field=DurationField())
    ended = PipelineRun.objects.filter(started_at__gte=since, status__in=ENDED, completed_at__isnull=False)
    parts = [
        ended.filter(pipeline_id=pipeline_id)
        .annotate(took=took)
        .values("pipeline_id", "status", "took", "started_at")
        .order_by("-started_at")[:TREND_RUNS]
        for pipeline_id in pipeline_ids
    ]
    return parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]


def open_alert_counts(organization):
    """Open alerts of the organization by pipeline and level: by ``Alert.organization``, so run-less alerts
    (credential expiry, compile errors) count in the totals too (their pipeline is None)."""
    return (
        Alert.objects.filter(is_resolved=False, organization=organization)
        .values("pipeline_run__pipeline_id", "level")
        .annotate(n=Count("pk"))
        .order_by()
    )


ROLLUP_SQL = f"""
    SELECT d.pipeline_step_id, s.name AS pipeline_step__name, p.name AS pipeline_step__pipeline__name,
           d.succeeded, d.failed, d.timed, d.seconds
    FROM (
        SELECT pipeline_step_id, sum(succeeded) AS succeeded, sum(failed) AS failed, sum(timed) AS timed,
               sum(success_seconds) AS seconds
        FROM "{StepDay._meta.db_table}" WHERE organization_id = %s AND day >= %s AND day <= %s
        GROUP BY pipeline_step_id
    ) d
    JOIN "{PipelineStep._meta.db_table}" s ON s.id = d.pipeline_step_id
    JOIN "{Pipeline._meta.db_table}" p ON p.id = s.pipeline_id
"""


def step_rollup_query(organization, since, until) -> tuple[str, list]:
    """The window's days of the organization's steps, summed from ``task_runs_daily`` (runs/rollup.py).

    Summed first (an index-only scan of ``task_runs_daily_org_day_idx``), then joined to the names: the ORM
    would join every day's row before grouping. Returns (sql, params).
    """
    return ROLLUP_SQL, [organization.pk, since.date(), until.date()]


def step_rollup_rows(organization, since, until) -> list[dict]:
    sql, params = step_rollup_query(organization, since, until)
    with connections[StepDay.objects.db].cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def step_live_query(organization, since, until, mark=None):
    """The task runs the rollup does not hold yet: of runs started since its ``mark`` (the whole window without).

    Bounded on both sides of the partition key, so it reads at most the window's two months (never the default
    partition) through ``task_runs_status_run_idx``; past the mark it is a few minutes of runs. The bound is a
    literal (not a subquery), so the planner prunes and estimates with it.
    """
    took = ExpressionWrapper(F("completed_at") - F("started_at"), output_field=DurationField())
    success = Q(status=RunStatus.SUCCESS)
    timed = success & Q(started_at__isnull=False, completed_at__isnull=False)
    return (
        TaskRun.objects.filter(
            status__in=[RunStatus.SUCCESS, RunStatus.FAILED],
            run_started_at__gte=since,
            run_started_at__lte=until,
            pipeline_step__pipeline__organization=organization,
        )
        .filter(run_started_at__gte=max(mark or since, since))
        .values("pipeline_step_id", "pipeline_step__name", "pipeline_step__pipeline__name")
        .annotate(
            succeeded=Count("pk", filter=success),
            failed=Count("pk", filter=Q(status=RunStatus.FAILED)),
            timed=Count("pk", filter=timed),
            seconds=Sum(took, filter=timed),
        )
        .order_by()
    )


def step_stats(organization, since, until, *, mark=None) -> tuple[list[StepStat], list[StepStat]]:
    """The slowest steps (mean duration of successful task runs) and the most failing, over the window.

    ``mark``: how far the rollup is computed (:func:`rollup.computed_until`); None reads everything live.
    """
    rolled = step_rollup_rows(organization, since, until) if mark else []
    totals: dict = {}
    for row in [*rolled, *step_live_query(organization, since, until, mark)]:
        seconds = row["seconds"] or 0
        seconds = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        item = totals.setdefault(
            row["pipeline_step_id"],
            {
                "step": row["pipeline_step__name"],
                "pipeline": row["pipeline_step__pipeline__name"],
                "failed": 0,
                "timed": 0,
                "seconds": 0.0,
            },
        )
        item["failed"] += row["failed"] or 0
        item["timed"] += row["timed"] or 0
        item["seconds"] += seconds
    slowest = sorted(
        (
            StepStat(t["step"], t["pipeline"], t["seconds"] / t["timed"])
            for t in totals.values()
            if t["timed"]
        ),
        key=lambda stat: (-stat.value, stat.pipeline, stat.step),
    )
    failing = sorted(
        (StepStat(t["step"], t["pipeline"], t["failed"]) for t in totals.values() if t["failed"]),
        key=lambda stat: (-stat.value, stat.pipeline, stat.step),
    )
    return slowest[:TOP_STEPS], failing[:TOP_STEPS]
