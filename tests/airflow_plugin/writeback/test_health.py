"""Performance and resource alerts of real runs: real pipelines compiled and run through Airflow's dag.test().

The history is seeded in Django (successful runs of the same pipeline with their task runs); the run under
test is real: a transform whose SQL really takes long, one that really allocates, one that hits DuckDB's
memory limit.
"""

from __future__ import annotations

import pytest

from tests.airflow_plugin.conftest import RECORDER_DATABASES
from tests.support.run_history import seed_history

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, databases=RECORDER_DATABASES)]

ORDERS = "order_id,customer_id,amount\n1,10,12.5\n2,10,3.0\n3,11,25.0\n4,12,40.0\n5,11,8.0\n"
# About a second of DuckDB work on this machine's kind (100 million rows scanned and hashed).
SLOW_SQL = (
    "SELECT o.* FROM orders o CROSS JOIN "
    "(SELECT count(*) AS n FROM range(100000000) t(i) WHERE (i * 7919) % 13 = 0) AS x"
)
FAST_SQL = "SELECT o.* FROM orders o"
# Holds about 150 MiB at once (a hash table of ten million keys).
HOG_SQL = (
    "SELECT o.order_id, x.n FROM orders o CROSS JOIN "
    "(SELECT count(DISTINCT i) AS n FROM range(10000000) t(i)) AS x"
)
# A list of twenty million integers cannot spill: it must fit in DuckDB's memory limit.
DUCKDB_OOM_SQL = "SELECT o.order_id, len(x.l) AS n FROM orders o CROSS JOIN (SELECT list(i) AS l FROM range(20000000) t(i)) AS x"


@pytest.fixture
def landing(organization, user, settings, tmp_path):
    from django_etl.connectors.models import Connector

    folder = tmp_path / "landing"
    folder.mkdir()
    (folder / "orders.csv").write_text(ORDERS)
    settings.ETL_FILE_ROOTS = [str(tmp_path)]
    return Connector.objects.create(
        name="landing",
        connector_type="file",
        organization=organization,
        created_by=user,
        config={"root": str(folder), "format": "csv"},
    )


@pytest.fixture
def make_pipeline(organization, user, landing):
    """Extract orders.csv, then one transform with ``sql``; ``monitoring``: the pipeline's alert thresholds."""
    from django_etl.pipelines.models import Pipeline, PipelineStep

    def make(name: str, sql: str, monitoring: dict | None = None, **crunch_options):
        config = {"schedule": None, "retries": 0}
        if monitoring is not None:
            config["monitoring"] = monitoring
        pipeline = Pipeline.objects.create(
            name=name, organization=organization, created_by=user, status="active", config=config
        )
        extract = PipelineStep.objects.create(
            pipeline=pipeline,
            name="Extract orders",
            step_type="extract",
            config={"connector": "landing", "path": "orders.csv", "output": "orders"},
            order_index=10,
        )
        crunch = PipelineStep.objects.create(
            pipeline=pipeline,
            name="Crunch",
            step_type="transform",
            config={"inputs": ["orders"], "output": "crunched", "sql": sql, **crunch_options},
            order_index=20,
            dependencies=[str(extract.pk)],
        )
        pipeline.full_clean()
        return pipeline, extract, crunch

    return make


@pytest.fixture
def run_pipeline(airflow_db):
    from django_etl.runs.demo_run import run_pipeline

    def run(pipeline):
        return run_pipeline(pipeline.name, out=lambda line: None)

    return run


def _seed_fast_history(pipeline, extract, crunch, runs: int):
    # The extract is seeded slower than it really is and the run much longer: only the transform can be slow.
    seed_history(
        pipeline,
        {extract: {"seconds": 5.0, "rows": 5}, crunch: {"seconds": 0.05, "rows": 5}},
        runs=runs,
        run_seconds=120.0,
        rows=5,
    )


def test_health_slow_step_after_stable_history_raises_one_degradation_alert(make_pipeline, run_pipeline):
    from django_etl.monitoring.models import Alert

    pipeline, extract, crunch = make_pipeline("Slow crunch", SLOW_SQL, {"min_seconds": 0.2})
    _seed_fast_history(pipeline, extract, crunch, runs=12)
    run = run_pipeline(pipeline)
    assert run.status == "success"
    degradations = Alert.objects.filter(alert_type="performance_degradation", pipeline_run__pipeline=pipeline)
    assert degradations.count() == 1
    alert = degradations.get()
    assert (alert.level, alert.pipeline_run, alert.organization_id) == (
        "warning",
        run,
        pipeline.organization_id,
    )
    meta = alert.metadata
    assert {"baseline", "observed", "ratio", "window", "n"} <= set(meta)
    assert meta["step_name"] == "Crunch" and meta["n"] == 12 and meta["window"] == 30
    findings = {(f["measure"], f.get("step_name")) for f in meta["findings"]}
    assert ("duration_seconds", "Crunch") in findings
    assert not any(name == "Extract orders" for _, name in findings)
    crunch_duration = next(f for f in meta["findings"] if f["measure"] == "duration_seconds")
    assert crunch_duration["observed"] >= 0.2 and crunch_duration["ratio"] >= 4
    assert crunch_duration["baseline"]["median"] == pytest.approx(0.05, rel=0.05)
    assert "step 'Crunch' took" in alert.message
    assert not Alert.objects.filter(alert_type="data_quality", pipeline_run=run).exists()


