"""The one way any process (a task, a callback, a listener, a script) sets Django up: once, lazily."""

from __future__ import annotations

import os

SETTINGS_MODULE = "django_etl.settings"


def setup_django() -> None:
    """Configure settings and load the apps once per process; later calls cost nothing.

    Called where Django is first needed (a step resolving connectors, a write-back, the maintenance task), never
    at DAG-parse time: a generated DAG file must import without Django.
    """
    import django
    from django.apps import apps

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    if not apps.ready:
        django.setup()
