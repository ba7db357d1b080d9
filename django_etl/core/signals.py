"""Sign-in bookkeeping: the client address of a request, and ``last_login_ip`` recorded at each login."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver


def _address(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The client's address: the socket's (REMOTE_ADDR), or the one header a trusted proxy sets.

    ``DJANGO_CLIENT_IP_HEADER`` (settings.CLIENT_IP_HEADER, e.g. ``HTTP_X_REAL_IP``) is read only when set:
    any client can send X-Forwarded-For, so no header is trusted by default. Of a comma-separated list the
    right-most entry is taken, the one the trusted proxy itself added.
    """
    if request is None:
        return None
    meta = request.META
    header = getattr(settings, "CLIENT_IP_HEADER", "")
    if header:
        entries = [part for part in meta.get(header, "").split(",") if part.strip()]
        found = _address(entries[-1]) if entries else None
        if found:
            return found
    return _address(meta.get("REMOTE_ADDR"))


@receiver(user_logged_in, dispatch_uid="django_etl.core.record_login_ip")
def record_login_ip(sender, request, user, **kwargs) -> None:
    address = client_ip(request)
    if address is None or not hasattr(user, "last_login_ip"):
        return
    user.last_login_ip = address
    type(user)._default_manager.filter(pk=user.pk).update(last_login_ip=address)
