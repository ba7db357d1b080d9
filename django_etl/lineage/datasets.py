"""Datasets across runs: which pipelines wrote, checked and read each one, from the task runs a user may see.

A dataset is either a staged dataset, known by its name inside pipelines (``orders_enriched``), or a table,
file or object outside, known by its OpenLineage namespace and name, written as one key
(``sqlite://host/var/demo/warehouse.sqlite3/fact_orders``, ``file://host/data/orders.csv``). Task runs record
both (``input_data`` / ``output_data``, ``location`` from the result manifest; docs/write-back.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse

# How far back the dataset pages look: the newest task runs the user may see.
RECENT_TASK_RUNS = 5000
ROLES = ("wrote", "checked", "read")


@dataclass
class Use:
    """One step of one pipeline using a dataset in one role, over the runs looked at."""

    pipeline_id: Any
    pipeline: str
    step: str
    step_type: str
    role: str
    runs: int = 0
    last_at: datetime | None = None
    last_status: str = ""
    last_run_id: Any = None


@dataclass
class Dataset:
    key: str
    kind: str  # staged, table, file, object, endpoint
    uses: dict[tuple, Use] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.key if self.kind == "staged" else self.key.rsplit("/", 1)[-1]

    def pipelines(self, role: str) -> list[str]:
        return sorted({u.pipeline for u in self.uses.values() if u.role == role})

    @property
    def writers(self) -> str:
        return ", ".join(self.pipelines("wrote")) or "—"

    @property
    def readers(self) -> str:
        return ", ".join(sorted({*self.pipelines("read"), *self.pipelines("checked")})) or "—"

    @property
    def last_at(self) -> datetime | None:
        stamps = [u.last_at for u in self.uses.values() if u.last_at]
        return max(stamps) if stamps else None

    def ordered_uses(self) -> list[Use]:
        return sorted(self.uses.values(), key=lambda u: (ROLES.index(u.role), u.pipeline, u.step))


def location_key(location: dict[str, Any]) -> str:
    """``namespace/name`` of an OpenLineage location (the naming spec's URI)."""
    return f"{location.get('namespace', '')}/{str(location.get('name', '')).lstrip('/')}"


def short_name(location: dict[str, Any]) -> str:
    return str(location.get("name", "")).rstrip("/").rsplit("/", 1)[-1] or location_key(location)


def where(location: dict[str, Any]) -> str:
    """ "table in warehouse.sqlite3", "file on host-1", "object in s3://lake": a location's kind and home."""
    namespace = str(location.get("namespace", ""))
    scheme, _, rest = namespace.partition("://")
    home = rest.rstrip("/").rsplit("/", 1)[-1] if scheme == "sqlite" else rest or namespace
    kind = location.get("kind") or "table"
    preposition = "on" if scheme == "file" else "at" if scheme in {"http", "https"} else "in"
    return f"{kind} {preposition} {home}" if home else kind


def dataset_url(key: str) -> str:
    return f"{reverse('admin:lineage_dataset')}?{urlencode({'key': key})}"


def locations_of(task_run) -> list[tuple[str, dict[str, Any]]]:
    """(role, location) of the tables, files and objects a task run read or wrote outside staging."""
    return _locations(task_run.input_data, task_run.output_data)


def _locations(input_data, output_data) -> list[tuple[str, dict[str, Any]]]:
    found = []
    source = (input_data or {}).get("location") if isinstance(input_data, dict) else None
    if isinstance(source, dict):
        # A query names the tables it reads; a table, file or object is the location itself.
        tables = source.get("tables") if source.get("query") else [source]
        found += [
            ("read", {**t, "kind": t.get("kind") or "table"}) for t in tables or [] if isinstance(t, dict)
        ]
    target = (output_data or {}).get("location") if isinstance(output_data, dict) else None
    if isinstance(target, dict):
        found.append(("wrote", target))
    return found


def uses_of(row: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(key, kind, role) for every dataset one task run (a ``values()`` row) wrote, checked or read."""
    step_type = row["pipeline_step__step_type"]
    found = []
    for entry in _entries(row["input_data"]):
        found.append((entry, "staged", "checked" if step_type == "validate" else "read"))
    if step_type in {"extract", "transform"}:
        found += [(entry, "staged", "wrote") for entry in _entries(row["output_data"])]
    for role, location in _locations(row["input_data"], row["output_data"]):
        found.append((location_key(location), location.get("kind") or "table", role))
    return found


def keys_of(task_run) -> list[str]:
    """The keys of the datasets one task run wrote, checked or read."""
    row = {
        "pipeline_step__step_type": task_run.pipeline_step.step_type,
        "input_data": task_run.input_data,
        "output_data": task_run.output_data,
    }
    return sorted({key for key, _, _ in uses_of(row)})


def _entries(data) -> list[str]:
    if not isinstance(data, dict):
        return []
    return [e["dataset"] for e in data.get("datasets") or [] if isinstance(e, dict) and e.get("dataset")]


def collect(task_runs) -> dict[str, Dataset]:
    """Every dataset the newest ``RECENT_TASK_RUNS`` of ``task_runs`` (already scoped to the user) used."""
    rows = task_runs.order_by("-run_started_at").values(
        "pipeline_run_id",
        "pipeline_run__pipeline_id",
        "pipeline_run__pipeline__name",
        "pipeline_step__name",
        "pipeline_step__step_type",
        "status",
        "run_started_at",
        "input_data",
        "output_data",
    )[:RECENT_TASK_RUNS]
    found: dict[str, Dataset] = {}
    for row in rows:
        for key, kind, role in uses_of(row):
            dataset = found.setdefault(key, Dataset(key, kind))
            use_key = (row["pipeline_run__pipeline_id"], row["pipeline_step__name"], role)
            use = dataset.uses.get(use_key)
            if use is None:
                use = dataset.uses[use_key] = Use(
                    pipeline_id=row["pipeline_run__pipeline_id"],
                    pipeline=row["pipeline_run__pipeline__name"],
                    step=row["pipeline_step__name"],
                    step_type=row["pipeline_step__step_type"],
                    role=role,
                )
            use.runs += 1
            if use.last_at is None or row["run_started_at"] > use.last_at:  # newest first, but be sure
                use.last_at = row["run_started_at"]
                use.last_status = row["status"]
                use.last_run_id = row["pipeline_run_id"]
    return found


def dataset_picture(dataset: Dataset):
    """Writers on the left, the dataset in the middle, checkers and readers on the right."""
    from django_etl.lineage.graph import Edge, Node, Picture

    picture = Picture()
    centre = f"dataset:{dataset.key}"
    picture.add(Node(key=centre, title=dataset.label, subtitle=dataset.kind, tooltip=dataset.key))
    for use in dataset.ordered_uses():
        key = f"{use.role}:{use.pipeline_id}:{use.step}"
        picture.add(
            Node(
                key=key,
                title=use.pipeline,
                subtitle=f"{use.step} ({use.step_type}) · {use.runs} run{'s' if use.runs != 1 else ''}",
                status=use.last_status or "pending",
                href=reverse("admin:runs_pipelinerun_change", args=[use.last_run_id])
                if use.last_run_id
                else None,
                tooltip=f"{use.pipeline} / {use.step}: {use.role}, last run {use.last_status}",
            )
        )
        pair = (key, centre) if use.role == "wrote" else (centre, key)
        picture.edges.append(Edge(*pair, label=use.role))
    return picture
