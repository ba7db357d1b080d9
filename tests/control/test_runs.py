"""Run now from Django: run ids, real data intervals, and an unreachable Airflow that leaves Django unchanged."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from django_etl.control.airflow_api import AirflowClient, AirflowUnavailable, run_url, task_url
from django_etl.control.runs import last_complete_interval, new_run_id, start_run


class Config:
    def __init__(self, **config):
        self.config = config


NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("config", "start", "end"),
    [
        ({"schedule": "@daily"}, datetime(2026, 3, 13, tzinfo=UTC), datetime(2026, 3, 14, tzinfo=UTC)),
        (
            {"schedule": "0 * * * *"},
            datetime(2026, 3, 14, 8, tzinfo=UTC),
            datetime(2026, 3, 14, 9, tzinfo=UTC),
        ),
        ({"schedule": None}, datetime(2026, 3, 13, tzinfo=UTC), datetime(2026, 3, 14, tzinfo=UTC)),
        ({"schedule": "@once"}, datetime(2026, 3, 13, tzinfo=UTC), datetime(2026, 3, 14, tzinfo=UTC)),
    ],
)
def test_last_complete_interval_of_schedule(config, start, end):
    assert last_complete_interval(Config(**config), NOW) == (start, end)


def test_last_complete_interval_in_the_pipeline_time_zone():
    start, end = last_complete_interval(Config(schedule="@daily", timezone="Europe/Paris"), NOW)
    assert (start.isoformat(), end.isoformat()) == ("2026-03-13T00:00:00+01:00", "2026-03-14T00:00:00+01:00")
    assert start < end


def test_new_run_id_is_unique_and_names_its_kind():
    first, second = new_run_id("api", NOW), new_run_id("api", NOW)
    assert first != second and first.startswith("etl_api__20260314T093000_")


def test_airflow_links_follow_the_ui_setting(settings):
    settings.ETL_AIRFLOW_UI_URL = "http://127.0.0.1:8080/"
    assert (
        run_url("pipeline_1", "etl_api__x+1") == "http://127.0.0.1:8080/dags/pipeline_1/runs/etl_api__x%2B1"
    )
    assert task_url("d", "r", "load") == "http://127.0.0.1:8080/dags/d/runs/r/tasks/load"
    settings.ETL_AIRFLOW_UI_URL = settings.ETL_AIRFLOW_API_URL = ""
    assert run_url("d", "r") is None


def test_client_without_configuration_is_unavailable(settings):
    settings.ETL_AIRFLOW_API_URL = ""
    with pytest.raises(AirflowUnavailable, match="not configured"):
        AirflowClient.from_settings()


@pytest.mark.django_db
def test_start_run_with_airflow_unreachable_leaves_no_run(pipeline, user, settings):
    from django_etl.runs.models import PipelineRun

    settings.ETL_AIRFLOW_API_URL = "http://127.0.0.1:9"
    with pytest.raises(AirflowUnavailable, match=r"unreachable at http://127\.0\.0\.1:9"):
        start_run(pipeline, user=user)
    assert not PipelineRun.objects.exists()


@pytest.mark.django_db
def test_admin_run_now_with_airflow_unreachable_says_so(client, pipeline, user, settings):
    from django_etl.runs.models import PipelineRun

    settings.ETL_AIRFLOW_API_URL = "http://127.0.0.1:9"
    user.is_superuser = True
    user.save()
    client.force_login(user)
    response = client.post(
        "/admin/pipelines/pipeline/",
        {"action": "run_now", "_selected_action": [str(pipeline.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Airflow is unreachable" in response.content.decode()
    assert "Nothing was changed" in response.content.decode()
    assert not PipelineRun.objects.exists()
