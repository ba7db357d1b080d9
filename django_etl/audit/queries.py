"""The audit trail as data: the versions of an object and, for each, what changed field by field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models

HISTORY_FIELDS = frozenset(
    {"history_id", "history_date", "history_change_reason", "history_type", "history_user", "secret_changed"}
)


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any


def tracked_fields(record) -> list[str]:
    """The fields of the audited model a historical record keeps (never a credential's ciphertext)."""
    return [f.name for f in record.tracked_fields if f.name not in HISTORY_FIELDS]


def changes(record) -> list[FieldChange]:
    """Field-by-field differences from the version before ``record`` (none for the first version)."""
    previous = record.prev_record
    if previous is None:
        return []
    delta = record.diff_against(previous)  # the editable fields (not timestamps kept by the model itself)
    return [FieldChange(change.field, change.old, change.new) for change in delta.changes]


def values(record) -> list[tuple[str, Any]]:
    return [(name, getattr(record, name)) for name in tracked_fields(record)]


def versions(obj: models.Model):
    """The historical records of ``obj``, newest first (``obj.history``: who, when, +/~/-, every field)."""
    return obj.history.order_by("-history_date", "-history_id")
