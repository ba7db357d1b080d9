"""The catch-up reconciler: what write-back could not deliver while Django's database was away, filled from Airflow.

Write-back gives up on an event after ETL_RECORDER_TIMEOUT, and the end-of-run reconciliation repairs a run only
if the database is back by then. This job (the ``etl_catchup`` DAG every ETL_CATCHUP_SCHEDULE, and
``manage.py catch_up_runs``) reads the pipeline DAG runs Airflow changed in the last ETL_CATCHUP_WINDOW_HOURS
through its REST API (task processes may not use Airflow's metadata database), finds what Django lacks and writes
it through the write-back package, the only writer of run records, with the recorder's own functions. A run
already complete costs nothing but its line in a page of the run list; a second pass finds nothing to do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DatabaseError
from django.utils import timezone

from django_etl import conf
from django_etl.control.airflow_api import PAGE_SIZE, AirflowClient, AirflowRefused, AirflowUnavailable
from django_etl.errors import ConfigurationError, EtlError, first_line
from django_etl.pipelines.naming import DAG_ID_PREFIX, pipeline_id_from_dag_id

# builder.doc_md writes these rows into every generated DAG's documentation (the facts of the compiled spec).
_DOC_VERSION = re.compile(r"^\| Version \| `([^`]+)` \|$", re.MULTILINE)
_DOC_HASH = re.compile(r"^\| Content hash \| `([^`]+)` \|$", re.MULTILINE)
_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class CatchUpFailed(EtlError):
    """Some runs could not be caught up; the message lists them (the next pass tries again)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


@dataclass
class CatchUpReport:
    """What one pass saw and did; ``as_dict`` is the maintenance task's XCom."""

    since: datetime
    dry_run: bool = False
    runs_seen: int = 0
    complete: int = 0
    caught_up: list[str] = field(default_factory=list)  # "dag_id/run_id: why it needed it"
    failed: list[str] = field(default_factory=list)

    def line(self) -> str:
        done = "would catch up" if self.dry_run else "caught up"
        return (
            f"{self.runs_seen} pipeline runs changed in Airflow since {self.since.isoformat()}: "
            f"{self.complete} complete in Django, {len(self.caught_up)} {done}, {len(self.failed)} failed"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "dry_run": self.dry_run,
            "runs_seen": self.runs_seen,
            "complete": self.complete,
            "caught_up": self.caught_up,
            "failed": self.failed,
        }


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``90m``, ``6h``, ``2d`` (that long ago) or an ISO 8601 time (UTC when it names no zone)."""
    now = now or timezone.now()
    match = _SINCE.match(text or "")
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"--since {text!r}: give a duration (90m, 6h, 2d) or an ISO 8601 time (2026-12-01T08:00)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def catch_up_runs(
    *,
    since: datetime | None = None,
    dag_id: str | None = None,
    dry_run: bool = False,
    client: AirflowClient | None = None,
    out: Callable[[str], None] | None = None,
) -> CatchUpReport:
    """Fill every gap Django has for the pipeline DAG runs Airflow changed since ``since`` (default: the window).

    Raises ``AirflowUnavailable`` / ``AirflowRefused`` when Airflow cannot be asked (nothing was written), and
    ``CatchUpFailed`` when Django's database refuses the writes; a run that fails on its own is listed in
    ``failed`` and the others go on.
    """
    from airflow_plugin.writeback import catchup

    if dag_id is not None and pipeline_id_from_dag_id(dag_id) is None:
        raise ConfigurationError(
            f"--dag-id {dag_id!r} is not a pipeline's DAG (they read {DAG_ID_PREFIX}<id>)"
        )
    say = out or (lambda line: None)
    client = client or AirflowClient.from_settings()
    since = since or timezone.now() - timedelta(hours=float(conf.value("ETL_CATCHUP_WINDOW_HOURS")))
    report = CatchUpReport(since=since, dry_run=dry_run)
    _sign_in(client)
    say(f"Reading the pipeline runs Airflow changed since {since.isoformat()} from {client.base_url}…")
    known = _DagFacts(client)
    batch: list[dict[str, Any]] = []
    for dag_run in client.dag_runs(updated_since=since, dag_id=dag_id, dag_id_prefix=DAG_ID_PREFIX):
        if pipeline_id_from_dag_id(dag_run.get("dag_id") or "") is None:
            continue
        batch.append(dag_run)
        if len(batch) == PAGE_SIZE:
            _one_batch(catchup, client, known, batch, report, say)
            batch = []
    _one_batch(catchup, client, known, batch, report, say)
    say(report.line())
    return report


def catch_up_job(**kwargs: Any) -> dict[str, Any]:
    """The etl_catchup DAG's task: one pass over the window; fails (so Airflow retries) when a run failed."""
    report = catch_up_runs(**kwargs)
    if report.failed:
        raise CatchUpFailed(f"{report.line()}: " + "; ".join(report.failed[:10]))
    return report.as_dict()


def _sign_in(client: AirflowClient) -> None:
    try:
        client.token(renew=True)
    except AirflowRefused as exc:
        if exc.status in {400, 401, 403, 422}:
            raise AirflowRefused(
                f"Airflow at {client.base_url} refused the service account {client.username!r} "
                f"({first_line(exc)}): check ETL_AIRFLOW_USERNAME and ETL_AIRFLOW_PASSWORD (docs/services.md)",
                status=exc.status,
            ) from None
        raise