def test_health_too_little_history_raises_no_degradation_alert(make_pipeline, run_pipeline):
    from django_etl.monitoring.models import Alert

    pipeline, extract, crunch = make_pipeline("Young crunch", SLOW_SQL, {"min_seconds": 0.2})
    _seed_fast_history(pipeline, extract, crunch, runs=9)
    run = run_pipeline(pipeline)
    assert run.status == "success"
    assert not Alert.objects.filter(pipeline_run__pipeline=pipeline).exists()


def test_health_over_memory_task_raises_resource_alert(make_pipeline, run_pipeline):
    from django_etl.monitoring.models import Alert
    from django_etl.runs.models import TaskRun

    # Any task process is bigger than 1 MiB: the limit is what the test controls, the allocation is real.
    # The limit is the transform's own (its step config); the extract has none and raises nothing.
    pipeline, _, crunch = make_pipeline("Memory hog", HOG_SQL, memory_limit_mb=1)
    run = run_pipeline(pipeline)
    assert run.status == "success"
    peak = TaskRun.objects.get(pipeline_run=run, pipeline_step=crunch).metrics["peak_memory_bytes"]
    alert = Alert.objects.get(alert_type="resource_exhaustion")
    assert (alert.level, alert.task_run.pipeline_step) == ("warning", crunch)
    meta = alert.metadata
    assert (meta["resource"], meta["limit_source"], meta["limit_bytes"]) == (
        "memory",
        "memory_limit_mb",
        1 << 20,
    )
    assert meta["peak_memory_bytes"] == peak > 100 * (1 << 20)
    assert meta["worker_memory_bytes"] > peak
    assert "peaked at" in alert.message and "its limit of 1 MiB" in alert.message


def test_health_pipeline_memory_limit_applies_to_every_step(make_pipeline, run_pipeline):
    from django_etl.monitoring.models import Alert

    pipeline, extract, crunch = make_pipeline("Tight pipeline", FAST_SQL, {"memory_limit_mb": 1})
    assert run_pipeline(pipeline).status == "success"
    steps = set(
        Alert.objects.filter(alert_type="resource_exhaustion").values_list(
            "task_run__pipeline_step", flat=True
        )
    )
    assert steps == {extract.pk, crunch.pk}


def test_health_default_thresholds_raise_no_resource_alert(make_pipeline, run_pipeline):
    from django_etl.monitoring.models import Alert

    pipeline, _, _ = make_pipeline("Calm crunch", FAST_SQL)
    assert run_pipeline(pipeline).status == "success"
    assert not Alert.objects.filter(alert_type="resource_exhaustion").exists()


def test_health_duckdb_memory_limit_hit_raises_resource_alert(make_pipeline, run_pipeline, settings):
    from django_etl.monitoring.models import Alert

    settings.ETL_DUCKDB_MEMORY_LIMIT = "16MB"
    pipeline, _, crunch = make_pipeline("DuckDB hog", DUCKDB_OOM_SQL)
    run = run_pipeline(pipeline)
    assert run.status == "failed"
    alert = Alert.objects.get(alert_type="resource_exhaustion", task_run__pipeline_step=crunch)
    assert (alert.level, alert.metadata["resource"], alert.metadata["memory_limit"]) == (
        "error",
        "duckdb_memory",
        "16MB",
    )
    assert "Out of Memory" in alert.metadata["error"]
    failed = Alert.objects.get(alert_type="task_failed", task_run__pipeline_step=crunch)
    assert "DuckDB ran out of memory at its limit of 16MB" in failed.message


def test_health_staging_under_free_space_threshold_raises_resource_alert(
    make_pipeline, run_pipeline, settings
):
    import shutil

    from django_etl.monitoring.models import Alert

    # A threshold above any disk: the free space each task really measured is under it.
    pipeline, _, _ = make_pipeline("Full disk", FAST_SQL, {"staging_min_free_mb": 10**9})
    run = run_pipeline(pipeline)
    assert run.status == "success"
    alert = Alert.objects.get(alert_type="resource_exhaustion")
    assert alert.metadata["resource"] == "staging_disk" and alert.occurrences == 2  # both tasks measured it
    assert alert.condition_key.endswith(f":staging_disk:{pipeline.organization_id}")
    free = shutil.disk_usage(settings.ETL_STAGING_URL).free
    assert abs(alert.metadata["free_bytes"] - free) < 1 << 30
    assert alert.metadata["threshold_bytes"] == 10**9 * (1 << 20)


def test_health_kill_of_an_earlier_try_is_forgotten_after_a_clear(make_pipeline):
    from django.utils import timezone

    from airflow_plugin.writeback.health import forget_older_kill, was_killed
    from django_etl.runs.models import PipelineRun, TaskRun

    pipeline, _, crunch = make_pipeline("Cleared", FAST_SQL)
    run = PipelineRun.objects.create(
        pipeline=pipeline, status="success", trigger_type="manual", started_at=timezone.now()
    )
    killed = {
        "ended": "killed",
        "killed_try": 1,
        "out_of_memory": False,
        "kill_evidence": "…",
        "try_number": 1,
    }
    task_run = TaskRun.objects.create(pipeline_run=run, pipeline_step=crunch, status="failed", metrics=killed)
    assert was_killed(task_run)
    forget_older_kill(task_run)
    assert TaskRun.objects.get(pk=task_run.pk).metrics == killed  # still this try's end
    task_run.metrics = {**killed, "try_number": 2}
    task_run.status = "success"
    assert not was_killed(task_run)
    forget_older_kill(task_run)
    assert TaskRun.objects.get(pk=task_run.pk).metrics == {"try_number": 2}
