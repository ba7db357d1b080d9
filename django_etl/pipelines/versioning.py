"""Pipeline.version bookkeeping: every change to a pipeline's config or steps gets a new patch version."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django_etl.pipelines.models import Pipeline, PipelineStep

STEP_FIELDS = ("name", "order_index", "step_type", "config", "dependencies", "is_parallel")
PIPELINE_FIELDS = ("name", "description", "config", "metadata")

_local = threading.local()


def next_patch(version: str) -> str:
    """1.4.2 -> 1.4.3; a version without a numeric patch part gets ".1" appended."""
    head, _, last = version.rpartition(".")
    if last.isdigit():
        return f"{head}.{int(last) + 1}" if head else str(int(last) + 1)
    return f"{version}.1"


def _stored_values(model, pk, fields) -> dict | None:
    return model._default_manager.filter(pk=pk).values(*fields).first()


def config_changed(pipeline: Pipeline) -> bool:
    stored = _stored_values(type(pipeline), pipeline.pk, PIPELINE_FIELDS)
    return stored is not None and any(stored[f] != getattr(pipeline, f) for f in PIPELINE_FIELDS)


def step_changed(step: PipelineStep) -> bool:
    stored = _stored_values(type(step), step.pk, STEP_FIELDS)
    return stored is None or any(stored[f] != getattr(step, f) for f in STEP_FIELDS)


class _Batch:
    def __init__(self, new_pipeline_ids: set) -> None:
        self.new_ids = set(new_pipeline_ids)
        self.bumped: set = set()
        self.pending: dict = {}


def _current_batch() -> _Batch | None:
    return getattr(_local, "batch", None)


def note_created(pipeline: Pipeline) -> None:
    """A pipeline created inside a batch keeps its initial version."""
    current = _current_batch()
    if current is not None:
        current.new_ids.add(pipeline.pk)


def should_bump_on_save(pipeline: Pipeline) -> bool:
    """Whether a save of this pipeline must bump its version (its own fields changed)."""
    if pipeline._state.adding or not config_changed(pipeline):
        return False
    current = _current_batch()
    if current is None:
        return True
    if pipeline.pk in current.bumped or pipeline.pk in current.new_ids:
        return False
    current.bumped.add(pipeline.pk)
    return True


def record_step_change(pipeline: Pipeline) -> None:
    """Bump now, or once at the end of the enclosing ``batch()``."""
    current = _current_batch()
    if current is None:
        _bump(pipeline)
    elif pipeline.pk not in current.bumped and pipeline.pk not in current.new_ids:
        current.pending.setdefault(pipeline.pk, pipeline)


def _bump(pipeline: Pipeline) -> None:
    pipeline.version = next_patch(pipeline.version)
    # update() so the bump itself does not look like a config change, and does not race a concurrent save.
    type(pipeline)._default_manager.filter(pk=pipeline.pk).update(version=pipeline.version)


@contextlib.contextmanager
def batch(*, new_pipeline_ids: set | None = None) -> Iterator[None]:
    """Group the changes of one edit so a save of a pipeline and its steps bumps the version once.

    Pipelines created inside the batch keep their initial version: it describes their first configuration.
    """
    if _current_batch() is not None:
        yield
        return
    current = _local.batch = _Batch(new_pipeline_ids or set())
    try:
        yield
    finally:
        _local.batch = None
    for pk, pipeline in current.pending.items():
        if pk not in current.bumped:
            _bump(pipeline)
