"""Django in control of real Airflow services (one set per session, tests/services/conftest.py): Run now, pause
from the admin, an edit runnable at once, a webhook trigger, and a run marked failed with a teardown notify."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.services.conftest import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

# Slow on purpose: long enough to be marked failed while it runs (seconds with one DuckDB thread).
SLOW_SQL = "SELECT o.* FROM orders_raw o, (SELECT sum(i) AS s FROM range(4000000000) t(i)) x WHERE x.s > 0"


@pytest.fixture
def demo(controlled):
    from django.core.management import call_command

    from django_etl.pipelines.models import Pipeline

    call_command("load_demo", verbosity=0)
    return Pipeline.objects.get(name="Daily orders")


def client():
    from django_etl.control.airflow_api import AirflowClient

    return AirflowClient.from_settings()


def parsed(pipeline, services):
    return wait_for(f"Airflow parsed {pipeline.dag_id}", lambda: _dag_or_none(pipeline.dag_id), services)


def _dag_or_none(dag_id):
    from django_etl.control.airflow_api import AirflowRefused

    try:
        return client().dag(dag_id)
    except AirflowRefused:
        return None


def finished(run, services, timeout=240):
    def done():
        run.refresh_from_db()
        return run.completed_at is not None and run.status not in {"pending", "running"}

    wait_for(f"run {run.airflow_run_id} finished in Django", done, services, timeout=timeout)
    return run


def test_services_run_now_records_the_django_user_and_a_real_interval(demo, controlled, user):
    from django_etl.control.runs import start_run

    parsed(demo, controlled)
    run = finished(start_run(demo, user=user), controlled)
    assert (run.status, run.trigger_type, run.triggered_by) == ("success", "api", user)
    steps = {t.pipeline_step.name: t.status for t in run.task_runs.all()}
    assert set(steps.values()) == {"success"} and len(steps) == 6
    airflow_run = client().dag_run(demo.dag_id, run.airflow_run_id)
    assert airflow_run["state"] == "success"
    assert airflow_run["data_interval_start"] < airflow_run["data_interval_end"]
    # The admin served by gunicorn, with its static files (whitenoise).
    with urllib.request.urlopen(
        f"{controlled.env['ETL_ADMIN_URL']}/static/admin/css/base.css", timeout=10
    ) as r:
        assert r.status == 200


def test_services_pause_from_the_admin_pauses_the_dag(demo, controlled):
    parsed(demo, controlled)
    assert client().dag(demo.dag_id)["is_paused"] is False
    demo.status = "paused"
    demo.save()  # what the admin's save does: regenerate on commit, then sync Airflow
    assert client().dag(demo.dag_id)["is_paused"] is True
    demo.status = "active"
    demo.save()
    assert client().dag(demo.dag_id)["is_paused"] is False


def test_services_edit_is_triggerable_at_once(demo, controlled, user):
    from django_etl.control.runs import start_run

    parsed(demo, controlled)
    demo.description = "edited"
    demo.save()  # rewrites the file (doc_md changes) and asks Airflow to re-parse it
    started = time.monotonic()
    version = demo.version
    wait_for(
        "the edited DAG parsed",
        lambda: "edited" in (client().dag(demo.dag_id).get("description") or ""),
        controlled,
    )
    run = start_run(demo, user=user)
    assert time.monotonic() - started < 30
    assert finished(run, controlled).context["pipeline_version"] == version


def test_services_webhook_trigger_starts_a_webhook_run(demo, controlled, live_webhook):
    from django_etl.runs.models import PipelineRun

    parsed(demo, controlled)
    answer = live_webhook(
        demo, {"data_interval": {"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"}}
    )
    assert answer.status_code == 202, answer.content
    run = finished(PipelineRun.objects.get(pk=answer.json()["pipeline_run"]), controlled)
    assert (run.trigger_type, run.triggered_by, run.status) == ("webhook", None, "success")
    airflow_run = client().dag_run(demo.dag_id, run.airflow_run_id)
    assert airflow_run["data_interval_start"].startswith("2026-11-01")


def test_services_mark_failed_with_teardown_notify_is_cancelled(demo, controlled, user):
    from django.db import transaction

    from django_etl.control.runs import start_run
    from django_etl.pipelines import versioning

    enrich = demo.steps.get(name="Enrich orders")
    enrich.config = {**enrich.config, "sql": SLOW_SQL}
    with transaction.atomic(), versioning.batch():  # as the admin saves: one version, the file after it
        enrich.save()
    demo.refresh_from_db()
    wait_for("the slow DAG parsed", lambda: _has_version(demo), controlled)
    run = start_run(demo, user=user)
    api = client()

    def enrich_running():
        states = {t["task_id"]: t["state"] for t in api.task_instances(demo.dag_id, run.airflow_run_id)}
        return states.get("enrich_orders") == "running"

    wait_for("enrich_orders running", enrich_running, controlled)
    api.set_run_state(demo.dag_id, run.airflow_run_id, "failed")
    finished(run, controlled)
    assert run.status == "cancelled"
    wait_for(
        "Airflow settled the run",
        lambda: api.dag_run(demo.dag_id, run.airflow_run_id)["state"] in {"failed", "success"},
        controlled,
    )
    assert api.dag_run(demo.dag_id, run.airflow_run_id)["state"] == "failed"
    notify = run.task_runs.get(pipeline_step__name="Notify team")
    assert notify.status == "success"  # the cancelled notice went out


def _has_version(pipeline) -> bool:
    dag = _dag_or_none(pipeline.dag_id)
    tags = {t.get("name") if isinstance(t, dict) else t for t in (dag or {}).get("tags") or []}
    return f"version:{pipeline.version}" in tags


@pytest.fixture
def live_webhook(client):
    from django_etl.control.models import WebhookEndpoint
    from django_etl.control.webhook import sign

    def post(pipeline, payload):
        endpoint, secret = WebhookEndpoint.rotate(pipeline)
        body = json.dumps(payload).encode()
        stamp = str(int(time.time()))
        return client.post(
            f"/hooks/pipelines/{endpoint.pk}/trigger",
            body,
            content_type="application/json",
            HTTP_X_ETL_TIMESTAMP=stamp,
            HTTP_X_ETL_SIGNATURE=sign(secret, stamp, body),
        )

    return post
