"""Run one pipeline through Airflow in this process (dag.test()) and report what write-back recorded.

The embedded default: Airflow's metadata in SQLite under ``VAR_DIR/airflow`` (unless AIRFLOW_HOME is set),
DAG files from ``generate_dags``, the run recorded by the write-back recorder into Django's database.
"""

from __future__ import annotations

import os
import runpy
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

DEFAULT_PIPELINE = "Daily orders"


def configure_airflow() -> Path:
    """Point Airflow at the embedded home before anything imports it; returns the Airflow home."""
    if "AIRFLOW_HOME" not in os.environ:
        home = Path(settings.VAR_DIR) / "airflow"
        os.environ["AIRFLOW_HOME"] = str(home)
        os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'airflow.db'}"
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(settings.ETL_DAGS_FOLDER))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    return home


def run_pipeline(name: str = DEFAULT_PIPELINE, out: Callable[[str], None] = print):
    """Generate the DAGs, run ``name``'s DAG once through Airflow, return its PipelineRun (or None)."""
    configure_airflow()
    from airflow.utils.db import initdb

    from airflow_plugin import writeback
    from django_etl.pipelines.generator import generate
    from django_etl.pipelines.models import Pipeline
    from django_etl.runs.models import PipelineRun

    pipeline = Pipeline.objects.filter(name=name).order_by("-created_at").first()
    if pipeline is None:
        raise LookupError(f"no pipeline named {name!r}: run `python manage.py load_demo` first")
    started = time.monotonic()
    summary = generate(pipeline_ids=[pipeline.pk], log=lambda line: None)
    if not summary.ok:
        raise RuntimeError(f"pipeline {name!r} does not compile:\n{summary.report()}")
    out(f"DAG files in {settings.ETL_DAGS_FOLDER} are up to date ({summary.line()}).")
    migrated = time.monotonic()
    initdb()
    out(f"Airflow metadata DB ready in {time.monotonic() - migrated:.1f} s.")
    path = Path(settings.ETL_DAGS_FOLDER) / f"{pipeline.dag_id}.py"
    dag = runpy.run_path(str(path))[_dag_variable(path)]
    out(f"Running {pipeline.dag_id} ({name}) through Airflow in this process…")
    ran = time.monotonic()
    dag_run = dag.test()
    writeback.flush(timeout=60)
    out(f"dag.test() took {time.monotonic() - ran:.1f} s.")
    writeback.close_connection()
    out(f"Generated, migrated and ran in {time.monotonic() - started:.1f} s: state {_state(dag_run.state)}.")
    return PipelineRun.objects.filter(airflow_dag_id=pipeline.dag_id, airflow_run_id=dag_run.run_id).first()


def _dag_variable(path: Path) -> str:
    namespace = runpy.run_path(str(path))
    for variable, value in namespace.items():
        if type(value).__name__ == "DAG":
            return variable
    raise RuntimeError(f"{path} defines no DAG")


def _state(value) -> str:
    return str(getattr(value, "value", value))
