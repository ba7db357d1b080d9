"""RESOURCE_EXHAUSTION from a task's manifest: peak memory, DuckDB's limit, staging space; cleared by a good try."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from django_etl.alertpolicy import resolve
from django_etl.monitoring.resource_alerts import MIB, check_task, clear, memory_finding, staging_finding

GIB = 1024 * MIB


def _manifest(peak=200 * MIB, worker=8 * GIB, free=50 * GIB, status="success", **extra):
    return {
        "status": status,
        "try_number": 1,
        "metrics": {"peak_memory_bytes": peak},
        "resources": {
            "worker_memory_bytes": worker,
            "worker_memory_source": "machine memory",
            "host": "w1",
            "staging": {"kind": "local", "measured": True, "free_bytes": free, "total_bytes": 100 * GIB},
        },
        **extra,
    }


def test_memory_finding_configured_limit():
    found = memory_finding(_manifest(peak=300 * MIB), resolve({"monitoring": {"memory_limit_mb": 256}}))
    assert (found["limit_source"], found["limit_bytes"], found["ratio"]) == (
        "memory_limit_mb",
        256 * MIB,
        1.172,
    )
    assert (
        memory_finding(_manifest(peak=200 * MIB), resolve({"monitoring": {"memory_limit_mb": 256}})) is None
    )


def test_memory_finding_share_of_worker_memory():
    policy = resolve({"monitoring": {"memory_share": 0.5}})
    found = memory_finding(_manifest(peak=5 * GIB, worker=8 * GIB), policy)
    assert (found["limit_source"], found["limit_bytes"]) == ("memory_share", 4 * GIB)
    assert memory_finding(_manifest(peak=3 * GIB, worker=8 * GIB), policy) is None
    assert memory_finding(_manifest(peak=None), policy) is None


def test_staging_finding_threshold_and_s3():
    policy = resolve({"monitoring": {"staging_min_free_mb": 2048}})
    assert staging_finding(_manifest(free=1 * GIB), policy)["threshold_bytes"] == 2 * GIB
    assert staging_finding(_manifest(free=3 * GIB), policy) is None
    s3 = _manifest()
    s3["resources"]["staging"] = {"kind": "s3", "measured": False}
    assert staging_finding(s3, policy) is None


@pytest.fixture
def task_run(pipeline, make_step):
    from django_etl.runs.models import PipelineRun, TaskRun

    step = make_step("Crunch", "transform", {"sql": "SELECT 1", "inputs": ["orders"]}, 1)
    started = timezone.now() - dt.timedelta(minutes=1)
    run = PipelineRun.objects.create(
        pipeline=pipeline, status="success", trigger_type="manual", started_at=started
    )
    return TaskRun.objects.create(
        pipeline_run=run, pipeline_step=step, status="success", metrics={"try_number": 1}
    )


@pytest.mark.django_db
def test_check_task_raises_each_problem_once_and_a_good_try_clears(task_run, pipeline):
    from django_etl.monitoring.models import Alert

    policy = resolve({"monitoring": {"memory_limit_mb": 100, "staging_min_free_mb": 1024}})
    manifest = _manifest(
        peak=300 * MIB,
        free=200 * MIB,
        status="failed",
        details={
            "duckdb_out_of_memory": {
                "memory_limit": "512MB",
                "error": "Out of Memory Error",
                "key": "config.sql",
            }
        },
    )
    args = {"policy": policy, "organization_id": pipeline.organization_id, "step_name": "Crunch"}
    for _ in range(2):  # write-back may see the same manifest twice: counted once
        check_task(task_run.pipeline_run, task_run, "crunch", manifest, **args)
    alerts = {a.metadata["resource"]: a for a in Alert.objects.all()}
    assert set(alerts) == {"memory", "duckdb_memory", "staging_disk"}
    assert all(a.occurrences == 1 and a.alert_type == "resource_exhaustion" for a in alerts.values())
    assert alerts["duckdb_memory"].level == "error"
    assert "512MB" in alerts["duckdb_memory"].message
    assert "300 MiB" in alerts["memory"].message and "limit of 100 MiB" in alerts["memory"].message
    cleared = check_task(task_run.pipeline_run, task_run, "crunch", _manifest(peak=50 * MIB), **args)
    assert clear(task_run.pipeline_run, cleared, "default") == 3
    assert not Alert.objects.filter(is_resolved=False).exists()
