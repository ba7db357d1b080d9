"""The compiled spec: resolved graph, datasets and Airflow settings; every validation error reported."""

from __future__ import annotations

import uuid

import pytest

from django_etl.pipelines.dagspec import build_spec
from tests.support.compiler_helpers import (
    CHECKS,
    EXTRACT,
    NOTIFY,
    SHAPES,
    SQL,
    make_pipeline,
    shape_pipeline,
)

pytestmark = pytest.mark.integration


def upstream_of(spec) -> dict[str, set[str]]:
    return {s["task_id"]: set(s["upstream"]) for s in spec["steps"]}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_build_spec_upstream_follows_the_dependency_rule(organization, user, file_connector, shape):
    pipeline = shape_pipeline(organization, user, shape)
    spec, report = build_spec(pipeline)
    assert not report, str(report)
    assert upstream_of(spec) == SHAPES[shape][1]


def test_build_spec_resolves_datasets_and_defaults(organization, user, file_connector):
    pipeline = shape_pipeline(organization, user, "diamond", config={"schedule": "0 3 * * *", "retries": 4})
    spec, _ = build_spec(pipeline)
    steps = {s["task_id"]: s for s in spec["steps"]}
    assert [s["order_index"] for s in spec["steps"]] == [1, 2, 3, 4]
    assert steps["extract_orders"]["inputs"] == [] and steps["extract_orders"]["output"] == "extract_orders"
    assert steps["join"]["inputs"] == ["left", "right"]
    assert steps["left"]["retries"] == 4
    assert steps["left"]["retry_delay_seconds"] == 300
    assert steps["left"]["execution_timeout_seconds"] == 3600
    assert steps["left"]["config"] == SQL
    assert spec["dag"]["schedule"] == "0 3 * * *"
    assert spec["dag"]["owner"] == "etl"
    assert spec["pipeline"]["dag_id"] == f"pipeline_{pipeline.pk.hex}"
    assert spec["pipeline"]["spec_hash"].startswith("sha256:")


def test_build_spec_step_options_override_pipeline_defaults(organization, user, file_connector):
    steps = [
        ("extract", "extract", {**EXTRACT, "retries": 0, "execution_timeout_seconds": 60}, False, None),
        ("notify", "notify", {**NOTIFY, "retry_delay_seconds": 5}, False, None),
    ]
    pipeline = make_pipeline(
        organization, user, steps, config={"retries": 2, "execution_timeout_seconds": None}
    )
    spec, _ = build_spec(pipeline)
    extract, notify = spec["steps"]
    assert (extract["retries"], extract["execution_timeout_seconds"]) == (0, 60)
    assert (notify["retries"], notify["retry_delay_seconds"], notify["execution_timeout_seconds"]) == (
        2,
        5,
        None,
    )


def test_build_spec_tags_name_organization_step_types_metadata_and_version(
    organization, user, file_connector
):
    pipeline = shape_pipeline(organization, user, "linear", metadata={"tags": ["sales", "daily"]})
    spec, _ = build_spec(pipeline)
    assert spec["dag"]["tags"] == sorted(
        ["acme", "daily", "extract", "sales", "transform", "validate", f"version:{pipeline.version}"]
    )


@pytest.mark.parametrize(("status", "paused"), [("active", False), ("paused", True)])
def test_build_spec_pause_on_creation_follows_status(organization, user, file_connector, status, paused):
    pipeline = shape_pipeline(organization, user, "linear", status=status)
    spec, _ = build_spec(pipeline)
    assert spec["dag"]["is_paused_upon_creation"] is paused


def test_build_spec_hash_changes_with_the_configuration(organization, user, file_connector):
    pipeline = shape_pipeline(organization, user, "linear")
    first, _ = build_spec(pipeline)
    again, _ = build_spec(pipeline)
    assert first == again
    step = pipeline.steps.get(name="clean")
    step.config = {"sql": "select id from orders"}
    step.save()
    pipeline.refresh_from_db()
    changed, _ = build_spec(pipeline)
    assert changed["pipeline"]["spec_hash"] != first["pipeline"]["spec_hash"]
    assert changed["pipeline"]["version"] != first["pipeline"]["version"]


def problems(report) -> list[str]:
    return [str(p) for p in report]


def test_build_spec_reports_unknown_dependency(organization, user, file_connector, make_step):
    pipeline = make_pipeline(organization, user, [("extract", "extract", EXTRACT, False, None)])
    make_step("notify", "notify", NOTIFY, 2, pipeline=pipeline, dependencies=[str(uuid.uuid4())])
    spec, report = build_spec(pipeline)
    assert spec is None
    assert any(
        "pipeline 'Orders daily' step 'notify' dependencies[0]" in p and "not a step of this pipeline" in p
        for p in problems(report)
    )


