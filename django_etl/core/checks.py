"""Deployment checks of the platform's own (``manage.py check --deploy``): what Django's do not cover."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

DEVELOPMENT_MAIL_BACKENDS = (
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
)


@checks.register(checks.Tags.security, deploy=True)
def check_email_backend(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """The notify step's mail must leave the machine in production: a development backend drops it."""
    backend = settings.MAILERS.get("default", {}).get("BACKEND", "")
    if backend in DEVELOPMENT_MAIL_BACKENDS:
        return [
            checks.Warning(
                f"The email backend is {backend!r}: notify steps' mail never reaches anyone.",
                hint="Set DJANGO_EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and DJANGO_EMAIL_HOST "
                "(docs/configuration.md).",
                id="etl.W101",
            )
        ]
    return []
