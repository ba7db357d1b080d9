"""The migrations ``migrate [app_label] [migration_name]`` would run, worked out as Django's migrate does."""

from __future__ import annotations

from django.apps import apps
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import AmbiguityError

from django_etl.errors import ConfigurationError


def targets(executor: MigrationExecutor, app_label: str | None, migration_name: str | None) -> list:
    loader = executor.loader
    if app_label is None:
        return loader.graph.leaf_nodes()
    try:
        apps.get_app_config(app_label)
    except LookupError as exc:
        raise ConfigurationError(str(exc)) from None
    if app_label not in loader.migrated_apps:
        raise ConfigurationError(f"App '{app_label}' does not have migrations.")
    if migration_name is None:
        return [key for key in loader.graph.leaf_nodes() if key[0] == app_label]
    if migration_name == "zero":
        return [(app_label, None)]
    try:
        migration = loader.get_migration_by_prefix(app_label, migration_name)
    except AmbiguityError:
        raise ConfigurationError(
            f"More than one migration matches '{migration_name}' in app '{app_label}': give more of its name."
        ) from None
    except KeyError:
        raise ConfigurationError(f"No migration matches '{migration_name}' in app '{app_label}'.") from None
    target = (app_label, migration.name)
    if target not in loader.graph.nodes and target in loader.replacements:
        target = loader.replacements[target].replaces[-1]
    return [target]


def pending(connection, app_label: str | None = None, migration_name: str | None = None) -> list:
    """[(migration, backwards)] in the order migrate runs them."""
    executor = MigrationExecutor(connection)
    return executor.migration_plan(targets(executor, app_label, migration_name))


def label(migration, backwards: bool = False) -> str:
    return f"{migration.app_label}.{migration.name}{' (backwards)' if backwards else ''}"
