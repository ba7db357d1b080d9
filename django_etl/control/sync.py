"""After the generator wrote DAG files: Airflow re-parses the edited ones and pauses exactly the paused pipelines.

Called by ``generator.generate`` (so the save signal, the admin action, ``generate_dags`` and the maintenance
DAG all do it). Without ETL_AIRFLOW_API_URL it does nothing. It never raises: what Airflow could not be told
is returned as problems (the admin shows them; the DAG files are written either way, and the next generation
tries again). New files are found by Airflow's directory scan (``[dag_processor] refresh_interval``, 30 s
under ``make airflow``) and created paused or not from the status (``is_paused_upon_creation``).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterable

from django_etl import conf
from django_etl.control.airflow_api import AirflowClient, AirflowRefused, AirflowUnavailable
from django_etl.errors import first_line

log = logging.getLogger(__name__)
# The problems of the last sync in this context: the admin turns them into messages after a save.
last_problems: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "etl_airflow_sync", default=()
)


def enabled() -> bool:
    return bool(str(conf.value("ETL_AIRFLOW_API_URL") or "").strip())


def paused_in_airflow(client: AirflowClient, dag_ids: set[str]) -> dict[str, bool]:
    """dag_id -> is_paused for those of ``dag_ids`` Airflow knows, in as few calls as pages."""
    return {
        dag["dag_id"]: bool(dag.get("is_paused"))
        for dag in client.pages("/api/v2/dags", "dags", {"dag_id_pattern": "pipeline_"})
        if dag.get("dag_id") in dag_ids
    }


def after_generate(pipelines: Iterable, edited_dag_ids: Iterable[str]) -> list[str]:
    """Pause state from ``Pipeline.status`` for ``pipelines``; re-parse the files of ``edited_dag_ids`` now."""
    if not enabled():
        return []
    from django_etl.pipelines.models import PipelineStatus

    problems: list[str] = []
    wanted = {p.dag_id: p.status != PipelineStatus.ACTIVE for p in pipelines}
    wanted = {dag_id: paused for dag_id, paused in wanted.items() if dag_id}
    try:
        client = AirflowClient.from_settings()
        for dag_id in sorted(set(edited_dag_ids)):
            try:
                client.parse_file(client.dag(dag_id)["file_token"])
            except AirflowRefused as exc:
                if exc.status != 404:  # not parsed yet: the directory scan will find it
                    problems.append(f"{dag_id}: not re-parsed: {first_line(exc)}")
        current = paused_in_airflow(client, set(wanted)) if wanted else {}
        for dag_id, paused in sorted(wanted.items()):
            if dag_id in current and current[dag_id] != paused:
                client.set_paused(dag_id, paused)
    except (AirflowUnavailable, AirflowRefused) as exc:
        problems.append(f"Airflow was not updated: {first_line(exc)}")
    for problem in problems:
        log.warning("%s", problem)
    last_problems.set(tuple(problems))
    return problems
