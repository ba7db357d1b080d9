"""A chunked data migration: each lineage edge's metadata counts the times it was backfilled (once, if right).

``INTERRUPT_AFTER`` (set by the test) makes the run fail after that many chunks, as a killed process would.
"""

from django.db import migrations

from django_etl.migrations_kit.chunked import ResumableRunPython, migrate_in_chunks
from tests.migrations_kit.fake_migrations import latest_real

NAME = "lineage.9001_backfill_in_chunks"
INTERRUPT_AFTER: int | None = None


class Interrupted(RuntimeError):
    pass


def backfill(apps, schema_editor):
    DataLineage = apps.get_model("lineage", "DataLineage")
    alias = schema_editor.connection.alias
    chunks = 0

    def process(rows):
        nonlocal chunks
        if INTERRUPT_AFTER is not None and chunks == INTERRUPT_AFTER:
            raise Interrupted(f"interrupted after {chunks} chunks")
        chunks += 1
        for edge in rows:
            edge.metadata["backfilled"] = edge.metadata.get("backfilled", 0) + 1
        DataLineage.objects.using(alias).bulk_update(rows, ["metadata"])

    migrate_in_chunks(DataLineage.objects.using(alias), process, name=NAME, chunk_size=2)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("lineage", latest_real("django_etl.lineage.migrations"))]

    operations = [ResumableRunPython(backfill, migrations.RunPython.noop)]
