"""lineage's migrations plus 9001, which adds a check constraint: no lineage edge from a task run to itself."""

from tests.migrations_kit.fake_migrations import with_real

__path__ = with_real(__path__, "django_etl.lineage.migrations")
