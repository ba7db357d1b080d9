"""Column lineage documents: which input columns each output column of a step comes from, and how.

One shape everywhere (the result manifest's ``column_lineage``, DataLineage.metadata, the OpenLineage facet)::

    {"status": "known" | "partial" | "unknown",
     "reason": None | "why some or all of it cannot be known",
     "columns": {"<output column>": [{"dataset": "<input dataset>", "column": "<input column>",
                                      "transformation": "direct" | "filtered" | "derived" | "aggregated"}]},
     "unknown_columns": ["<output column>", ...]}   # only when partial

An output column with an empty list depends on no input column (a constant, ``count(*)``). ``status`` says
whether the mapping is complete: a step whose mapping cannot be worked out says so instead of guessing. Plain
data and the standard library only: the steps, the write-back and the OpenLineage facets all use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Weakest to strongest: a column that went through several operations keeps the strongest.
TRANSFORMATIONS = ("direct", "filtered", "derived", "aggregated")
RANK = {name: rank for rank, name in enumerate(TRANSFORMATIONS)}
KNOWN, PARTIAL, UNKNOWN = "known", "partial", "unknown"

# (dataset, column) -> transformation
Sources = dict[tuple[str, str], str]


def strongest(*transformations: str) -> str:
    """The strongest of ``transformations`` ("aggregated" beats "derived" beats "filtered" beats "direct")."""
    return max(transformations, key=lambda name: RANK.get(name, 0))


def raise_to(sources: Sources, transformation: str) -> Sources:
    """Every source at least ``transformation`` (a filter marks each column that passes through it)."""
    return {source: strongest(kind, transformation) for source, kind in sources.items()}


def document(
    columns: dict[str, Sources], *, unknown: Iterable[str] = (), reason: str | None = None
) -> dict[str, Any]:
    """The JSON document of a mapping; ``unknown`` names output columns whose sources could not be told."""
    unknown = list(unknown)
    entries = {
        name: [
            {"dataset": dataset, "column": column, "transformation": kind}
            for (dataset, column), kind in sorted(sources.items())
        ]
        for name, sources in columns.items()
        if name not in unknown
    }
    if not unknown:
        return {"status": KNOWN, "reason": None, "columns": entries}
    if not entries:
        return not_known(reason or "the source of no output column could be told")
    return {"status": PARTIAL, "reason": reason, "columns": entries, "unknown_columns": unknown}


def not_known(reason: str) -> dict[str, Any]:
    return {"status": UNKNOWN, "reason": reason, "columns": {}}


def pass_through(dataset: str, columns: Iterable[str], transformation: str = "direct") -> dict[str, Any]:
    """Each column copied under its own name (loads, validate steps, extracts of a table or file)."""
    return document({name: {(dataset, name): transformation} for name in columns})


def schema_names(entry: dict[str, Any] | None) -> list[str]:
    """The column names of a manifest dataset entry (its ``schema``)."""
    return [f["name"] for f in (entry or {}).get("schema") or [] if isinstance(f, dict) and "name" in f]


def restricted(doc: dict[str, Any], datasets: Iterable[str]) -> dict[str, Any]:
    """``doc`` keeping only the sources in ``datasets`` (the part one lineage edge hands over)."""
    wanted = set(datasets)
    columns = {}
    for name, entries in (doc.get("columns") or {}).items():
        kept = [e for e in entries if e.get("dataset") in wanted]
        if kept:
            columns[name] = kept
    return {**doc, "columns": columns}


def flat_mapping(doc: dict[str, Any]) -> dict[str, list[str]]:
    """The manifest's older ``column_mapping`` shape: output column -> ["dataset.column", ...]."""
    return {
        name: sorted({f"{e['dataset']}.{e['column']}" for e in entries})
        for name, entries in (doc.get("columns") or {}).items()
    }


def of_manifest(manifest: dict[str, Any] | None, step_type: str | None = None) -> dict[str, Any]:
    """The column lineage of a step's output, from its result manifest, whatever its kind.

    Transforms report it themselves (``column_lineage``); loads and validate steps copy their one input
    column for column; an extract of a table or file copies the source's columns. Anything else says why
    it is not known.
    """
    manifest = manifest or {}
    kind = manifest.get("step_type") or step_type
    reported = manifest.get("column_lineage")
    if isinstance(reported, dict) and reported.get("status") in {KNOWN, PARTIAL, UNKNOWN}:
        return reported
    inputs = [i for i in manifest.get("inputs") or [] if isinstance(i, dict)]
    if kind in {"load", "validate"}:
        if len(inputs) != 1:
            return not_known(f"a {kind} step reads one dataset; its manifest lists {len(inputs)}")
        return pass_through(inputs[0].get("dataset") or "", schema_names(inputs[0]))
    if kind == "extract":
        source = (manifest.get("locations") or {}).get("source") or {}
        outputs = manifest.get("outputs") or []
        if source.get("query"):
            return not_known("an extract query's columns are not traced to source tables")
        if source.get("name") and outputs:
            return pass_through(source["name"], schema_names(outputs[0]))
        return not_known("the extract's source is not recorded in its manifest")
    if kind == "transform":
        return not_known("the transform's manifest has no column_lineage (written by an older version)")
    return not_known(f"a {kind or 'unknown'} step reports no column lineage")
