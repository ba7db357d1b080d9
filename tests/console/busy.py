"""A busy organization made in SQL: many pipelines, thousands of runs and 100,000+ task runs, in seconds."""

from __future__ import annotations

from django.db import connection


def make_busy_organization(
    owner, *, pipelines: int = 20, steps: int = 10, runs: int = 10_000, days: int = 365, slug: str = "busy"
):
    """``runs`` runs spread over ``days`` days across ``pipelines`` pipelines, one task run per step each.

    About one run in seven fails (at its last step); statuses, durations and rows vary with the row number.
    """
    from django_etl.core.models import Organization
    from django_etl.pipelines.models import Pipeline, PipelineStep

    organization = Organization.objects.create(name=f"{slug.title()} organization", slug=slug)
    made = Pipeline.objects.bulk_create(
        [
            Pipeline(
                name=f"{slug} pipeline {number:03d}",
                organization=organization,
                created_by=owner,
                status="active",
                config={"schedule": "@daily"},
            )
            for number in range(pipelines)
        ]
    )
    PipelineStep.objects.bulk_create(
        [
            PipelineStep(
                pipeline=pipeline,
                name=f"step {index:02d}",
                step_type="transform",
                order_index=index,
                config={"sql": "select 1"},
            )
            for pipeline in made
            for index in range(1, steps + 1)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO pipeline_runs (id, pipeline_id, status, started_at, completed_at, context, metrics,
                                       trigger_type, airflow_dag_id, airflow_run_id)
            SELECT gen_random_uuid(), p.id,
                   CASE WHEN n %% 7 = 3 THEN 'failed' WHEN n %% 97 = 0 THEN 'running' ELSE 'success' END,
                   now() - (n * %s::float / %s) * interval '1 day',
                   now() - (n * %s::float / %s) * interval '1 day' + (30 + n %% 90) * interval '1 second',
                   '{}'::jsonb, '{"rows_extracted": 100, "rows_loaded": 100}'::jsonb, 'scheduled', '', ''
            FROM generate_series(1, %s) AS n
            JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM pipelines
                  WHERE organization_id = %s) AS p ON p.k = n %% %s
            """,
            [days, runs, days, runs, runs, organization.pk, pipelines],
        )
        cursor.execute(
            """
            INSERT INTO task_runs (id, pipeline_run_id, pipeline_step_id, status, started_at, completed_at,
                                   logs, metrics, retry_count, run_started_at)
            SELECT gen_random_uuid(), r.id, s.id,
                   CASE WHEN r.status = 'failed' AND s.order_index = %s THEN 'failed' ELSE 'success' END,
                   r.started_at + s.order_index * interval '3 second',
                   r.started_at + s.order_index * interval '3 second' + (1 + s.order_index) * interval '1 second',
                   '', '{"rows_in": 100, "rows_out": 100}'::jsonb, 0, r.started_at
            FROM pipeline_runs r JOIN pipeline_steps s ON s.pipeline_id = r.pipeline_id
            JOIN pipelines p ON p.id = r.pipeline_id WHERE p.organization_id = %s
            """,
            [steps, organization.pk],
        )
        cursor.execute("ANALYZE pipeline_runs")
        cursor.execute("ANALYZE task_runs")
        cursor.execute("ANALYZE pipeline_steps")
        cursor.execute("ANALYZE pipelines")
    return organization
