"""Flag the runs still running far past their pipeline's baseline or the hard limit (every few minutes)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from django_etl.monitoring.running import check_running_runs


class Command(BaseCommand):
    help = (
        "Compare every run Django holds as running with its pipeline's run-duration baseline (median and MAD of "
        "its last successful runs): a run past ETL_RUN_OVERDUE_RATIO times the median (and past the tolerance), "
        "or past the hard limit ETL_RUN_MAX_SECONDS, raises the pipeline's PERFORMANCE_DEGRADATION alert. "
        "Thresholds per pipeline or organization: the 'monitoring' keys (docs/alerts.md). Safe to run as often "
        "as you like: each run is counted once. Scheduled by the etl_run_checks DAG (ETL_RUN_CHECKS_SCHEDULE)."
    )

    def handle(self, *args, **options) -> None:
        report = check_running_runs(out=lambda line: self.stdout.write(f"  {line}"))
        self.stdout.write(
            f"{report.checked} running run(s) checked; {report.flagged} overdue, "
            f"{report.alerts_raised} new alert(s)."
        )
