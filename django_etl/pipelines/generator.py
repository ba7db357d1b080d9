"""Writes one DAG file per deployed pipeline into a dags folder, and removes the files of the others.

The function behind ``generate_dags``, the admin action, the save signal and the maintenance DAG. Files are
written atomically and only when their bytes change; a pipeline that fails validation keeps its previous
file; files without the generator's header are never touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from django_etl.pipelines import codegen
from django_etl.pipelines.dagspec import build_spec
from django_etl.pipelines.models import Pipeline
from django_etl.pipelines.validation import Report

LOCK_NAME = ".generate_dags.lock"


@dataclass
class Summary:
    """What one run did (or, with check/dry_run, would do). File names are relative to the folder."""

    folder: Path
    applied: bool
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, Report] = field(default_factory=dict)  # pipeline label -> its problems
    # What Airflow could not be told afterwards (re-parse, pause state): django_etl/control/sync.py.
    airflow_problems: list[str] = field(default_factory=list)
    pipelines: list = field(default_factory=list, repr=False)  # the deployed pipelines of this run
    edited_dag_ids: list[str] = field(default_factory=list)  # DAGs whose existing file was rewritten

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed)

    @property
    def ok(self) -> bool:
        return not self.failed

    def differences(self) -> list[str]:
        return (
            [f"missing: {name}" for name in self.created]
            + [f"differs: {name}" for name in self.updated]
            + [f"stale: {name}" for name in self.removed]
        )

    def report(self) -> str:
        """Every problem of every failed pipeline, one per line."""
        return "\n".join(str(problem) for report in self.failed.values() for problem in report)

    def line(self) -> str:
        verb = "" if self.applied else " (nothing written)"
        return (
            f"generate_dags{verb}: {len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.removed)} removed, {len(self.failed)} failed"
        )


def generate(
    *,
    output: Path | str | None = None,
    pipeline_ids: Iterable[uuid.UUID | str] | None = None,
    check: bool = False,
    dry_run: bool = False,
    trial_build: bool | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> Summary:
    """Bring ``output`` in line with the database; only the given pipelines' files when ``pipeline_ids``.

    ``check`` and ``dry_run`` change nothing. ``trial_build`` (default: ETL_GENERATE_TRIAL_BUILD, on)
    builds each new or changed file's DAG with Airflow before writing it, so a file Airflow would reject
    is reported as a failure and never replaces a good one.
    """
    folder = Path(output or settings.ETL_DAGS_FOLDER)
    apply = not (check or dry_run)
    if trial_build is None:
        trial_build = bool(settings.ETL_GENERATE_TRIAL_BUILD)
    scope = None if pipeline_ids is None else {uuid.UUID(str(i)) for i in pipeline_ids}
    summary = Summary(folder=folder, applied=apply)
    if apply:
        folder.mkdir(parents=True, exist_ok=True)
    with _lock(folder, apply):
        deployed = _write_deployed(folder, scope, apply, trial_build, summary, log)
        _remove_stale(folder, scope, deployed, apply, summary, log)
    log(summary.line())
    if apply:
        from django_etl.control.sync import after_generate

        summary.airflow_problems = after_generate(summary.pipelines, summary.edited_dag_ids)
        for problem in summary.airflow_problems:
            log(problem)
    return summary


def fingerprint(output: Path | str | None = None) -> str:
    """A cheap digest of everything a generation depends on: pipelines (id, version, status, time), connectors,
    the compiler's code and the folder's files. Equal digests: a generation would change nothing.
    """
    import hashlib

    from django_etl.connectors.models import Connector
    from django_etl.pipelines.models import PipelineStep

    folder = Path(output or settings.ETL_DAGS_FOLDER)
    digest = hashlib.sha256()
    for row in Pipeline.objects.order_by("pk").values_list("pk", "version", "status", "updated_at"):
        digest.update(repr(row).encode())
    # Steps too: a step changed without Pipeline.save() (a script, a migration) must still count.
    for row in PipelineStep.objects.order_by("pk").values_list(
        "pk", "pipeline_id", "name", "step_type", "order_index", "is_parallel", "config", "dependencies"
    ):
        digest.update(repr(row).encode())
    for row in Connector.objects.order_by("pk").values_list("pk", "name", "connector_type", "is_active"):
        digest.update(repr(row).encode())
    for source in (codegen.__file__, sys.modules[build_spec.__module__].__file__):
        digest.update(f"{Path(source).stat().st_mtime_ns}".encode())  # an upgrade changes what is generated
    if folder.is_dir():
        for path in sorted(folder.glob("*.py")):
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _pipelines(scope: set[uuid.UUID] | None):
    pipelines = Pipeline.objects.deployed().select_related("organization").prefetch_related("steps")
    if scope is not None:
        pipelines = pipelines.filter(pk__in=scope)
    return pipelines.order_by("pk")


def _write_deployed(folder, scope, apply, trial_build, summary, log) -> dict[uuid.UUID, str]:
    """Write every deployed pipeline's file (a failed one keeps its old file); return id -> file name."""
    deployed: dict[uuid.UUID, str] = {}
    pipelines = list(_pipelines(scope))
    connectors = _connectors_by_organization({p.organization_id for p in pipelines})
    summary.pipelines.extend(pipelines)
    for pipeline in pipelines:
        name = codegen.filename_for(pipeline.dag_id)
        deployed[pipeline.pk] = name
        label = f"{pipeline.name} ({pipeline.pk})"
        spec, report = build_spec(
            pipeline, list(pipeline.steps.all()), connectors=connectors.get(pipeline.organization_id, {})
        )
        path = folder / name
        existing = _read(path)
        text = codegen.render(spec) if spec is not None else None
        if text is not None and existing is not None and existing != text and not _is_generated(existing):
            report.add(
                f"pipeline {pipeline.name!r}",
                "",
                f"{path} exists and was not written by generate_dags; move it",
            )
        elif text is not None and text != existing and trial_build:
            _trial_build(spec, pipeline, report)
        if report:
            summary.failed[label] = report
            for problem in report:
                log(f"FAILED {name}: {problem}")
            continue
        if existing == text:
            summary.unchanged.append(name)
            continue
        (summary.created if existing is None else summary.updated).append(name)
        if existing is not None:
            summary.edited_dag_ids.append(pipeline.dag_id)
        log(f"{'create' if existing is None else 'update'} {name} ({pipeline.name}, v{pipeline.version})")
        if apply:
            write_atomically(path, text)
    return deployed


