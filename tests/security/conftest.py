"""Fixtures of the hostile-tenant tests: planted canaries, staged inputs, the step runners of tests/airflow_plugin."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

# The step runners (a StepRun on a per-test staging folder) and the Airflow session fixtures, shared as is.
from tests.airflow_plugin.conftest import airflow_db, recorder_alias  # noqa: F401
from tests.airflow_plugin.steps.conftest import execute, file_root, file_runtime, make_run, staging  # noqa: F401

CANARY_VARIABLE = "ETL_SANDBOX_CANARY"


@dataclass
class Canaries:
    """A secret environment value, a secret file outside every root, and the folders an escape would reach."""

    env_value: str
    file_value: str
    file: Path
    foreign_root: Path  # another organization's file root
    dags: Path  # a dags folder Airflow would import
    outside: Path

    def assert_absent(self, *texts: object) -> None:
        for text in texts:
            rendered = text if isinstance(text, str) else json.dumps(text, default=str)
            assert self.env_value not in rendered
            assert self.file_value not in rendered

    def assert_no_file_written(self) -> None:
        assert sorted(p.name for p in self.dags.iterdir()) == []

    def assert_absent_from_tree(self, root: Path) -> None:
        """Neither canary in any file under ``root`` (staged data, manifests, logs)."""
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert self.env_value.encode() not in data, path
                assert self.file_value.encode() not in data, path


@pytest.fixture
def canaries(tmp_path, monkeypatch) -> Canaries:
    outside = tmp_path / "outside"
    foreign_root = tmp_path / "other_org_root"
    dags = tmp_path / "dags"
    for folder in (outside, foreign_root, dags):
        folder.mkdir()
    env_value = f"canary-env-{uuid.uuid4().hex}"
    file_value = f"canary-file-{uuid.uuid4().hex}"
    monkeypatch.setenv(CANARY_VARIABLE, env_value)
    canary_file = outside / "canary.txt"
    canary_file.write_text(file_value + "\n")
    (foreign_root / "secret.csv").write_text(f"secret\n{file_value}\n")
    return Canaries(env_value, file_value, canary_file, foreign_root, dags, outside)


@pytest.fixture
def orders(file_root, make_run, execute):  # noqa: F811 - the fixtures imported above
    """A staged dataset ``orders`` (id, status, amount) of the test run, as an extract leaves it."""
    (file_root / "orders.csv").write_text("id,status,amount\n1,paid,5.0\n2,void,1.5\n3,paid,7.0\n")
    execute(
        make_run(
            "extract",
            {"connector": "landing", "path": "orders.csv"},
            connectors={"landing": file_runtime(file_root)},
            output="orders",
            task_id="extract_orders",
        )
    )
    return "orders"
