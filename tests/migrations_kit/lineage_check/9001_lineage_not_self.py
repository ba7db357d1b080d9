"""A pending constraint for the pre-check and lock tests: a lineage edge joins two different task runs."""

from django.db import migrations, models

from tests.migrations_kit.fake_migrations import latest_real


class Migration(migrations.Migration):
    dependencies = [("lineage", latest_real("django_etl.lineage.migrations"))]

    operations = [
        migrations.AddConstraint(
            model_name="datalineage",
            constraint=models.CheckConstraint(
                condition=~models.Q(source_task=models.F("target_task")), name="lineage_not_self"
            ),
        ),
    ]
