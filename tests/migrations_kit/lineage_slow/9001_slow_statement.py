"""A migration whose statement outlives a short statement timeout."""

from django.db import migrations

from tests.migrations_kit.fake_migrations import latest_real


class Migration(migrations.Migration):
    dependencies = [("lineage", latest_real("django_etl.lineage.migrations"))]

    operations = [migrations.RunSQL("SELECT pg_sleep(5)", migrations.RunSQL.noop)]
