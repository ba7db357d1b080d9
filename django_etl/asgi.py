"""ASGI entry point for serving the admin (uvicorn django_etl.asgi:application)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_etl.settings")
application = get_asgi_application()
