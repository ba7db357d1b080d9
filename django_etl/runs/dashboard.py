"""Every query of the organization dashboard, in one place: a fixed number of queries, whatever the volume.

Each query is shaped for an index of the seed (docs/partitioning.md): the last run of each pipeline and the
success rates read ``pipeline_runs_dashboard_idx`` (pipeline, -started_at, status); step statistics filter task runs
on ``status`` and the partition key ``run_started_at`` (``task_runs_status_run_idx``), so they prune to the recent
months. The partitions issue benchmarks these same functions at millions of rows (``bench/console.py``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, OuterRef, Q, Subquery, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from django_etl.monitoring.choices import AlertLevel
from django_etl.monitoring.models import Alert
from django_etl.pipelines.models import Pipeline
from django_etl.runs.choices import RunStatus
from django_etl.runs.models import PipelineRun, TaskRun

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
    health = {p.pk: PipelineHealth(p) for p in pipelines_with_last_run(organization)}
    last_ids = [h.pipeline.last_run_id for h in health.values() if h.pipeline.last_run_id]
    for run in PipelineRun.objects.filter(pk__in=last_ids).select_related("triggered_by"):
        health[run.pipeline_id].last_run = run
    pipeline_ids = list(health)
    for row in success_counts(pipeline_ids, since, now - timedelta(days=SHORT_WINDOW_DAYS)):
        item = health.get(row["pipeline_id"])
        if item:
            item.rate_30d = Rate(row["ok_30"], row["ended_30"])
            item.rate_7d = Rate(row["ok_7"], row["ended_7"])
    for row in duration_trend(pipeline_ids, since):
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
        item.trend.reverse()  # the query reads newest first (the index order)
        item.open_alerts = {level: item.open_alerts[level] for level in LEVELS if level in item.open_alerts}
    return Dashboard(
        organization=organization,
        pipelines=list(health.values()),
        open_alerts={level: totals[level] for level in LEVELS if totals.get(level)},
        slowest_steps=slowest_steps(organization, since, now),
        failing_steps=failing_steps(organization, since, now),
    )


def pipelines_with_last_run(organization) -> list[Pipeline]:
    return list(pipelines_with_last_run_query(organization))


def pipelines_with_last_run_query(organization):
    """The organization's pipelines, each with the id of its latest run (one index probe per pipeline)."""
    latest = PipelineRun.objects.filter(pipeline=OuterRef("pk")).order_by("-started_at").values("pk")[:1]
    return (
        Pipeline.objects.filter(organization=organization)
        .annotate(last_run_id=Subquery(latest))
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
        .annotate(
            ended_30=Count("pk", filter=ended),
            ok_30=Count("pk", filter=Q(status=RunStatus.SUCCESS)),
            ended_7=Count("pk", filter=ended & recent),
            ok_7=Count("pk", filter=Q(status=RunStatus.SUCCESS) & recent),
        )
        .order_by()
    )


def duration_trend(pipeline_ids, since):
    """The last ``TREND_RUNS`` ended runs of each pipeline in the window, newest first."""
    took = ExpressionWrapper(F("completed_at") - F("started_at"), output_field=DurationField())
    return (
        PipelineRun.objects.filter(
            pipeline_id__in=pipeline_ids,
            started_at__gte=since,
            status__in=ENDED,
            completed_at__isnull=False,
        )
        .annotate(
            took=took,
            position=Window(RowNumber(), partition_by=[F("pipeline_id")], order_by=F("started_at").desc()),
        )
        .filter(position__lte=TREND_RUNS)
        .values("pipeline_id", "status", "took")
        .order_by("pipeline_id", "position")
    )


def open_alert_counts(organization):
    """Open alerts of the organization by pipeline and level: by ``Alert.organization``, so run-less alerts
    (credential expiry, compile errors) count in the totals too (their pipeline is None)."""
    return (
        Alert.objects.filter(is_resolved=False, organization=organization)
        .values("pipeline_run__pipeline_id", "level")
        .annotate(n=Count("pk"))
        .order_by()
    )


def _step_rows(organization, since, until, status):
    # A window bounded on both sides of the partition key prunes task_runs to the window's months (at most
    # two for 30 days) and skips the default partition; status + run_started_at is task_runs_status_run_idx.
    return TaskRun.objects.filter(
        status=status,
        run_started_at__gte=since,
        run_started_at__lte=until,
        pipeline_step__pipeline__organization=organization,
    ).values("pipeline_step_id", "pipeline_step__name", "pipeline_step__pipeline__name")


def slowest_steps_query(organization, since, until):
    took = ExpressionWrapper(F("completed_at") - F("started_at"), output_field=DurationField())
    return (
        _step_rows(organization, since, until, RunStatus.SUCCESS)
        .filter(completed_at__isnull=False, started_at__isnull=False)
        .annotate(mean=Avg(took))
        .order_by("-mean")[:TOP_STEPS]
    )


def slowest_steps(organization, since, until) -> list[StepStat]:
    rows = slowest_steps_query(organization, since, until)
    return [
        StepStat(
            row["pipeline_step__name"], row["pipeline_step__pipeline__name"], row["mean"].total_seconds()
        )
        for row in rows
    ]


def failing_steps_query(organization, since, until):
    rows = _step_rows(organization, since, until, RunStatus.FAILED).annotate(n=Count("pk"))
    return rows.order_by("-n")[:TOP_STEPS]


def failing_steps(organization, since, until) -> list[StepStat]:
    return [
        StepStat(row["pipeline_step__name"], row["pipeline_step__pipeline__name"], row["n"])
        for row in failing_steps_query(organization, since, until)
    ]
