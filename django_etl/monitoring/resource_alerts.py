"""RESOURCE_EXHAUSTION alerts from a task's result manifest and from how a killed try ended.

A task's manifest (``airflow_plugin/runtime.py``) carries its peak memory (``metrics.peak_memory_bytes``, the
kernel's high-water mark of the task process), the worker's memory and the free space of local staging
(``resources``, measured by the task at its end, ``airflow_plugin/resources.py``) and, when DuckDB hit its
memory limit, ``details.duckdb_out_of_memory``. Each problem is its own condition, open until a later try is
back under the threshold:

- ``resource_exhaustion:<pipeline>:<step>:memory`` — peak above ``memory_limit_mb`` or above ``memory_share``
  of the worker's memory;
- ``resource_exhaustion:<pipeline>:<step>:duckdb_memory`` — DuckDB's ``memory_limit`` hit;
- ``resource_exhaustion:<pipeline>:<step>:oom_kill`` — the kernel killed the try for memory (its word only);
- ``resource_exhaustion:staging_disk:<organization>`` — free staging space under ``staging_min_free_mb``.
"""

from __future__ import annotations

from typing import Any

from django_etl.alertpolicy import Policy
from django_etl.monitoring.choices import AlertLevel, AlertType

MIB = 1024 * 1024
MEMORY, DUCKDB_MEMORY, OOM_KILL, STAGING_DISK = "memory", "duckdb_memory", "oom_kill", "staging_disk"


def step_resource_condition(pipeline_id, step_id, what: str) -> str:
    from django_etl.monitoring.lifecycle import step_condition

    return step_condition(AlertType.RESOURCE_EXHAUSTION, pipeline_id, step_id, what)


def staging_condition(organization_id) -> str:
    from django_etl.monitoring.lifecycle import condition_key

    return condition_key(AlertType.RESOURCE_EXHAUSTION, STAGING_DISK, organization_id)


def _mib(value: float | None) -> str:
    return f"{value / MIB:,.0f} MiB" if value is not None else "unknown"


# ---------------------------------------------------------------- pure findings
def memory_finding(manifest: dict[str, Any], policy: Policy) -> dict[str, Any] | None:
    """Peak memory above the configured limit or the set share of the worker's memory, else None."""
    metrics = manifest.get("metrics") or {}
    resources = manifest.get("resources") or {}
    peak = metrics.get("peak_memory_bytes")
    if not isinstance(peak, int | float) or peak <= 0:
        return None
    worker = resources.get("worker_memory_bytes")
    limits = []
    if policy.memory_limit_mb:
        limits.append(("memory_limit_mb", policy.memory_limit_mb * MIB))
    if isinstance(worker, int | float) and worker > 0:
        limits.append(("memory_share", policy.memory_share * worker))
    passed = [(source, limit) for source, limit in limits if peak > limit]
    if not passed:
        return None
    source, limit = min(passed, key=lambda item: item[1])
    return {
        "peak_memory_bytes": int(peak),
        "limit_bytes": int(limit),
        "limit_source": source,
        "memory_limit_mb": policy.memory_limit_mb or None,
        "memory_share": policy.memory_share,
        "worker_memory_bytes": worker,
        "worker_memory_source": resources.get("worker_memory_source"),
        "ratio": round(peak / limit, 3),
        "host": resources.get("host"),
    }


def staging_finding(manifest: dict[str, Any], policy: Policy) -> dict[str, Any] | None:
    """Free space of local staging under the threshold (s3:// staging is not measured), else None."""
    staging = (manifest.get("resources") or {}).get("staging") or {}
    if not policy.staging_min_free_mb or not staging.get("measured"):
        return None
    free, threshold = staging.get("free_bytes"), policy.staging_min_free_mb * MIB
    if not isinstance(free, int | float) or free >= threshold:
        return None
    return {
        "free_bytes": int(free),
        "total_bytes": staging.get("total_bytes"),
        "threshold_bytes": threshold,
        "staging_min_free_mb": policy.staging_min_free_mb,
        "host": (manifest.get("resources") or {}).get("host"),
    }


def staging_measured(manifest: dict[str, Any]) -> bool:
    return bool(((manifest.get("resources") or {}).get("staging") or {}).get("measured"))