def test_build_spec_reports_dependency_on_another_pipelines_step(
    organization, user, file_connector, make_step
):
    other = make_pipeline(organization, user, [("extract", "extract", EXTRACT, False, None)], name="Other")
    foreign = other.steps.get()
    pipeline = make_pipeline(organization, user, [("extract", "extract", EXTRACT, False, None)])
    make_step("notify", "notify", NOTIFY, 2, pipeline=pipeline, dependencies=[str(foreign.pk)])
    _, report = build_spec(pipeline)
    assert any("step 'notify' dependencies[0]" in p for p in problems(report))


def test_build_spec_reports_cycle(organization, user, file_connector):
    steps = [
        ("extract", "extract", EXTRACT, False, None),
        ("a", "transform", SQL, False, [0, 2]),
        ("b", "transform", SQL, False, [1]),
    ]
    pipeline = make_pipeline(organization, user, steps)
    _, report = build_spec(pipeline)
    assert problems(report) == ["pipeline 'Orders daily' dependencies: dependency cycle: 'a' -> 'b' -> 'a'"]


def test_build_spec_reports_duplicate_task_id(organization, user, file_connector):
    steps = [
        ("Load Orders", "extract", EXTRACT, False, None),
        ("load-orders", "extract", EXTRACT, False, None),
    ]
    pipeline = make_pipeline(organization, user, steps)
    _, report = build_spec(pipeline)
    assert any("step 'load-orders' name: gives task id 'load_orders'" in p for p in problems(report))


def test_build_spec_reports_every_bad_step_config_at_once(organization, user, file_connector):
    steps = [
        ("extract", "extract", {**EXTRACT, "colour": "red"}, False, None),
        ("check", "validate", {"checks": []}, False, None),
        ("load", "load", {"connector": "landing", "path": "x.csv", "mode": "upsert"}, False, None),
    ]
    pipeline = make_pipeline(organization, user, steps)
    _, report = build_spec(pipeline)
    found = problems(report)
    assert any("step 'extract' config.colour: unknown key" in p for p in found)
    assert any("step 'check' config.checks" in p for p in found)
    assert any("step 'load' config: mode 'upsert' needs 'key'" in p for p in found)


def test_build_spec_reports_connector_of_wrong_type(organization, user, file_connector):
    from django_etl.connectors.models import Connector

    Connector.objects.create(
        name="crm",
        connector_type="api",
        organization=organization,
        created_by=user,
        config={"base_url": "https://crm.example.com"},
    )
    steps = [
        ("extract", "extract", EXTRACT, False, None),
        ("load", "load", {"connector": "crm", "path": "x"}, False, None),
    ]
    _, report = build_spec(make_pipeline(organization, user, steps))
    assert any(
        "step 'load' config.connector: connector 'crm' is a api connector" in p for p in problems(report)
    )


def test_build_spec_reports_connector_of_another_organization(
    organization, other_organization, user, tmp_path
):
    from django_etl.connectors.models import Connector

    Connector.objects.create(
        name="foreign",
        connector_type="file",
        organization=other_organization,
        created_by=user,
        config={"root": str(tmp_path)},
    )
    steps = [("extract", "extract", {"connector": "foreign", "path": "x.csv"}, False, None)]
    _, report = build_spec(make_pipeline(organization, user, steps))
    assert any(
        "step 'extract' config.connector: no connector named 'foreign' in this organization" in p
        for p in problems(report)
    )


def test_build_spec_reports_invalid_schedule(organization, user, file_connector):
    pipeline = shape_pipeline(organization, user, "linear", config={"schedule": "every day"})
    _, report = build_spec(pipeline)
    assert any(
        "pipeline 'Shape linear' config.schedule: 'every day' is not a cron" in p for p in problems(report)
    )


def test_build_spec_reports_rules_airflow_enforces(organization, user, file_connector):
    pipeline = shape_pipeline(
        organization,
        user,
        "linear",
        config={"schedule": "@continuous", "max_active_runs": 3},
        metadata={"tags": ["x" * 101]},
    )
    _, report = build_spec(pipeline)
    assert problems(report) == [
        "pipeline 'Shape linear' metadata.tags[0]: longer than 100 characters",
        "pipeline 'Shape linear' config.max_active_runs: schedule '@continuous' allows one active run; "
        "set max_active_runs to 1",
    ]


def test_build_spec_reports_dataset_problems(organization, user, file_connector):
    steps = [
        ("extract", "extract", EXTRACT, False, None),
        ("check", "validate", {**CHECKS, "input": "nowhere"}, False, None),
    ]
    _, report = build_spec(make_pipeline(organization, user, steps))
    assert any("step 'check' config.input: dataset 'nowhere'" in p for p in problems(report))


def test_build_spec_reports_a_pipeline_without_steps(organization, user, file_connector):
    _, report = build_spec(make_pipeline(organization, user, []))
    assert problems(report) == [
        "pipeline 'Orders daily' steps: has no steps: a DAG without tasks would never do anything"
    ]
