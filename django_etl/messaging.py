"""Sending a message by email or webhook: the one delivery code of the notify step and of alert routing.

Email goes through Django's mail backend (``MAILERS``, ``DEFAULT_FROM_EMAIL``; settings.py reads the
``DJANGO_EMAIL_*`` variables). A webhook is a POST of JSON through an API connector's adapter
(``django_etl.dataplane.api``), so its URL obeys the network policy (``dataplane/netpolicy.py``: resolved once,
every address checked, the connection pinned) and its credential goes only to the connector's own origin.
"""

from __future__ import annotations

from typing import Any

WEBHOOK_FORMATS = ("json", "slack")


class EmailNotSent(Exception):
    """The mail server refused or could not be reached; worth trying again later."""


def send_email(subject: str, text: str, recipients: list[str]) -> int:
    """Send one plain-text email to ``recipients``; the number sent (1). Raises EmailNotSent on failure."""
    import smtplib

    from django.conf import settings
    from django.core.mail import send_mail

    # A subject is one line: a newline there would start a new header (header injection).
    subject = " ".join(subject.split())[:250]
    try:
        return send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, list(recipients))
    except (OSError, smtplib.SMTPException) as exc:
        raise EmailNotSent(f"email could not be sent: {type(exc).__name__}: {exc}") from None


def webhook_payload(webhook_format: str, subject: str, text: str, data: dict[str, Any]) -> dict[str, Any]:
    """The JSON body: Slack's ``{"text": …}``, or the subject with the data's own fields."""
    if webhook_format == "slack":
        return {"text": f"*{subject}*\n{text}"}
    return {"subject": subject, **data}


def post_webhook(adapter, path: str, payload: dict[str, Any]) -> int:
    """POST ``payload`` to ``path`` under the API connector's base URL; the HTTP status.

    Raises the adapter's ConnectorError (``retryable`` for network errors, 429 and 5xx; not for a target
    the network policy refuses, nor for a path that leaves the connector's origin).
    """
    return adapter.post_json(path, payload)
