"""A CreateModel that makes task_runs a monthly range-partitioned table on PostgreSQL."""

from __future__ import annotations

from django.db import migrations

from django_etl.runs import partitioning


class CreatePartitionedModel(migrations.CreateModel):
    """Same model state as CreateModel; on PostgreSQL the table is partitioned by run_started_at."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        model = to_state.apps.get_model(app_label, self.name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if partitioning.is_postgresql(schema_editor.connection):
            partitioning.create_partitioned_table(schema_editor, model)
        else:
            schema_editor.create_model(model)

    def describe(self) -> str:
        return f"Create model {self.name} (range-partitioned by month on PostgreSQL)"


def create_initial_partitions(apps, schema_editor) -> None:
    """This month and the next three (the default partition exists already)."""
    partitioning.ensure_partitions(schema_editor.connection, months_ahead=3)
