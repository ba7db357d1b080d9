"""task_runs_daily's (organization, day) index covers the summed columns: the dashboard reads it alone."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("pipelines", "0001_initial"),
        ("runs", "0005_task_runs_step_run_idx"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="stepday",
            name="task_runs_daily_org_day_idx",
        ),
        migrations.AddIndex(
            model_name="stepday",
            index=models.Index(
                fields=["organization", "day"],
                include=("pipeline_step", "succeeded", "failed", "timed", "success_seconds"),
                name="task_runs_daily_org_day_idx",
            ),
        ),
    ]
