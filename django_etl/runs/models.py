"""PipelineRun and TaskRun: what Airflow did with each pipeline and step, recorded in Django."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from django_etl.pipelines.models import Pipeline, PipelineStep
from django_etl.runs.choices import RunStatus, TriggerType


class PipelineRun(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE)
    triggered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.PENDING)
    # default instead of auto_now_add: a run recorded late keeps its real start time.
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    context = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    trigger_type = models.CharField(max_length=20, choices=TriggerType.choices)
    # The Airflow identity of the run: what makes write-back idempotent.
    airflow_dag_id = models.CharField(max_length=250, blank=True, default="")
    airflow_run_id = models.CharField(max_length=250, blank=True, default="")

    class Meta:
        db_table = "pipeline_runs"
        indexes = [
            models.Index(fields=["pipeline", "-started_at"]),
            models.Index(fields=["status"]),
            models.Index(fields=["triggered_by"]),
            models.Index(fields=["pipeline", "-started_at", "status"], name="pipeline_runs_dashboard_idx"),
            models.Index(
                fields=["started_at", "status"],
                condition=Q(status__in=["running", "pending"]),
                name="active_runs_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["airflow_dag_id", "airflow_run_id"],
                condition=~Q(airflow_run_id=""),
                name="unique_airflow_dag_run",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline} @ {self.started_at:%Y-%m-%d %H:%M} ({self.status})"

    @property
    def duration(self):
        if self.completed_at and self.started_at:
            return self.completed_at - self.started_at
        return None


class TaskRunQuerySet(models.QuerySet["TaskRun"]):
    def bulk_create(self, objs, *args, **kwargs):
        # bulk_create skips save(): fill the partition key here too.
        objs = list(objs)
        for obj in objs:
            obj.fill_partition_key()
        return super().bulk_create(objs, *args, **kwargs)


class TaskRun(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pipeline_run = models.ForeignKey(PipelineRun, on_delete=models.CASCADE, related_name="task_runs")
    pipeline_step = models.ForeignKey(PipelineStep, on_delete=models.PROTECT)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    input_data = models.JSONField(null=True, blank=True)
    output_data = models.JSONField(null=True, blank=True)
    logs = models.TextField(blank=True)
    metrics = models.JSONField(default=dict)
    retry_count = models.PositiveIntegerField(default=0)
    # Monthly partition key (docs/partitioning.md): the start of the pipeline run, copied on first write, so
    # every write of one task of one run lands on the same row of the same partition.
    run_started_at = models.DateTimeField(editable=False)

    objects = TaskRunQuerySet.as_manager()

    class Meta:
        db_table = "task_runs"
        indexes = [
            models.Index(fields=["pipeline_run", "status"]),
            models.Index(fields=["pipeline_step"]),
            models.Index(fields=["-started_at"]),
            # Built concurrently (runs/migrations/0002): task runs of one status over recent months.
            models.Index(fields=["status", "run_started_at"], name="task_runs_status_run_idx"),
            # Built concurrently (runs/migrations/0005): one pipeline's task runs over a period (the task-run
            # list's pipeline and date filters) read only that period's rows of its steps.
            models.Index(fields=["pipeline_step", "run_started_at"], name="task_runs_step_run_idx"),
        ]
        constraints = [
            # Includes the partition key because PostgreSQL requires it; (run, step) alone decides a row.
            models.UniqueConstraint(
                fields=["pipeline_run", "pipeline_step", "run_started_at"], name="unique_task_run_per_step"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline_step.name} ({self.status})"

    def fill_partition_key(self) -> None:
        if self.run_started_at is None:
            self.run_started_at = self.pipeline_run.started_at

    def save(self, *args, **kwargs) -> None:
        self.fill_partition_key()
        super().save(*args, **kwargs)

    @property
    def duration(self):
        if self.completed_at and self.started_at:
            return self.completed_at - self.started_at
        return None


class ArchiveState(models.TextChoices):
    """The steps of one month's archive, in order (runs/retention.py): each is committed before the next."""

    ARCHIVING = "archiving", "Writing the archive"
    ARCHIVED = "archived", "Archived (partition still attached)"
    DETACHED = "detached", "Detached (rows of other tables still present)"
    PURGED = "purged", "Related rows deleted (detached table still present)"
    DROPPED = "dropped", "Dropped (only the archive holds it)"
    RESTORED = "restored", "Restored"


class PartitionArchive(models.Model):
    """The durable state of one month of task_runs leaving (or coming back to) the database.

    A run of the retention that stops part-way resumes from ``state``; the archive's manifest (files, row
    counts, checksums) is kept here too, so a restore knows what to expect without listing the archive.
    """

    month = models.DateField(unique=True, help_text="First day of the month (UTC).")
    partition = models.CharField(max_length=63, help_text="The partition's table name (task_runs_yYYYYmMM).")
    state = models.CharField(max_length=20, choices=ArchiveState.choices, default=ArchiveState.ARCHIVING)
    location = models.CharField(max_length=1000, help_text="The archive's folder or s3:// prefix.")
    manifest = models.JSONField(default=dict, blank=True)
    summary = models.JSONField(
        default=dict,
        blank=True,
        help_text="What stays in the database of the month's pipeline runs: counts per pipeline and status.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    restored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "task_runs_archives"
        ordering = ["month"]

    def __str__(self) -> str:
        return f"{self.partition} ({self.state})"


class StepDay(models.Model):
    """One step's task runs of one UTC day (by the run's start), summed: the dashboard's step statistics.

    Filled by ``runs/rollup.py`` (the etl_run_rollups job); task runs newer than its mark are read live.
    """

    pipeline_step = models.ForeignKey(PipelineStep, on_delete=models.CASCADE, related_name="+")
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="+")
    organization = models.ForeignKey("core.Organization", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    timed = models.PositiveIntegerField(default=0, help_text="Successful task runs with a start and an end.")
    success_seconds = models.FloatField(default=0, help_text="Their durations, summed.")

    class Meta:
        db_table = "task_runs_daily"
        constraints = [models.UniqueConstraint(fields=["pipeline_step", "day"], name="unique_step_day")]
        indexes = [
            # Covers what the dashboard sums: an index-only scan of the organization's days.
            models.Index(
                fields=["organization", "day"],
                include=["pipeline_step", "succeeded", "failed", "timed", "success_seconds"],
                name="task_runs_daily_org_day_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.pipeline_step_id} {self.day}"


class RollupMark(models.Model):
    """How far ``task_runs_daily`` is computed: task runs of runs started before ``computed_until`` are in it."""

    name = models.CharField(max_length=50, primary_key=True)
    computed_until = models.DateTimeField()

    class Meta:
        db_table = "task_runs_daily_mark"

    def __str__(self) -> str:
        return f"{self.name} until {self.computed_until:%Y-%m-%d %H:%M}"
