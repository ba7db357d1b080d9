"""Is task_runs ready for the coming months? The check behind the platform alert and the system check.

Two conditions, each one open alert at most (``monitoring.lifecycle.raise_alert`` updates it while it lasts and
:func:`report` resolves it once it is gone): fewer than :data:`MIN_FUTURE_MONTHS` months after this one have a
partition (the next rows would land in the default partition), and rows in the default partition (a month with
no partition; they slow every query that cannot prune it, and block creating their month's partition until
moved: ``manage_partitions`` moves them). Alerts are platform-level (no organization) RESOURCE_EXHAUSTION
alerts: the partition scheme runs out of room the way a disk does, and the fix is the operator's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import connection as default_connection

from django_etl.monitoring.choices import AlertLevel, AlertType
from django_etl.runs import partitioning

MIN_FUTURE_MONTHS = 2
FUTURE_CONDITION = "resource_exhaustion:task_runs:future_partitions"
DEFAULT_CONDITION = "resource_exhaustion:task_runs:default_partition"
FIX = "run `python manage.py manage_partitions` (the etl_partitions DAG does it daily)"


@dataclass
class PartitionHealth:
    this_month: dt.date
    future_months: list[dt.date] = field(default_factory=list)  # months after this one with a partition
    default_rows: int = 0
    default_months: list[dt.date] = field(default_factory=list)

    @property
    def missing_future(self) -> list[dt.date]:
        wanted = [partitioning.add_months(self.this_month, n) for n in range(1, MIN_FUTURE_MONTHS + 1)]
        return [month for month in wanted if month not in self.future_months]

    def future_problem(self) -> str | None:
        if not self.missing_future:
            return None
        missing = ", ".join(f"{m:%Y-%m}" for m in self.missing_future)
        return (
            f"task_runs has partitions for {len(self.future_months)} month(s) after {self.this_month:%Y-%m}, "
            f"fewer than {MIN_FUTURE_MONTHS} (missing {missing}): runs of those months will land in the "
            f"default partition; {FIX}."
        )

    def default_problem(self) -> str | None:
        if not self.default_rows:
            return None
        months = ", ".join(f"{m:%Y-%m}" for m in self.default_months)
        return (
            f"task_runs_default holds {self.default_rows} row(s) (months {months}): their month has no partition; "
            f"{FIX}. Rows of an archived month stay there until it is restored (manage_partitions --restore)."
        )


def inspect(connection=default_connection, *, today: dt.date | None = None) -> PartitionHealth | None:
    """The partitions' state, or None where task_runs is not partitioned (SQLite, not migrated yet)."""
    if not partitioning.is_postgresql(connection) or not partitioning.table_exists(
        connection, partitioning.DEFAULT_PARTITION
    ):
        return None
    this_month = partitioning.month_start(today or dt.datetime.now(dt.UTC).date())
    months = [partitioning.partition_month(name) for name in partitioning.existing_partitions(connection)]
    health = PartitionHealth(this_month, future_months=sorted(m for m in months if m and m > this_month))
    health.default_rows = partitioning.default_partition_rows(connection)
    if health.default_rows:
        health.default_months = partitioning.months_in_default(connection)
    return health


def report(health: PartitionHealth | None, *, using: str = "default") -> dict[str, str]:
    """Raise (or update) the alert of each problem, resolve the alert of each one gone; condition -> outcome."""
    from django_etl.monitoring.lifecycle import CONDITION_CLEARED, raise_alert, resolve_alerts

    if health is None:
        return {}
    outcome = {}
    checks = [
        (FUTURE_CONDITION, AlertLevel.ERROR, health.future_problem()),
        (DEFAULT_CONDITION, AlertLevel.WARNING, health.default_problem()),
    ]
    for condition, level, problem in checks:
        if problem is None:
            resolved = resolve_alerts(condition_keys=[condition], how=CONDITION_CLEARED, using=using)
            outcome[condition] = "resolved" if resolved else "ok"
            continue
        _, created = raise_alert(
            alert_type=AlertType.RESOURCE_EXHAUSTION,
            level=level,
            condition_key=condition,
            message=problem,
            metadata={
                "table": partitioning.TABLE,
                "future_months": [f"{m:%Y-%m}" for m in health.future_months],
                "default_rows": health.default_rows,
                "default_months": [f"{m:%Y-%m}" for m in health.default_months],
            },
            organization_id=None,
            using=using,
        )
        outcome[condition] = "raised" if created else "updated"
    return outcome
