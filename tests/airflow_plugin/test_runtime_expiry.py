"""run_step refuses a connector whose credential has expired: the task fails at once, naming both."""

from __future__ import annotations

import datetime as dt
import os
import runpy
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from django_etl.connectors.expiry import CredentialExpiredError

pytestmark = pytest.mark.integration


def _expire(credential, days: float) -> None:
    credential.expires_at = timezone.now() + dt.timedelta(days=days)
    credential.save(update_fields=["expires_at"])


@pytest.fixture
def run_extract(airflow_db, organization, user):
    from django_etl.pipelines.models import Pipeline
    from django_etl.pipelines.naming import dag_id_for
    from tests.support.operator_dags import write_dag_file

    pipeline = Pipeline.objects.create(
        name="Expiry",
        organization=organization,
        created_by=user,
        status="active",
        config={"schedule": "@daily"},
    )

    def run(connector_name: str):
        spec = {
            "dag_id": dag_id_for(pipeline.pk),
            "schedule": "@daily",
            "pipeline": {
                "id": str(pipeline.pk),
                "name": pipeline.name,
                "organization": organization.slug,
                "version": "1.0.0",
                "spec_hash": "sha256:expiry",
            },
            "steps": [
                {
                    "id": "id-extract",
                    "name": "extract",
                    "task_id": "extract",
                    "step_type": "extract",
                    "config": {"connector": connector_name, "table": "customers"},
                    "upstream": [],
                    "inputs": [],
                    "output": "rows",
                }
            ],
        }
        path = write_dag_file(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], spec)
        dag = runpy.run_path(str(path))["dag"]
        return dag.test(logical_date=datetime(2025, 1, 2, tzinfo=UTC)), spec["dag_id"]

    return run


@pytest.mark.django_db(transaction=True)
def test_run_step_expired_credential_fails_without_retry(db_connector, credential, run_extract):
    from django_etl.dataplane.staging import read_manifest

    _expire(credential, -30)
    dag_run, dag_id = run_extract(db_connector.name)
    assert dag_run.state == "failed"
    error = read_manifest(dag_id, dag_run.run_id, "extract")["error"]
    assert "credential 'warehouse login' of connector 'warehouse' expired on" in error


def test_is_retryable_expired_credential_is_permanent():
    from airflow_plugin.runtime import is_retryable

    assert is_retryable(CredentialExpiredError("credential 'x' expired")) is False
