"""Backups of the critical tables (pg_dump -Fc, owner-only) and their restore, refused on another state."""

from __future__ import annotations

import datetime as dt
import stat

import pytest
from django.db.migrations.recorder import MigrationRecorder

from django_etl.migrations_kit import archive, backup
from django_etl.migrations_kit import restore as restoring
from tests.migrations_kit import scratch as scratch_db
from tests.migrations_kit.seed import seed_rows

pytestmark = pytest.mark.integration

CRITICAL = {
    "organizations",
    "auth_user",
    "auth_user_groups",
    "auth_user_user_permissions",
    "organization_memberships",
    "connectors",
    "credentials",
    "pipelines",
    "pipeline_steps",
}


def count(connection, table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{table}"')
        return cursor.fetchone()[0]


def test_backup_is_owner_only_and_holds_the_critical_tables_and_the_migration_state(scratch, tmp_path):
    seed_rows(scratch.alias)
    taken = backup.take(scratch, tmp_path / "backups")

    assert stat.S_IMODE(taken.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(taken.path.parent.stat().st_mode) == 0o700
    assert set(archive.archive_tables(taken.path)) == CRITICAL | {"django_migrations"}
    assert archive.archived_state(taken.path) == set(MigrationRecorder(scratch).applied_migrations())
    assert "task_runs" not in archive.archive_tables(taken.path)


def test_restore_puts_the_backed_up_rows_back(scratch, tmp_path):
    from django_etl.connectors.models import Connector, Credential
    from django_etl.core.models import Organization
    from django_etl.pipelines.models import PipelineStep

    db = scratch.alias
    seeded = seed_rows(db)
    before = {table: count(scratch, table) for table in CRITICAL | {"task_runs", "alerts"}}
    secret = Credential.objects.using(db).get().encrypted_data
    taken = backup.take(scratch, tmp_path)

    # What a bad data migration might do after the backup.
    Organization.objects.using(db).filter(pk=seeded["organization"].pk).update(name="garbled")
    Organization.objects.using(db).create(name="Added later", slug="added-later")
    Connector.objects.using(db).all().delete()
    Credential.objects.using(db).update(encrypted_data="overwritten")
    PipelineStep.objects.using(db).filter(name="load").update(config={"broken": True})

    report = restoring.restore(scratch, taken.path)

    assert {table: count(scratch, table) for table in before} == before
    assert Organization.objects.using(db).get(pk=seeded["organization"].pk).name == "Acme"
    assert not Organization.objects.using(db).filter(slug="added-later").exists()
    assert Connector.objects.using(db).get().name == "warehouse"
    assert Credential.objects.using(db).get().encrypted_data == secret
    assert Credential.objects.using(db).get().decrypt_data()["password"] == "s3cr3t-canary"
    assert PipelineStep.objects.using(db).get(name="load").config == {}
    assert report.rows["organizations"] == 2 and report.rows["connectors"] == 1


def test_restore_refuses_another_migration_state_and_names_the_way_back(scratch, tmp_path):
    taken = backup.take(scratch, tmp_path)
    scratch_db.migrate(scratch.alias, "runs", "0001")

    with pytest.raises(archive.BackupError) as error:
        restoring.restore(scratch, taken.path)

    message = str(error.value)
    assert "unapplied since the backup: runs.0002_task_runs_status_run_idx" in message
    assert f"python manage.py migrate runs {scratch_db.runs_after_initial()[-1]}" in message


def test_restore_refuses_to_orphan_rows_created_after_the_backup(scratch, tmp_path):
    from django_etl.pipelines.models import Pipeline
    from django_etl.runs.models import PipelineRun

    db = scratch.alias
    seeded = seed_rows(db)
    taken = backup.take(scratch, tmp_path)
    later = Pipeline(
        name="Later",
        organization=seeded["organization"],
        created_by=seeded["user"],
        status="active",
        config={},
    )
    Pipeline.objects.using(db).bulk_create([later])
    PipelineRun.objects.using(db).bulk_create([PipelineRun(pipeline=later, trigger_type="manual")])

    with pytest.raises(
        archive.BackupError, match=r"rolled back, nothing changed.*point at rows the backup does not have"
    ):
        restoring.restore(scratch, taken.path)
    assert Pipeline.objects.using(db).filter(name="Later").exists()


def test_backup_of_a_new_database_is_skipped(tmp_path, django_db_blocker):
    with django_db_blocker.unblock(), scratch_db.scratch_database() as empty:
        assert backup.take(empty, tmp_path) is None


def test_two_backups_in_the_same_second_get_two_files(scratch, tmp_path):
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    first, second = backup.take(scratch, tmp_path, now=moment), backup.take(scratch, tmp_path, now=moment)
    assert first.path.name == f"{scratch.alias}-20260102T030405Z.pgdump"
    assert second.path.name == f"{scratch.alias}-20260102T030405Z-2.pgdump"
