"""Fixtures of the migration tests: a migrated template database per session, a copy of it per test."""

from __future__ import annotations

import pytest

from tests.migrations_kit import scratch as scratch_db


@pytest.fixture(scope="session")
def migrated_template(django_db_blocker):
    with django_db_blocker.unblock():
        name = scratch_db.create_migrated_template()
    yield name
    with django_db_blocker.unblock():
        scratch_db.drop(name)


@pytest.fixture
def scratch(migrated_template, django_db_blocker):
    """A fully migrated database of this test's own, as a Django connection (its alias is its name)."""
    with django_db_blocker.unblock(), scratch_db.scratch_database(template=migrated_template) as connection:
        yield connection
