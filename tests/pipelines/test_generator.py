"""The dags folder generator, checked with Airflow's own DagBag over the files it writes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from django_etl.pipelines import codegen
from django_etl.pipelines.generator import generate
from tests.support.compiler_helpers import EXTRACT, NOTIFY, SHAPES, make_pipeline, shape_pipeline

pytestmark = pytest.mark.integration


def dagbag(folder: Path):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder))


def file_of(folder: Path, pipeline) -> Path:
    return folder / f"pipeline_{pipeline.pk.hex}.py"


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "dags"


def test_generate_dagbag_holds_one_dag_per_active_or_paused_pipeline(
    organization, user, file_connector, folder
):
    active = shape_pipeline(organization, user, "linear")
    paused = shape_pipeline(organization, user, "diamond", status="paused")
    for status in ("draft", "deprecated"):
        shape_pipeline(organization, user, "fan_out", status=status)
    summary = generate(output=folder)
    assert summary.ok and len(summary.created) == 2
    bag = dagbag(folder)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {active.dag_id, paused.dag_id}
    assert bag.dags[active.dag_id].is_paused_upon_creation is False
    assert bag.dags[paused.dag_id].is_paused_upon_creation is True
    assert bag.dags[paused.dag_id].dag_display_name == "Shape diamond"


def test_generate_airflow_task_graph_equals_the_expected_graph(organization, user, file_connector, folder):
    pipelines = {shape: shape_pipeline(organization, user, shape) for shape in SHAPES}
    generate(output=folder)
    bag = dagbag(folder)
    assert bag.import_errors == {}
    for shape, pipeline in pipelines.items():
        dag = bag.dags[pipeline.dag_id]
        graph = {task.task_id: set(task.upstream_task_ids) for task in dag.tasks}
        # A final notify (a teardown) is followed by the run-outcome task (airflow_plugin/outcome.py).
        outcome = graph.pop("etl__run_outcome", None)
        assert outcome in (None, {t for t in graph if dag.get_task(t).is_teardown}), shape
        assert graph == SHAPES[shape][1], shape


def test_generate_twice_rewrites_nothing_and_keeps_mtimes(organization, user, file_connector, folder):
    for shape in ("linear", "diamond", "fan_in"):
        shape_pipeline(organization, user, shape)
    generate(output=folder)
    files = sorted(folder.glob("*.py"))
    for path in files:
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # far in the past: any rewrite would show
    summary = generate(output=folder)
    assert (summary.created, summary.updated, summary.removed) == ([], [], [])
    assert sorted(summary.unchanged) == [p.name for p in files]
    assert all(p.stat().st_mtime_ns == 1_000_000_000 for p in files)
    assert not list(folder.glob(".*.tmp"))


def test_generate_rewrites_only_the_changed_pipeline(organization, user, file_connector, folder):
    first = shape_pipeline(organization, user, "linear")
    second = shape_pipeline(organization, user, "diamond")
    generate(output=folder)
    step = second.steps.get(name="left")
    step.config = {"sql": "select id from orders"}
    step.save()
    second.refresh_from_db()
    before = file_of(folder, first).read_bytes()
    summary = generate(output=folder)
    assert summary.updated == [file_of(folder, second).name]
    assert file_of(folder, first).read_bytes() == before
    text = file_of(folder, second).read_text()
    assert f"# Version:       {second.version}" in text
    assert f"'version:{second.version}'" in text


def test_generate_removes_only_generated_files_of_undeployed_pipelines(
    organization, user, file_connector, folder
):
    kept = shape_pipeline(organization, user, "linear")
    drafted = shape_pipeline(organization, user, "linear", status="active")
    deprecated = shape_pipeline(organization, user, "linear", status="active")
    deleted = shape_pipeline(organization, user, "linear", status="active")
    generate(output=folder)
    own_dag = folder / "hand_written.py"
    own_dag.write_text("# my DAG, not generated\n")
    notes = folder / "notes.txt"
    notes.write_text(codegen.GENERATED_MARKER)  # not a .py file: never ours
    copy = folder / "copy_of_kept.py"
    copy.write_bytes(file_of(folder, kept).read_bytes())
    deleted_file = file_of(folder, deleted)
    type(drafted).objects.filter(pk=drafted.pk).update(status="draft")
    type(drafted).objects.filter(pk=deprecated.pk).update(status="deprecated")
    deleted.delete()

    summary = generate(output=folder)
    assert sorted(summary.removed) == sorted(
        [file_of(folder, drafted).name, file_of(folder, deprecated).name, deleted_file.name, copy.name]
    )
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(
        [file_of(folder, kept).name, own_dag.name, notes.name]
    )


def test_generate_broken_pipeline_keeps_its_previous_good_file(organization, user, file_connector, folder):
    broken = shape_pipeline(organization, user, "linear")
    generate(output=folder)
    good = file_of(folder, broken).read_bytes()
    # A step broken behind the admin's back (update() skips clean()), and a new valid pipeline.
    broken.steps.filter(name="clean").update(config={"sql": "select 1", "colour": "red"})
    valid = shape_pipeline(organization, user, "diamond")
    lines: list[str] = []
    summary = generate(output=folder, log=lines.append)
    assert not summary.ok
    assert list(summary.failed) == [f"{broken.name} ({broken.pk})"]
    assert "pipeline 'Shape linear' step 'clean' config.colour: unknown key" in summary.report()
    assert summary.created == [file_of(folder, valid).name]
    assert summary.removed == []
    assert file_of(folder, broken).read_bytes() == good
    assert lines[-1] == "generate_dags: 1 created, 0 updated, 0 unchanged, 0 removed, 1 failed"


def test_generate_dag_airflow_rejects_is_a_failure_not_a_file(organization, user, file_connector, folder):
    config = {"params": {"day": {"default": "monday", "type": "integer"}}}
    pipeline = shape_pipeline(organization, user, "linear", config=config)
    summary = generate(output=folder)
    assert "pipeline 'Shape linear' dag: Airflow rejects the DAG" in summary.report()
    assert not file_of(folder, pipeline).exists()


def test_generate_refuses_to_overwrite_a_file_it_did_not_write(organization, user, file_connector, folder):
    pipeline = shape_pipeline(organization, user, "linear")
    folder.mkdir()
    file_of(folder, pipeline).write_text("# someone's own file\n")
    summary = generate(output=folder)
    assert "was not written by generate_dags" in summary.report()
    assert file_of(folder, pipeline).read_text() == "# someone's own file\n"


def test_generate_check_and_dry_run_change_nothing(organization, user, file_connector, folder):
    pipeline = shape_pipeline(organization, user, "linear")
    generate(output=folder)
    path = file_of(folder, pipeline)
    edited = path.read_text().replace("'retries': 1", "'retries': 9")
    path.write_text(edited)
    stale = shape_pipeline(organization, user, "linear", status="active")
    for mode in ("check", "dry_run"):
        summary = generate(output=folder, **{mode: True})
        assert summary.differences() == [f"missing: {file_of(folder, stale).name}", f"differs: {path.name}"]
        assert path.read_text() == edited
        assert not file_of(folder, stale).exists()
    assert generate(output=folder).updated == [path.name]
    assert not generate(output=folder, check=True).changed


def test_generate_for_some_pipelines_leaves_the_others_alone(organization, user, file_connector, folder):
    chosen = shape_pipeline(organization, user, "linear")
    other = shape_pipeline(organization, user, "linear", status="active")
    generate(output=folder)
    type(other).objects.filter(pk=other.pk).update(status="draft")
    step = chosen.steps.get(name="check")
    step.config = {"checks": [{"check": "row_count", "min": 5}]}
    step.save()
    summary = generate(output=folder, pipeline_ids=[chosen.pk])
    assert summary.updated == [file_of(folder, chosen).name]
    assert summary.removed == []
    assert file_of(folder, other).exists()
    drafted = generate(output=folder, pipeline_ids=[str(other.pk)])
    assert drafted.removed == [file_of(folder, other).name]


def test_generated_files_import_without_database_network_or_django(
    organization, user, file_connector, folder
):
    """Airflow parses these files every 30 s and at every task start: no database, no socket, no Django."""
    for shape in SHAPES:
        shape_pipeline(organization, user, shape)
    make_pipeline(
        organization, user, [("x", "extract", EXTRACT, False, None), ("n", "notify", NOTIFY, 0, None)]
    )
    generate(output=folder)
    files = sorted(str(p) for p in folder.glob("*.py"))
    assert len(files) == len(SHAPES) + 1
    probe = textwrap.dedent(
        """
        import importlib.util, socket, sys

        def refuse(*args, **kwargs):
            raise OSError("network is blocked in this test")

        socket.socket.connect = socket.socket.connect_ex = refuse
        socket.create_connection = socket.getaddrinfo = refuse
        for number, path in enumerate(sys.argv[1:]):
            spec = importlib.util.spec_from_file_location(f"generated_{number}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            module.dag.validate()
        from airflow.dag_processing.dagbag import DagBag  # and the way Airflow's dag-processor reads them

        bag = DagBag(dag_folder=sys.argv[1].rsplit("/", 1)[0])
        assert bag.import_errors == {} and len(bag.dag_ids) == len(sys.argv) - 1, bag.import_errors
        loaded = sorted(m for m in ("django", "django.db", "pyarrow", "duckdb", "boto3", "psycopg") if m in sys.modules)
        print("imported", len(sys.argv) - 1, "loaded", loaded)
        """
    )
    unreachable = "postgres://nobody@192.0.2.1:1/nothing"  # TEST-NET-1: routable nowhere
    env = {
        **os.environ,
        "DATABASE_URL": unreachable,
        "DJANGO_SETTINGS_MODULE": "django_etl.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", probe, *files], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"imported {len(files)} loaded []" in result.stdout


def test_generated_file_embeds_no_secret(organization, user, file_connector, db_connector, folder):
    steps = [("extract", "extract", {"connector": "warehouse", "table": "orders"}, False, None)]
    pipeline = make_pipeline(organization, user, steps)
    generate(output=folder)
    text = file_of(folder, pipeline).read_text()
    assert "'connector': 'warehouse'" in text
    assert "s3cr3t-canary" not in text and db_connector.credential.encrypted_data not in text
