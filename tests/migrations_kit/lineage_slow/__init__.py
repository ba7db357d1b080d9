"""lineage's migrations plus 9001, whose one statement runs for seconds (the statement timeout test)."""

from tests.migrations_kit.fake_migrations import with_real

__path__ = with_real(__path__, "django_etl.lineage.migrations")
