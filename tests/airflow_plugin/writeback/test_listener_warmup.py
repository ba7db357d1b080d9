"""The listener sets Django up when an Airflow component starts, so forked task processes inherit it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import json, os, sys
from airflow_plugin.writeback import listener
import django.apps
before = "django.db.models" in sys.modules
listener.on_starting(component=None)
opened = []
if django.apps.apps.ready:
    from django.db import connections
    opened = [alias for alias in connections.settings if connections[alias].connection is not None]
read, write = os.pipe()
pid = os.fork()
if pid == 0:  # what a task process forked from the scheduler's executor sees
    os.write(write, json.dumps({"child_ready": django.apps.apps.ready}).encode())
    os._exit(0)
os.waitpid(pid, 0)
child = json.loads(os.read(read, 1000))
print(json.dumps({"before": before, "ready": django.apps.apps.ready, "opened": opened, **child}))
"""


def run_probe(**env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": "", "DJANGO_SETTINGS_MODULE": "django_etl.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_on_starting_sets_django_up_without_connecting_and_forks_inherit_it(tmp_path):
    outcome = run_probe(ETL_VAR_DIR=str(tmp_path))
    assert outcome == {"before": False, "ready": True, "opened": [], "child_ready": True}


def test_on_starting_warm_up_can_be_turned_off(tmp_path):
    outcome = run_probe(ETL_VAR_DIR=str(tmp_path), ETL_WARM_DJANGO="false")
    assert outcome["ready"] is False and outcome["child_ready"] is False


def test_on_starting_survives_a_broken_django_configuration(tmp_path):
    # DEBUG off without secrets: the settings refuse to load; Airflow must start anyway.
    outcome = run_probe(ETL_VAR_DIR=str(tmp_path), DJANGO_DEBUG="false", DJANGO_SECRET_KEY="")
    assert outcome["ready"] is False
