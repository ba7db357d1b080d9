"""Pipeline runs and task runs (seed section 4), written back from Airflow; task_runs is partitioned by month."""
