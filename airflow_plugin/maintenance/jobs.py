"""Housekeeping DAGs of the platform: one task that calls one Django function, on a schedule set in settings.

Each job (partition lifecycle, alert delivery, run checks, write-back catch-up) is a plain function in the Django
room that owns it, tested on its own and also reachable from a management command; this module only schedules it.
A DAG file in ``dags/`` is one call::

    dag = build_job_dag(Job(dag_id="etl_credential_expiry", display_name=..., description=...,
                            callable_path="django_etl.monitoring.expiry:raise_expiry_warnings",
                            schedule_setting="ETL_CREDENTIAL_EXPIRY_SCHEDULE"))

The function is imported by dotted path inside ``execute()``, in the task process: parsing the DAG file imports
neither Django nor the job's code.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, BaseOperator

from django_etl import conf

OFF = {"", "off", "none", "manual"}


@dataclass(frozen=True)
class Job:
    """A housekeeping DAG: its id, what it says in Airflow's UI, the function it calls and its schedule."""

    dag_id: str
    display_name: str
    description: str
    # "package.module:function"; called with Django set up and ``**kwargs``; returns a JSON-able summary.
    callable_path: str
    # The ETL_* setting holding its cron expression ("off": manual runs only).
    schedule_setting: str
    timeout: timedelta = timedelta(minutes=10)
    kwargs: dict[str, Any] = field(default_factory=dict)


class DjangoJobOperator(BaseOperator):
    """Sets Django up in the task process and calls one function by dotted path; its return value is the XCom."""

    ui_color = "#fdf1e8"

    def __init__(
        self, *, callable_path: str, job_kwargs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.callable_path = callable_path
        self.job_kwargs = dict(job_kwargs or {})

    def execute(self, context: Any) -> Any:
        from django_etl.startup import setup_django

        setup_django()
        result = resolve(self.callable_path)(**self.job_kwargs)
        # A job's report is often a dataclass; XCom stores JSON.
        return dataclasses.asdict(result) if dataclasses.is_dataclass(result) else result


def resolve(callable_path: str):
    """``"pkg.module:function"`` → the function (a clear error naming the path when it does not exist)."""
    module_name, _, attribute = callable_path.partition(":")
    if not attribute:
        raise ValueError(f"job callable {callable_path!r} must read 'package.module:function'")
    return getattr(importlib.import_module(module_name), attribute)


def job_schedule(setting: str) -> str | None:
    """The cron expression in ``setting``, or None (manual runs only) when it says off."""
    value = str(conf.value(setting) or "").strip()
    return None if value.lower() in OFF else value


def _cron_or_none(value: str) -> str | None:
    return None if value.strip().lower() in OFF else value.strip()


def build_job_dag(job: Job, *, schedule: str | None = None) -> DAG:
    """The DAG with one task calling ``job.callable_path``; ``schedule`` overrides the job's setting."""
    with DAG(
        dag_id=job.dag_id,
        dag_display_name=job.display_name,
        description=job.description,
        schedule=job_schedule(job.schedule_setting) if schedule is None else _cron_or_none(schedule),
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=job.timeout + timedelta(minutes=1),
        is_paused_upon_creation=False,
        tags=["etl", "maintenance"],
        default_args={"owner": "etl", "retries": 1, "retry_delay": timedelta(minutes=1)},
    ) as dag:
        DjangoJobOperator(
            task_id=job.dag_id.removeprefix("etl_"),
            callable_path=job.callable_path,
            job_kwargs=job.kwargs,
            execution_timeout=job.timeout,
        )
    return dag
