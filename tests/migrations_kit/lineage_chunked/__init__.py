"""lineage's migrations plus 9001, a data migration in chunks that a test interrupts and resumes."""

from tests.migrations_kit.fake_migrations import with_real

__path__ = with_real(__path__, "django_etl.lineage.migrations")
