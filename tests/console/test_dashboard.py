"""The dashboard's queries: their number does not grow with the organization, and their plans use the indexes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.console.busy import make_busy_organization

pytestmark = pytest.mark.django_db

MAX_DASHBOARD_QUERIES = 7


def count_queries(function, *args) -> int:
    with CaptureQueriesContext(connection) as captured:
        function(*args)
    return len(captured)


def test_dashboard_query_count_does_not_grow_with_pipelines_and_runs(root):
    from django_etl.runs import dashboard

    small = make_busy_organization(root, pipelines=2, steps=2, runs=20, slug="small")
    large = make_busy_organization(root, pipelines=40, steps=6, runs=4_000, slug="large")

    assert count_queries(dashboard.build, small) == count_queries(dashboard.build, large)
    assert count_queries(dashboard.build, large) <= MAX_DASHBOARD_QUERIES
    board = dashboard.build(large)
    assert len(board.pipelines) == 40
    assert all(item.last_run is not None for item in board.pipelines)
    assert all(0 < len(item.trend) <= dashboard.TREND_RUNS for item in board.pipelines)
    assert board.failing_steps and board.failing_steps[0].step == "step 06"
    assert board.slowest_steps[0].step == "step 06"  # the last step takes longest in the busy data
    assert all(0 < item.rate_30d.succeeded < item.rate_30d.ended for item in board.pipelines)


def test_dashboard_page_query_count_does_not_grow(client, root):
    from django.urls import reverse

    make_busy_organization(root, pipelines=2, steps=2, runs=20, slug="small")
    client.force_login(root)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("admin:index")).status_code == 200
    make_busy_organization(root, pipelines=40, steps=4, runs=2_000, slug="aaa-large")  # sorts first: shown
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("admin:index"))
    assert "aaa-large pipeline 039" in response.content.decode()
    assert 0 < len(many) == len(few)


def test_run_page_query_count_does_not_grow_with_tasks(client, root):
    from django.urls import reverse

    from django_etl.runs.models import PipelineRun

    client.force_login(root)
    counts = []
    for steps, slug in ((2, "two"), (12, "twelve")):
        organization = make_busy_organization(root, pipelines=1, steps=steps, runs=3, slug=slug)
        run = PipelineRun.objects.filter(pipeline__organization=organization).first()
        client.get(reverse("admin:runs_pipelinerun_change", args=[run.pk]))  # warm the per-process caches
        with CaptureQueriesContext(connection) as captured:
            response = client.get(reverse("admin:runs_pipelinerun_change", args=[run.pk]))
        assert response.status_code == 200
        assert response.content.decode().count('class="etl-badge"') >= steps
        counts.append(len(captured))
    assert 0 < counts[0] == counts[1]


def test_dashboard_counts_run_less_alerts_of_the_organization(root):
    from django_etl.monitoring.models import Alert
    from django_etl.runs import dashboard
    from django_etl.runs.models import PipelineRun

    mine = make_busy_organization(root, pipelines=1, steps=1, runs=2, slug="mine")
    other = make_busy_organization(root, pipelines=1, steps=1, runs=2, slug="other")
    run = PipelineRun.objects.filter(pipeline__organization=mine).first()
    Alert.objects.create(pipeline_run=run, level="error", alert_type="pipeline_failed", message="run failed")
    # Run-less: a credential of the organization expires; another organization's alert must not count.
    Alert.objects.create(organization=mine, level="warning", alert_type="credential_expiring", message="soon")
    Alert.objects.create(organization=other, level="warning", alert_type="credential_expiring", message="x")
    Alert.objects.create(level="error", alert_type="resource_exhaustion", message="platform, no organization")

    board = dashboard.build(mine)
    assert board.open_alerts == {"error": 1, "warning": 1}
    assert board.pipelines[0].open_alerts == {"error": 1}
