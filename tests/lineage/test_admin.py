"""The lineage pictures in the admin: a run's graph on its page, the dataset pages; only the user's organizations."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
SOURCE = {
    "namespace": "file://worker-1",
    "name": "/data/landing/orders.csv",
    "kind": "file",
    "connector": "landing",
}
TARGET = {
    "namespace": "postgres://db:5432",
    "name": "dw.public.fact_orders",
    "kind": "table",
    "connector": "wh",
}
SOURCE_KEY = "file://worker-1/data/landing/orders.csv"


@pytest.fixture
def lineage_run(organization, user, make_step, pipeline):
    """A run of Acme's pipeline: extract (from a file) -> check -> load (into a table), with its edges."""
    from django_etl.lineage.models import DataLineage
    from django_etl.runs.models import PipelineRun, TaskRun

    extract = make_step("Extract <orders>", "extract", {"connector": "landing", "path": "orders.csv"}, 1)
    check = make_step("Check orders", "validate", {"checks": [{"check": "row_count", "min": 1}]}, 2)
    load = make_step("Load orders", "load", {"connector": "wh", "table": "fact_orders"}, 3)
    staged = {"dataset": "orders", "uri": "/staging/orders", "rows": 3}
    run = PipelineRun.objects.create(
        pipeline=pipeline,
        status="success",
        started_at=T0,
        trigger_type="manual",
        airflow_run_id="manual__acme",
        context={
            "steps": {
                "extract_orders": {"id": str(extract.pk), "upstream": []},
                "check_orders": {"id": str(check.pk), "upstream": ["extract_orders"]},
                "load_orders": {"id": str(load.pk), "upstream": ["check_orders"]},
            }
        },
    )
    rows = {
        "extract": TaskRun.objects.create(
            pipeline_run=run,
            pipeline_step=extract,
            status="success",
            input_data={"datasets": [], "location": SOURCE},
            output_data={"datasets": [staged]},
            metrics={"rows_out": 3},
        ),
        "check": TaskRun.objects.create(
            pipeline_run=run, pipeline_step=check, status="success", input_data={"datasets": [staged]}
        ),
        "load": TaskRun.objects.create(
            pipeline_run=run,
            pipeline_step=load,
            status="success",
            input_data={"datasets": [staged]},
            output_data={"datasets": [{"dataset": "fact_orders"}], "location": TARGET},
        ),
    }
    for source, target in (("extract", "check"), ("check", "load")):
        DataLineage.objects.create(
            source_task=rows[source],
            target_task=rows[target],
            relationship_type="direct",
            metadata={"datasets": ["orders"], "rows": 3, "column_lineage": "known", "columns": {}},
        )
    return run


@pytest.fixture
def viewer(organization):
    from django_etl.core.models import MembershipRole, OrganizationMembership, User

    member = User.objects.create_user("viewer", "viewer@example.com", "pw-viewer-123")
    OrganizationMembership.objects.create(user=member, organization=organization, role=MembershipRole.VIEWER)
    return member


@pytest.fixture
def outsider(other_organization):
    from django_etl.core.models import MembershipRole, OrganizationMembership, User

    member = User.objects.create_user("outsider", "outsider@example.com", "pw-outsider-123")
    OrganizationMembership.objects.create(
        user=member, organization=other_organization, role=MembershipRole.OWNER
    )
    return member


def dataset_url(key: str) -> str:
    from django.urls import reverse

    return f"{reverse('admin:lineage_dataset')}?{urlencode({'key': key})}"


def test_run_page_shows_the_lineage_picture_to_a_viewer(client, viewer, lineage_run):
    client.force_login(viewer)
    page = client.get(f"/admin/runs/pipelinerun/{lineage_run.pk}/change/").content.decode()
    start = page.index('class="etl-lineage"')
    svg = page[start : page.index("</svg>", start)]
    assert "Extract &lt;orders&gt;" in svg  # escaped, never raw markup
    assert "direct · orders" in svg  # an edge's label
    assert "orders.csv" in svg and "fact_orders" in svg  # the file it read, the table it wrote
    assert 'stroke-dasharray="5 4"' not in svg  # every step-to-step arrow here carries a dataset


def test_run_page_and_its_picture_are_a_404_for_another_organization(client, outsider, lineage_run):
    client.force_login(outsider)
    response = client.get(f"/admin/runs/pipelinerun/{lineage_run.pk}/change/")
    assert response.status_code == 404
    assert "orders.csv" not in response.content.decode()


def test_dataset_page_lists_writers_and_readers(client, viewer, lineage_run):
    client.force_login(viewer)
    page = client.get(dataset_url("orders")).content.decode()
    assert 'class="etl-lineage"' in page
    uses = page[page.index('id="etl-dataset-uses"') :]
    assert "wrote" in uses and "checked" in uses and "read" in uses
    assert "Extract &lt;orders&gt;" in uses and "Load orders" in uses
    index = client.get("/admin/lineage/datalineage/datasets/").content.decode()
    assert "orders.csv" in index and "fact_orders" in index
    assert client.get(dataset_url(SOURCE_KEY)).status_code == 200


def test_dataset_pages_show_nothing_of_another_organization(client, outsider, lineage_run):
    client.force_login(outsider)
    assert client.get(dataset_url("orders")).status_code == 404
    assert client.get(dataset_url(SOURCE_KEY)).status_code == 404
    index = client.get("/admin/lineage/datalineage/datasets/")
    assert index.status_code == 200
    assert "orders.csv" not in index.content.decode()


def test_dataset_page_without_a_key_is_a_404_not_an_error(client, viewer, lineage_run):
    client.force_login(viewer)
    assert client.get("/admin/lineage/datalineage/datasets/dataset/").status_code == 404
    assert client.get(dataset_url("x" * 5000)).status_code == 404
