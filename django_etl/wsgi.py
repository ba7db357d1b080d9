"""WSGI entry point for serving the admin (gunicorn django_etl.wsgi)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_etl.settings")
application = get_wsgi_application()
