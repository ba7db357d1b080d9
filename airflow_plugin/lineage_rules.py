"""What kind of data hand-over a step performs (DataLineage.relationship_type), from its type and config."""

from __future__ import annotations

from typing import Any

DIRECT, DERIVED, AGGREGATED, FILTERED = "direct", "derived", "aggregated", "filtered"
RELATIONSHIPS = {DIRECT, DERIVED, AGGREGATED, FILTERED}
# Operations that keep each row as it is (or drop it): a chain of them is a filter, not a derivation.
_ROW_PRESERVING = {"filter", "select", "deduplicate"}


def relationship_for(step_type: str | None, config: dict[str, Any] | None) -> str:
    """A filter → filtered, an aggregate → aggregated, a plain copy → direct, anything else → derived."""
    config = config or {}
    if step_type in {"load", "validate", "extract"}:
        return DIRECT  # they pass the rows on unchanged
    if step_type != "transform":
        return DERIVED
    operations = [op.get("op") for op in config.get("operations") or [] if isinstance(op, dict)]
    if not operations:
        return DERIVED  # free SQL: the recorder cannot tell, unless the operator's manifest says
    if "aggregate" in operations:
        return AGGREGATED
    if "filter" in operations and set(operations) <= _ROW_PRESERVING:
        return FILTERED
    return DERIVED


def relationship_from_manifest(manifest: dict[str, Any] | None, fallback: str) -> str:
    """The operator's own word (manifest ``relationship``) wins over the config-based guess."""
    value = (manifest or {}).get("relationship")
    return value if value in RELATIONSHIPS else fallback