def _remove_stale(folder, scope, deployed, apply, summary, log) -> None:
    """Remove generated files whose pipeline is not deployed, or that are a second file of a deployed one."""
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.py")):
        pipeline_id = _generated_pipeline_id(path)
        if pipeline_id is None or (scope is not None and pipeline_id not in scope):
            continue
        expected = deployed.get(pipeline_id)
        if expected == path.name:
            continue
        summary.removed.append(path.name)
        why = f"a copy of {expected}" if expected else f"pipeline {pipeline_id} is not active or paused"
        log(f"remove {path.name} ({why})")
        if apply:
            path.unlink(missing_ok=True)


def _trial_build(spec: dict, pipeline: Pipeline, report: Report) -> None:
    """Build the DAG as the file will (same builder, same spec) and run Airflow's checks on it.

    A failure becomes a problem of the pipeline, so the file is not written and the previous one stays.
    The file's literal is the spec exactly (codegen's round-trip tests), so the text need not be executed.
    """
    from airflow_plugin.builder import build_dag

    try:
        dag = build_dag(spec)
        dag.validate()  # what the DagBag checks before accepting a DAG
        dag.params.validate()  # what every run checks: a bad default would fail each run
    except Exception as exc:
        report.add(f"pipeline {pipeline.name!r}", "dag", f"Airflow rejects the DAG: {exc}")


def _connectors_by_organization(organization_ids: set) -> dict:
    """organization id -> {connector name: Connector}: one query for the whole run."""
    from django_etl.connectors.models import Connector

    result: dict = {organization_id: {} for organization_id in organization_ids}
    for connector in Connector.objects.filter(organization_id__in=organization_ids):
        result[connector.organization_id][connector.name] = connector
    return result


def _generated_pipeline_id(path: Path) -> uuid.UUID | None:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            return codegen.pipeline_id_in(handle.read(codegen.HEADER_BYTES))
    except OSError:
        return None


def _is_generated(text: str) -> bool:
    return codegen.pipeline_id_in(text[: codegen.HEADER_BYTES]) is not None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        return ""  # not ours and not text: treated as "differs", and refused as not generated


def write_atomically(path: Path, text: str) -> None:
    """Write to a hidden temporary file in the same folder, then rename: readers see old or new, never half."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def _lock(folder: Path, apply: bool) -> Iterator[None]:
    """One writer at a time per folder (the admin's save signal and the maintenance DAG may overlap)."""
    if not apply:
        yield
        return
    with (folder / LOCK_NAME).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
