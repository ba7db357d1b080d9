"""``python manage.py generate_dags``: arguments, exit status, summary line, --check on a hand-edited file."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.support.compiler_helpers import shape_pipeline

pytestmark = pytest.mark.integration


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("generate_dags", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_generate_dags_writes_files_and_ends_with_the_summary(organization, user, file_connector, tmp_path):
    pipeline = shape_pipeline(organization, user, "linear")
    out, _ = run("--output", str(tmp_path))
    assert (tmp_path / f"{pipeline.dag_id}.py").exists()
    assert f"create {pipeline.dag_id}.py (Shape linear, v{pipeline.version})" in out
    assert out.splitlines()[-1] == "generate_dags: 1 created, 0 updated, 0 unchanged, 0 removed, 0 failed"


def test_generate_dags_default_output_is_the_configured_dags_folder(
    organization, user, file_connector, tmp_path, settings
):
    settings.ETL_DAGS_FOLDER = tmp_path / "configured"
    pipeline = shape_pipeline(organization, user, "linear")
    run()
    assert (tmp_path / "configured" / f"{pipeline.dag_id}.py").exists()


def test_generate_dags_check_fails_on_a_hand_edited_file(organization, user, file_connector, tmp_path):
    pipeline = shape_pipeline(organization, user, "linear")
    run("--output", str(tmp_path))
    run("--output", str(tmp_path), "--check")  # fresh folder: passes
    path = tmp_path / f"{pipeline.dag_id}.py"
    edited = path.read_text().replace("'catchup': False", "'catchup': True")
    path.write_text(edited)
    err = io.StringIO()
    with pytest.raises(CommandError, match="is stale: run generate_dags"):
        call_command("generate_dags", "--output", str(tmp_path), "--check", stdout=io.StringIO(), stderr=err)
    assert f"differs: {path.name}" in err.getvalue()
    assert path.read_text() == edited


def test_generate_dags_dry_run_writes_nothing(organization, user, file_connector, tmp_path):
    pipeline = shape_pipeline(organization, user, "linear")
    out, _ = run("--output", str(tmp_path / "dags"), "--dry-run")
    assert f"create {pipeline.dag_id}.py" in out
    assert out.splitlines()[-1].startswith("generate_dags (nothing written): 1 created")
    assert not (tmp_path / "dags").exists()


def test_generate_dags_reports_every_error_writes_the_valid_and_fails(
    organization, user, file_connector, tmp_path
):
    good = shape_pipeline(organization, user, "linear")
    bad = shape_pipeline(organization, user, "diamond", config={"schedule": "sometimes", "retries": -1})
    bad.steps.filter(name="left").update(config={"sql": ""})
    with pytest.raises(CommandError) as failure:
        run("--output", str(tmp_path))
    message = str(failure.value)
    assert "1 pipeline(s) failed:" in message
    assert "pipeline 'Shape diamond' config.retries:" in message
    assert "pipeline 'Shape diamond' config.schedule: 'sometimes' is not a cron expression" in message
    assert "pipeline 'Shape diamond' step 'left' config:" in message
    assert (tmp_path / f"{good.dag_id}.py").exists()
    assert not (tmp_path / f"{bad.dag_id}.py").exists()


def test_generate_dags_only_the_named_pipelines(organization, user, file_connector, tmp_path):
    chosen = shape_pipeline(organization, user, "linear")
    other = shape_pipeline(organization, user, "linear", status="active")
    run("--output", str(tmp_path), "--pipeline", str(chosen.pk))
    assert [p.name for p in tmp_path.glob("*.py")] == [f"{chosen.dag_id}.py"]
    assert other.dag_id not in "".join(p.read_text() for p in tmp_path.glob("*.py"))


def test_generate_dags_rejects_a_pipeline_argument_that_is_not_an_id(db, tmp_path):
    with pytest.raises(CommandError, match="--pipeline 'orders' is not a pipeline id"):
        run("--output", str(tmp_path), "--pipeline", "orders")


def test_generate_dags_exit_status_of_the_real_command(
    transactional_db, organization, user, file_connector, tmp_path
):
    """Deployments compare a dags folder with the database through the process exit status."""
    from django.db import connection

    pipeline = shape_pipeline(organization, user, "linear")
    database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
    }

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", "generate_dags", "--output", str(tmp_path), *args],
            cwd=Path(__file__).resolve().parents[2],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    written = manage()
    assert written.returncode == 0, written.stderr
    assert (
        written.stdout.splitlines()[-1]
        == "generate_dags: 1 created, 0 updated, 0 unchanged, 0 removed, 0 failed"
    )
    assert manage("--check").returncode == 0
    path = tmp_path / f"{pipeline.dag_id}.py"
    path.write_text(path.read_text().replace("'retries': 1", "'retries': 5"))
    stale = manage("--check")
    assert stale.returncode == 1
    assert f"differs: {pipeline.dag_id}.py" in stale.stderr
