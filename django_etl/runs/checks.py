"""System check (``manage.py check --database default``): task_runs has partitions ahead and an empty default."""

from __future__ import annotations

from django.core import checks
from django.db import DatabaseError, connections


@checks.register(checks.Tags.database)
def check_partitions(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """The partition check of the etl_partitions job, as warnings (runs.W001, runs.W002)."""
    from django_etl.runs import partition_health

    messages: list[checks.CheckMessage] = []
    for alias in databases or []:
        try:
            health = partition_health.inspect(connections[alias])
        except DatabaseError:  # not reachable or not migrated: other checks say so
            continue
        if health is None:
            continue
        for check_id, problem in (
            ("runs.W001", health.future_problem()),
            ("runs.W002", health.default_problem()),
        ):
            if problem:
                messages.append(
                    checks.Warning(
                        problem, hint="docs/partitioning.md", id=check_id, obj=f"database {alias!r}"
                    )
                )
    return messages
