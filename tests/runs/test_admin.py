"""The task-run list's pipeline and run-start filters: cheap choices, and windows on the partition key."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db


@pytest.fixture
def task_runs(pipeline, make_step, organization, user):
    from django_etl.pipelines.models import Pipeline
    from django_etl.runs.models import PipelineRun, TaskRun

    other = Pipeline.objects.create(
        name="Other pipeline", organization=organization, created_by=user, status="active", config={}
    )
    made = {}
    for owner, name in ((pipeline, "mine"), (other, "theirs")):
        step = make_step(f"{name} step", "notify", {"email": ["a@b.io"]}, 1, pipeline=owner)
        for days_ago in (2, 40):
            run = PipelineRun.objects.create(
                pipeline=owner,
                trigger_type="scheduled",
                started_at=timezone.now() - dt.timedelta(days=days_ago),
            )
            made[(name, days_ago)] = TaskRun.objects.create(pipeline_run=run, pipeline_step=step)
    return made


def listed(client, query: str) -> set:
    response = client.get(reverse("admin:runs_taskrun_changelist") + query)
    assert response.status_code == 200
    return {str(obj.pk) for obj in response.context["cl"].result_list}


def test_task_run_list_filters_by_pipeline_and_run_start(admin_client, task_runs, pipeline):
    # What the filter's "Past 7 days" link sends: aware midnights, a week ago and tomorrow.
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    bounds = {
        "run_started_at__gte": today - dt.timedelta(days=7),
        "run_started_at__lt": today + dt.timedelta(days=1),
    }
    week = "&" + urlencode({key: str(value) for key, value in bounds.items()})
    assert listed(admin_client, f"?pipeline={pipeline.pk}{week}") == {str(task_runs[("mine", 2)].pk)}
    assert listed(admin_client, f"?pipeline={pipeline.pk}") == {
        str(task_runs[("mine", 2)].pk),
        str(task_runs[("mine", 40)].pk),
    }
    page = admin_client.get(reverse("admin:runs_taskrun_changelist")).content.decode()
    assert "Other pipeline" in page and "Past 7 days" in page  # both filters are offered


def test_task_run_list_with_a_mangled_pipeline_shows_nothing(admin_client, task_runs):
    assert listed(admin_client, "?pipeline=not-a-uuid") == set()


def test_one_pipelines_task_runs_are_listed_newest_run_first_in_step_order(admin_client, pipeline, make_step):
    from django_etl.runs.models import PipelineRun, TaskRun

    first, second = (
        make_step("first", "notify", {"email": ["a@b.io"]}, 1),
        make_step("second", "notify", {}, 2),
    )
    now = timezone.now()
    expected = []
    for days_ago in (1, 3):
        run = PipelineRun.objects.create(
            pipeline=pipeline, trigger_type="scheduled", started_at=now - dt.timedelta(days=days_ago)
        )
        # Created second step first, with the later task start: the list still shows the run's steps in order.
        late = TaskRun.objects.create(pipeline_run=run, pipeline_step=second, started_at=run.started_at)
        early = TaskRun.objects.create(pipeline_run=run, pipeline_step=first, started_at=run.started_at)
        expected += [str(early.pk), str(late.pk)]
    response = admin_client.get(reverse("admin:runs_taskrun_changelist") + f"?pipeline={pipeline.pk}")
    assert [str(obj.pk) for obj in response.context["cl"].result_list] == expected
