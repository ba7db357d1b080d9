"""safe_migrate as an operator runs it: checks, a backup, monitored migrations, and --restore."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.migrations.recorder import MigrationRecorder

from tests.migrations_kit import scratch as scratch_db
from tests.migrations_kit.seed import seed_rows

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
INDEX_MIGRATION = ("runs", "0002_task_runs_status_run_idx")


def safe_migrate(alias: str, *args, **options) -> str:
    out = StringIO()
    call_command("safe_migrate", *args, database=alias, interactive=False, stdout=out, **options)
    return out.getvalue()


def applied(connection) -> set:
    return set(MigrationRecorder(connection).applied_migrations())


def test_safe_migrate_stops_on_rows_a_pending_constraint_rejects(scratch, settings, tmp_path):
    from django_etl.lineage.models import DataLineage

    seeded = seed_rows(scratch.alias)
    task_run = seeded["task_runs"][2]
    loop = DataLineage(source_task=task_run, target_task=task_run, relationship_type="direct")
    DataLineage.objects.using(scratch.alias).bulk_create([loop])
    settings.MIGRATION_MODULES = {"lineage": "tests.migrations_kit.lineage_check"}
    state = applied(scratch)

    with pytest.raises(CommandError) as error:
        safe_migrate(scratch.alias, backup_dir=tmp_path)

    message = str(error.value)
    assert (
        "lineage.9001_lineage_not_self: check constraint lineage_not_self on data_lineage — 1 row(s)"
        in message
    )
    assert f"id={loop.pk}" in message
    assert "nothing was changed" in message and "Fix or delete those rows" in message
    assert applied(scratch) == state
    assert list(tmp_path.iterdir()) == []  # stopped before the backup


def test_safe_migrate_backs_up_migrates_with_progress_and_restores(scratch, tmp_path):
    from django_etl.core.models import Organization

    seed_rows(scratch.alias)
    scratch_db.migrate(scratch.alias, "runs", "0001")

    text = safe_migrate(scratch.alias, backup_dir=tmp_path)

    [archive] = list(tmp_path.iterdir())
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    pending = scratch_db.runs_after_initial()
    assert f"{len(pending)} migration(s) to run" in text and "No pending migration adds a rule" in text
    assert "Backup of organizations, auth_user" in text and str(archive) in text
    assert f"[1/{len(pending)}] Applying runs.0002_task_runs_status_run_idx" in text and "OK in" in text
    assert INDEX_MIGRATION in applied(scratch)

    Organization.objects.using(scratch.alias).update(name="garbled")
    with pytest.raises(CommandError, match="migrate runs 0001_initial"):
        safe_migrate(scratch.alias, restore=archive)
    scratch_db.migrate(scratch.alias, "runs", "0001")
    text = safe_migrate(scratch.alias, restore=archive)
    assert "organizations: 2 row(s)" in text
    assert set(Organization.objects.using(scratch.alias).values_list("name", flat=True)) == {"Acme", "Globex"}


def test_safe_migrate_dry_run_and_nothing_to_do_change_nothing(scratch, tmp_path):
    assert "No migrations to apply" in safe_migrate(scratch.alias, backup_dir=tmp_path)
    scratch_db.migrate(scratch.alias, "runs", "0001")
    text = safe_migrate(scratch.alias, backup_dir=tmp_path, dry_run=True)
    assert "runs.0002_task_runs_status_run_idx" in text and "Dry run" in text
    assert INDEX_MIGRATION not in applied(scratch)
    assert list(tmp_path.iterdir()) == []


def test_safe_migrate_help_explains_checks_backup_restore_and_timeouts(capsys):
    with pytest.raises(SystemExit):
        call_command("safe_migrate", "--help")
    text = " ".join(capsys.readouterr().out.split())
    for words in ("pg_dump -Fc", "ETL_MIGRATION_LOCK_TIMEOUT", "--restore FILE", "--no-backup", "--dry-run"):
        assert words in text


def test_safe_migrate_from_the_command_line_on_a_populated_database(scratch, tmp_path):
    seed_rows(scratch.alias)
    scratch_db.migrate(scratch.alias, "runs", "0001")
    base = scratch_db.server_settings()
    url = f"postgres://{base['USER']}@{base['HOST']}:{base['PORT'] or 5432}/{scratch.alias}"
    env = {**os.environ, "DATABASE_URL": url, "ETL_VAR_DIR": str(tmp_path), "DJANGO_DEBUG": "true"}

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    result = manage("safe_migrate", "--noinput")
    assert result.returncode == 0, result.stderr
    [archive] = list((tmp_path / "backups").iterdir())
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert (
        f"[1/{len(scratch_db.runs_after_initial())}] Applying runs.0002_task_runs_status_run_idx"
        in result.stdout
    )

    refused = manage("safe_migrate", "--restore", str(archive), "--noinput")
    assert refused.returncode == 1
    assert "python manage.py migrate runs 0001_initial" in refused.stderr