# ---------------------------------------------------------------- raising and clearing
def check_task(
    pipeline_run,
    task_run,
    task_id: str,
    manifest: dict[str, Any] | None,
    *,
    policy: Policy,
    organization_id,
    step_name: str,
    using: str = "default",
) -> list[str]:
    """Raise the resource alerts a task's manifest calls for; returns the conditions it shows are over.

    The caller clears those for the whole run at once (:func:`clear`).
    """
    if not manifest or not policy.enabled:
        return []
    from django_etl.monitoring.lifecycle import raise_alert

    step_id = task_run.pipeline_step_id
    pipeline_id = pipeline_run.pipeline_id
    try_number = manifest.get("try_number") or (task_run.metrics or {}).get("try_number")
    common = {
        "alert_type": AlertType.RESOURCE_EXHAUSTION,
        "organization_id": organization_id,
        "pipeline_run": pipeline_run,
        "task_run": task_run,
        "using": using,
    }
    where = {"task_id": task_id, "step_id": str(step_id), "step_name": step_name, "try_number": try_number}
    cleared = []

    memory = memory_finding(manifest, policy)
    if memory is not None:
        limit = (
            f"its limit of {policy.memory_limit_mb} MiB (memory_limit_mb)"
            if memory["limit_source"] == "memory_limit_mb"
            else f"{policy.memory_share:.0%} of the worker's {_mib(memory['worker_memory_bytes'])}"
        )
        raise_alert(
            level=AlertLevel.WARNING,
            condition_key=step_resource_condition(pipeline_id, step_id, MEMORY),
            message=f"Step {step_name!r} peaked at {_mib(memory['peak_memory_bytes'])} of memory, above {limit}.",
            metadata={
                **memory,
                **where,
                "resource": MEMORY,
                "event_key": f"resource_memory:{task_id}:{try_number}",
            },
            **common,
        )
    elif manifest.get("status") == "success":
        cleared.append(step_resource_condition(pipeline_id, step_id, MEMORY))

    duckdb = (manifest.get("details") or {}).get("duckdb_out_of_memory")
    if isinstance(duckdb, dict):
        raise_alert(
            level=AlertLevel.ERROR,
            condition_key=step_resource_condition(pipeline_id, step_id, DUCKDB_MEMORY),
            message=f"Step {step_name!r}: DuckDB ran out of memory at its limit of {duckdb.get('memory_limit')} "
            "(ETL_DUCKDB_MEMORY_LIMIT).",
            metadata={
                **where,
                "resource": DUCKDB_MEMORY,
                "memory_limit": duckdb.get("memory_limit"),
                "error": duckdb.get("error"),
                "key": duckdb.get("key"),
                "event_key": f"resource_duckdb:{task_id}:{try_number}",
            },
            **common,
        )
    elif manifest.get("status") == "success":
        cleared.append(step_resource_condition(pipeline_id, step_id, DUCKDB_MEMORY))

    disk = staging_finding(manifest, policy)
    if disk is not None:
        raise_alert(
            level=AlertLevel.WARNING,
            condition_key=staging_condition(organization_id),
            message=f"Staging has {_mib(disk['free_bytes'])} free (of {_mib(disk['total_bytes'])}), under the "
            f"threshold of {policy.staging_min_free_mb:,} MiB: steps will fail to stage data when it is full.",
            metadata={
                **disk,
                **where,
                "resource": STAGING_DISK,
                "event_key": f"resource_disk:{task_id}:{try_number}",
            },
            **common,
        )
    elif staging_measured(manifest) and policy.staging_min_free_mb:
        cleared.append(staging_condition(organization_id))

    return cleared


def check_killed(
    pipeline_run,
    task_run,
    task_id: str,
    verdict: dict[str, Any],
    *,
    organization_id,
    step_name: str,
    using: str,
) -> bool:
    """An out-of-memory kill the OS reported becomes a RESOURCE_EXHAUSTION error; True when raised."""
    if verdict.get("out_of_memory") is not True:
        return False
    from django_etl.monitoring.lifecycle import raise_alert

    try_number = verdict.get("try_number") or (task_run.metrics or {}).get("try_number")
    raise_alert(
        alert_type=AlertType.RESOURCE_EXHAUSTION,
        level=AlertLevel.ERROR,
        condition_key=step_resource_condition(pipeline_run.pipeline_id, task_run.pipeline_step_id, OOM_KILL),
        message=f"Step {step_name!r} was killed by the kernel for lack of memory ({verdict.get('evidence')}).",
        metadata={
            **verdict,
            "task_id": task_id,
            "step_id": str(task_run.pipeline_step_id),
            "step_name": step_name,
            "resource": OOM_KILL,
            "event_key": f"resource_oom_kill:{task_id}:{try_number}",
        },
        organization_id=organization_id,
        pipeline_run=pipeline_run,
        task_run=task_run,
        using=using,
    )
    return True


def oom_kill_conditions(pipeline_id, step_ids) -> list[str]:
    """The out-of-memory conditions of steps that succeeded (the caller clears them)."""
    return [step_resource_condition(pipeline_id, step_id, OOM_KILL) for step_id in step_ids]


def clear(pipeline_run, conditions: list[str], using: str) -> int:
    """Resolve the open alerts of ``conditions`` (one cheap read when none is open)."""
    from django_etl.monitoring.performance import clear_conditions

    if not conditions:
        return 0
    return clear_conditions(pipeline_run, conditions, using, "a later try was back under the threshold")
