"""The import direction a generated DAG file relies on: parsing it loads neither Django nor the data plane."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "pipelines" / "golden" / "pipeline_dag.py.golden"
# What a task process loads in execute(), never a DAG-file parse (Airflow re-parses every file every 30 s).
HEAVY = (
    "django",
    "django_etl.dataplane",
    "django_etl.stepkinds.schemas",
    "duckdb",
    "psycopg",
    "pgpq",
    "boto3",
)

PROBE = """
import json, runpy, sys
namespace = runpy.run_path(sys.argv[1])
dag = namespace["dag"]
print(json.dumps({
    "dag_id": dag.dag_id,
    "tasks": sorted(t.task_type for t in dag.tasks),
    "loaded": [m for m in sys.argv[2].split(",") if m in sys.modules],
}))
"""


def _parse_in_fresh_interpreter(dag_file: Path, tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "AIRFLOW"))}
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow-home"), PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(dag_file), ",".join(HEAVY)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.integration
def test_generated_dag_file_parses_without_django_or_heavy_libraries(tmp_path):
    dag_file = tmp_path / "pipeline_golden.py"
    shutil.copy(GOLDEN, dag_file)
    parsed = _parse_in_fresh_interpreter(dag_file, tmp_path)
    assert parsed["dag_id"].startswith("pipeline_")
    assert parsed["tasks"], "the DAG has no task: the probe parsed nothing"
    assert all(task_type.endswith("Operator") for task_type in parsed["tasks"])
    assert parsed["loaded"] == [], f"a DAG-file parse imported {parsed['loaded']}"


def test_import_linter_contracts_hold():
    """The import contracts in pyproject.toml (Django -> Airflow only through named bridges, ...)."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], capture_output=True, text=True, cwd=REPO, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:]
    summary = re.search(r"Contracts: (\d+) kept, 0 broken", result.stdout)
    assert summary is not None and int(summary.group(1)) >= 3, result.stdout[-2000:]
