"""Every console page rendered as each role: the dashboard, a run, a task run's log and a pipeline's steps."""

from __future__ import annotations

import pytest

from tests.admin.conftest import CANARY, ROLES

pytestmark = pytest.mark.django_db


def pages(tenant):
    from django.urls import reverse

    from django_etl.pipelines.models import Pipeline
    from django_etl.runs.models import PipelineRun, TaskRun

    pipeline = next(o for o in tenant.objects if isinstance(o, Pipeline))
    run = next(o for o in tenant.objects if isinstance(o, PipelineRun))
    failed = next(o for o in tenant.objects if isinstance(o, TaskRun) and o.status == "failed")
    return {
        "dashboard": reverse("admin:index"),
        "run": reverse("admin:runs_pipelinerun_change", args=[run.pk]),
        "task run": reverse("admin:runs_taskrun_change", args=[failed.pk]),
        "pipeline": reverse("admin:pipelines_pipeline_change", args=[pipeline.pk]),
        "runs": reverse("admin:runs_pipelinerun_changelist"),
        "task runs": reverse("admin:runs_taskrun_changelist"),
    }


@pytest.mark.parametrize("role", ROLES)
def test_console_pages_render_for_role(client, tenants, role):
    client.force_login(tenants.a.members[role])
    for name, url in pages(tenants.a).items():
        response = client.get(url)
        assert response.status_code == 200, (name, response.status_code)
        text = response.content.decode()
        assert CANARY not in text.lower(), name
    dashboard = client.get(pages(tenants.a)["dashboard"]).content.decode()
    assert "Acme pipeline" in dashboard and "etl-badge" in dashboard
    run_page = client.get(pages(tenants.a)["run"]).content.decode()
    assert "Task runs, in step order" in run_page
    assert run_page.index("Acme extract") < run_page.index("Acme load")
    assert "Acme alert" in run_page  # the run's alert, and the failed task's error excerpt
    log_page = client.get(pages(tenants.a)["task run"]).content.decode()
    assert "Acme log line" in log_page


def test_console_pages_of_another_organization_are_404(client, tenants):
    client.force_login(tenants.a.members["owner"])
    for name, url in pages(tenants.b).items():
        if name in {"dashboard", "runs", "task runs"}:
            continue
        assert client.get(url).status_code == 404, name


def test_task_run_page_shows_the_log_of_every_try(client, tenants):
    from django_etl.runs import logview
    from django_etl.runs.models import TaskRun

    client.force_login(tenants.a.members["viewer"])
    url = pages(tenants.a)["task run"]
    failed = TaskRun.objects.get(pk=url.rstrip("/").split("/")[-2])
    line = '{"timestamp": "2026-12-02T07:00:00Z", "level": "%s", "event": "%s"}\n'
    logs = logview.with_try(None, 1, line % ("error", "first try: source timed out"))
    logs = logview.with_try(logs, 2, line % ("info", "second try: 10 rows"))
    TaskRun.objects.filter(pk=failed.pk).update(logs=logs, metrics={"try_number": 2, "max_tries": 2})
    page = client.get(url).content.decode()
    assert "Try 1 of 2" in page and "Try 2 of 2 (latest)" in page
    assert page.index("second try: 10 rows") < page.index("first try: source timed out")
