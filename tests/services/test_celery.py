"""One pipeline run under the CeleryExecutor (`make airflow EXECUTOR=celery`'s code path): a Celery worker as a
process of its own, a Redis broker started by the test, staging on a local S3 API server, write-back complete."""

from __future__ import annotations

import uuid

import pytest

from django_etl.dataplane.staging import safe_name
from tests.services.conftest import point_at, running_services, wait_for
from tests.services.test_services_processes import client, finished, parsed
from tests.support.redis_server import redis_server
from tests.support.servers import S3_KEY_ID, S3_SECRET

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

QUEUE = "etl-celery-test"


@pytest.fixture(scope="module")
def celery_services(django_db_setup, django_db_blocker, tmp_path_factory, s3_server):
    import boto3

    home = tmp_path_factory.mktemp("celery")
    bucket = f"etl-staging-{uuid.uuid4().hex[:8]}"  # created by the services' set-up (ensure_location)
    with (
        redis_server(home / "redis") as broker,
        running_services(
            home,
            django_db_blocker,
            admin=False,
            AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
            AIRFLOW__CELERY__BROKER_URL=broker,
            AIRFLOW__CELERY__WORKER_CONCURRENCY="2",
            AIRFLOW__OPERATORS__DEFAULT_QUEUE=QUEUE,
            ETL_STAGING_URL=f"s3://{bucket}/staging",
            ETL_STAGING_S3_ENDPOINT_URL=s3_server,
            ETL_STAGING_S3_ACCESS_KEY_ID=S3_KEY_ID,
            ETL_STAGING_S3_SECRET_ACCESS_KEY=S3_SECRET,
        ) as cluster,
    ):
        cluster.s3 = boto3.client(
            "s3",
            endpoint_url=s3_server,
            region_name="us-east-1",
            aws_access_key_id=S3_KEY_ID,
            aws_secret_access_key=S3_SECRET,
        )
        cluster.bucket = bucket
        yield cluster


def test_celery_run_succeeds_on_the_worker_with_staging_on_s3(celery_services, settings, user):
    from django.core.management import call_command

    from django_etl.control.runs import start_run
    from django_etl.pipelines.models import Pipeline

    cluster = point_at(celery_services, settings)
    assert cluster.names == ("api-server", "scheduler", "dag-processor", "triggerer", "worker-1")
    call_command("load_demo", verbosity=0)
    demo = Pipeline.objects.get(name="Daily orders")
    parsed(demo, cluster)

    run = finished(start_run(demo, user=user), cluster)

    assert (run.status, run.triggered_by) == ("success", user)
    tasks = list(run.task_runs.select_related("pipeline_step"))
    assert len(tasks) == 6 and {t.status for t in tasks} == {"success"}
    # Every step's task ran on the Celery queue (the executor's, not a local fork of the scheduler).
    instances = client().task_instances(demo.dag_id, run.airflow_run_id)
    assert {ti["queue"] for ti in instances} == {QUEUE}
    assert {ti["state"] for ti in instances} == {"success"}
    worker_log = (cluster.logs / "worker-1.log").read_bytes()
    assert b"execute_workload" in worker_log
    # Task processes fork from pool processes that set Django up once (airflow_plugin.celery_config).
    assert b"Django set up in worker pool process" in worker_log
    # Steps handed each other datasets staged in the bucket; after the success write-back deleted them.
    staged = [
        d["uri"]
        for t in tasks
        if t.pipeline_step.step_type != "load"  # a load's output is its target table
        for d in (t.output_data or {}).get("datasets", [])
    ]
    assert staged and all(uri.startswith(f"s3://{cluster.bucket}/staging/") for uri in staged)
    run_folder = f"/{safe_name(run.airflow_run_id)}/"

    def staged_data_deleted() -> bool:
        keys = [o["Key"] for o in cluster.s3.list_objects_v2(Bucket=cluster.bucket).get("Contents", [])]
        # What stays is the pipeline's state (promoted schemas, watermarks), written there too.
        return bool(keys) and not any(run_folder in key for key in keys)

    wait_for("the run's staged data deleted from the bucket", staged_data_deleted, cluster, timeout=60)
