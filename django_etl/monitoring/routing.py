"""Alert routing: the organization's rules decide who hears of an alert; deliveries wait in an outbox."""

from __future__ import annotations


def enqueue(alert, kind: str, *, using: str = "default") -> int:
    """Queue the deliveries the alert's organization's rules ask for (``kind``: new or escalated)."""
    return 0