def _one_batch(catchup, client, known, batch, report: CatchUpReport, say) -> None:
    if not batch:
        return
    report.runs_seen += len(batch)
    if report.runs_seen > len(batch):  # long windows: a line per page after the first
        say(f"… {report.runs_seen} runs read")
    try:
        gaps = catchup.run_gaps(batch)
    except DatabaseError as exc:
        raise _database_away(exc) from None
    for dag_run in batch:
        key = (dag_run["dag_id"], dag_run["dag_run_id"])
        name = f"{key[0]}/{key[1]}"
        try:
            reason = gaps.get(key)
            task_instances = None
            if reason == "open":
                task_instances = client.task_instances(*key)
                reason = (
                    "; ".join(catchup.task_gaps(dag_run, task_instances, known.spec(dag_run))[:3]) or None
                )
            if reason is None:
                report.complete += 1
                continue
            if not report.dry_run:
                if task_instances is None:
                    task_instances = client.task_instances(*key)
                tries = {
                    ti["task_id"]: client.task_tries(dag_run["dag_id"], dag_run["dag_run_id"], ti["task_id"])
                    for ti in task_instances
                    if int(ti.get("try_number") or 0) > 1
                }
                catchup.catch_up(
                    dag_run,
                    task_instances,
                    tries,
                    known.spec(dag_run),
                    known.details(key[0]).get("dag_run_timeout"),
                )
            report.caught_up.append(f"{name}: {reason}")
            say(f"{name}: {'would catch up' if report.dry_run else 'caught up'} ({reason})")
        except AirflowUnavailable:
            raise
        except DatabaseError as exc:
            raise _database_away(exc) from None
        except Exception as exc:  # one odd run must not keep the others from being caught up
            report.failed.append(f"{name}: {type(exc).__name__}: {first_line(exc)}")
            say(f"{name}: failed: {first_line(exc)}")


def _database_away(exc: Exception) -> CatchUpFailed:
    return CatchUpFailed(
        f"Django's database refused write-back's connection ({type(exc).__name__}: {first_line(exc)}); "
        "nothing more was written. Check DATABASE_URL (or ETL_RECORDER_DATABASE_URL); the next pass tries again."
    )


class _DagFacts:
    """Per pass, per DAG: its details and newest version from the API, and the spec that ran, asked once."""

    def __init__(self, client: AirflowClient) -> None:
        self.client = client
        self._details: dict[str, dict[str, Any]] = {}
        self._latest: dict[str, int | None] = {}
        self._specs: dict[tuple[str, int | None], dict[str, Any]] = {}

    def details(self, dag_id: str) -> dict[str, Any]:
        if dag_id not in self._details:
            try:
                self._details[dag_id] = self.client.dag_details(dag_id) or {}
            except AirflowRefused:  # the DAG file is gone; its runs are still caught up
                self._details[dag_id] = {}
        return self._details[dag_id]

    def spec(self, dag_run: dict[str, Any]) -> dict[str, Any]:
        """What the recorder's ``spec`` argument would have held live: the compiled spec's facts and step map.

        Known for sure when the run ran the DAG's newest version and Django's pipeline still compiles to the
        content hash that version's documentation names; else only the facts the documentation gives (or
        nothing), and the recorder resolves steps by name, as it does for the scheduler's events.
        """
        dag_id = dag_run["dag_id"]
        versions = [int(v.get("version_number") or 0) for v in dag_run.get("dag_versions") or []]
        ran = max(versions) if versions else None
        if (dag_id, ran) not in self._specs:
            self._specs[(dag_id, ran)] = self._spec_of(dag_id, ran)
        return self._specs[(dag_id, ran)]

    def _spec_of(self, dag_id: str, ran: int | None) -> dict[str, Any]:
        if dag_id not in self._latest:
            try:
                self._latest[dag_id] = self.client.latest_dag_version(dag_id)
            except AirflowRefused:
                self._latest[dag_id] = None
        if ran is None or ran != self._latest[dag_id]:
            return {}
        facts = doc_facts(self.details(dag_id).get("doc_md"))
        if not facts:
            return {}
        return spec_for(pipeline_id_from_dag_id(dag_id), facts)


def doc_facts(doc_md: str | None) -> dict[str, Any]:
    """The version and content hash a generated DAG's documentation names (airflow_plugin.builder.doc_md)."""
    version, spec_hash = _DOC_VERSION.search(doc_md or ""), _DOC_HASH.search(doc_md or "")
    if not version or not spec_hash:
        return {}
    return {"version": version.group(1), "spec_hash": spec_hash.group(1)}


def spec_for(pipeline_id, facts: dict[str, Any]) -> dict[str, Any]:
    """The recorder's spec for a run of the DAG version ``facts`` describe: with the step map when Django's
    pipeline compiles to that very content hash (same bytes, same steps), else the facts alone."""
    from airflow_plugin.writeback.events import steps_map_of_spec
    from django_etl.pipelines.dagspec import build_spec
    from django_etl.pipelines.models import Pipeline

    pipeline_facts = {"id": str(pipeline_id), **facts}
    pipeline = Pipeline.objects.filter(pk=pipeline_id).select_related("organization").first()
    spec = build_spec(pipeline)[0] if pipeline is not None else None
    if spec is None or spec["pipeline"]["spec_hash"] != facts["spec_hash"]:
        return {"pipeline": pipeline_facts}
    return {"pipeline": pipeline_facts, "steps": steps_map_of_spec(spec["steps"])}
