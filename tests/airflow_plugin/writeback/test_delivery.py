"""Delivery of write-backs: bounded waits, per-process state, and the drain when a component or task stops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from airflow_plugin.writeback import delivery
from tests.airflow_plugin.conftest import RECORDER_DATABASES

ROOT = Path(__file__).resolve().parents[3]


def test_drain_with_nothing_queued_returns_at_once():
    assert delivery.drain(object()) is True


def test_drain_gives_up_after_the_configured_timeout(settings, caplog):
    settings.ETL_RECORDER_TIMEOUT = 0.5
    release = threading.Event()
    caplog.set_level("WARNING", logger="airflow_plugin.writeback")

    def stuck_write():
        release.wait(30)

    try:
        delivery.deliver(stuck_write, wait=0)
        assert delivery.drain(object()) is False
        assert any("still queued" in r.getMessage() for r in caplog.records)
    finally:
        release.set()
    assert delivery.flush()


FORKING_PROCESS = """
import json, os
from airflow_plugin.writeback import delivery

parent = delivery.state()
parent.django_ready = True  # what the warm-up leaves behind in the scheduler
parent.run_row.put("key", "parent's row")
delivery.deliver(lambda: None)  # the parent's worker thread runs
read, write = os.pipe()
if os.fork() == 0:  # a task process forked from the executor's worker
    child = delivery.state()
    facts = {"fresh": child is not parent, "cached": child.run_row.get("key"), "ready": child.django_ready}
    os.write(write, json.dumps({**facts, "started": child.started}).encode())
    os._exit(0)
os.wait()
print(os.read(read, 1000).decode())
"""


def test_state_in_a_forked_child_is_fresh_but_keeps_django_ready():
    result = subprocess.run(
        [sys.executable, "-c", FORKING_PROCESS], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts == {"fresh": True, "cached": None, "ready": True, "started": False}


# A process that reports a run while the Django database makes it wait, then stops the way Airflow stops a
# task process: the listener manager's before_stopping, then os._exit() (the supervisor's fork exits so,
# without joining the worker thread).
STOPPING_PROCESS = """
import importlib, json, os, sys
from datetime import UTC, datetime

from airflow_plugin import writeback
from airflow_plugin.writeback import delivery, recorder
from airflow_plugin.writeback.events import RunInfo

manager_module, dag_id, run_id = sys.argv[1:4]
manager = importlib.import_module(manager_module).get_listener_manager()
from airflow.sdk.execution_time.task_runner import TaskRunnerMarker

writeback.setup()
run = RunInfo(dag_id=dag_id, run_id=run_id, run_type="manual", state="running", start_date=datetime.now(UTC))
delivery.deliver(recorder.record_run, run, None, wait=0)  # queued; its caller goes on at once
print("stopping", flush=True)
manager.hook.before_stopping(component=TaskRunnerMarker())
print("stopped", flush=True)
os._exit(0)
"""


@pytest.mark.integration
@pytest.mark.django_db(transaction=True, databases=RECORDER_DATABASES)
@pytest.mark.parametrize("manager", ["airflow.sdk.listener", "airflow.listeners.listener"])
def test_before_stopping_delivers_a_queued_write_before_the_process_exits(pipeline, manager, tmp_path):
    import psycopg
    from django.db import connection

    from django_etl.runs.models import PipelineRun

    db = connection.settings_dict
    url = f"postgresql://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    run_id = f"manual__drain_{manager}"
    with psycopg.connect(url) as lock:
        # The write blocks on its first read until the test lets go: a slow database, on cue.
        lock.execute(f'LOCK TABLE "{PipelineRun._meta.db_table}" IN ACCESS EXCLUSIVE MODE')
        errors = tmp_path / "stderr.txt"
        with open(errors, "w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-c", STOPPING_PROCESS, manager, pipeline.dag_id, run_id],
                cwd=ROOT,
                env={**os.environ, "DATABASE_URL": url, "ETL_RECORDER_TIMEOUT": "60"},
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        try:
            assert process.stdout.readline().strip() == "stopping", errors.read_text()
        finally:
            lock.rollback()  # the process is stopping now: the database answers again
        rest = process.stdout.read()
        process.wait(timeout=120)
    assert (process.returncode, rest.strip()) == (0, "stopped"), errors.read_text()
    written = PipelineRun.objects.filter(airflow_dag_id=pipeline.dag_id, airflow_run_id=run_id)
    assert written.exists(), errors.read_text()
