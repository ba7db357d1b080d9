"""Regenerate a pipeline's DAG file when it or its steps are saved or deleted, once the transaction commits.

For a dags folder on the same machine as Django (the default). Set ETL_REGENERATE_ON_SAVE=false when
Airflow reads its dags from elsewhere: the maintenance DAG (airflow_plugin/maintenance/) keeps that in
sync. A failure here never reaches the admin's save: the pipeline keeps its previous good file and the
problems are logged (generate_dags and the maintenance DAG report them too).
"""

from __future__ import annotations

import logging
import uuid

from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from django_etl.pipelines.models import Pipeline, PipelineStep

logger = logging.getLogger(__name__)


def regenerate_on_save() -> bool:
    """ETL_REGENERATE_ON_SAVE (django_etl/conf.py); on by default."""
    from django.conf import settings

    return bool(settings.ETL_REGENERATE_ON_SAVE)


def schedule_regeneration(pipeline_id: uuid.UUID) -> None:
    """Regenerate this pipeline's file after the current transaction commits (once per transaction)."""
    if not regenerate_on_save():
        return
    # An admin save writes the pipeline and every inline step in one transaction: one regeneration, at the end.
    # Django drops run_on_commit on rollback, so a rolled-back edit schedules nothing and blocks nothing.
    for _, pending, _ in getattr(connection, "run_on_commit", []):
        if getattr(pending, "etl_pipeline_id", None) == pipeline_id:
            return

    def regenerate() -> None:
        _regenerate(pipeline_id)

    regenerate.etl_pipeline_id = pipeline_id
    transaction.on_commit(regenerate, robust=True)


def _regenerate(pipeline_id: uuid.UUID) -> None:
    from django_etl.pipelines.generator import generate

    try:
        summary = generate(pipeline_ids=[pipeline_id])
    except Exception:
        logger.exception("Could not regenerate the DAG file of pipeline %s", pipeline_id)
        return
    if summary.failed:
        logger.warning(
            "Pipeline %s keeps its previous DAG file: it does not compile.\n%s", pipeline_id, summary.report()
        )


@receiver(post_save, sender=Pipeline, dispatch_uid="etl_regenerate_pipeline_saved")
@receiver(post_delete, sender=Pipeline, dispatch_uid="etl_regenerate_pipeline_deleted")
def pipeline_changed(sender, instance: Pipeline, **kwargs) -> None:
    schedule_regeneration(instance.pk)


@receiver(post_save, sender=PipelineStep, dispatch_uid="etl_regenerate_step_saved")
@receiver(post_delete, sender=PipelineStep, dispatch_uid="etl_regenerate_step_deleted")
def step_changed(sender, instance: PipelineStep, **kwargs) -> None:
    schedule_regeneration(instance.pipeline_id)
