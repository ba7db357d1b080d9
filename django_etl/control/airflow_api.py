"""A small client of Airflow's REST API v2, as a service account with a JWT: Django's side talks HTTP only.

Never imports Airflow. Every failure is one of two errors that name what was asked: ``AirflowUnavailable``
(not configured, unreachable, timed out, 5xx — the admin says so and changes nothing) and ``AirflowRefused``
(a 4xx: Airflow understood and said no, e.g. the DAG is not parsed yet). Settings: ETL_AIRFLOW_API_URL,
ETL_AIRFLOW_USERNAME, ETL_AIRFLOW_PASSWORD, ETL_AIRFLOW_API_TIMEOUT, ETL_AIRFLOW_UI_URL (docs/services.md).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django_etl import conf
from django_etl.errors import EtlError

# A token is renewed this long before Airflow's expiry (jwt_expiration_time, 24 h by default) would bite.
TOKEN_LIFETIME_SECONDS = 3600.0
# Items per page of a list endpoint (Airflow's default [api] maximum_page_limit is 100).
PAGE_SIZE = 100
_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


class AirflowUnavailable(EtlError):
    """Airflow cannot be asked right now (not configured, down, slow): nothing was changed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class AirflowRefused(EtlError):
    """Airflow answered with a 4xx; ``status`` and Airflow's ``detail`` are kept."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, retryable=False)
        self.status = status


@dataclass(frozen=True)
class AirflowClient:
    base_url: str
    username: str
    password: str
    timeout: float = 5.0

    @classmethod
    def from_settings(cls) -> AirflowClient:
        base_url = str(conf.value("ETL_AIRFLOW_API_URL") or "").rstrip("/")
        if not base_url:
            raise AirflowUnavailable("Airflow is not configured: set ETL_AIRFLOW_API_URL (docs/services.md)")
        return cls(
            base_url=base_url,
            username=conf.value("ETL_AIRFLOW_USERNAME"),
            password=conf.value("ETL_AIRFLOW_PASSWORD"),
            timeout=float(conf.value("ETL_AIRFLOW_API_TIMEOUT")),
        )

    # ------------------------------------------------------------ transport
    def _send(self, method: str, path: str, body: Any = None, *, token: str | None = None) -> Any:
        data = None if body is None else json.dumps(body, default=_json_default).encode()
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        what = f"Airflow {method} {path}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = _detail(exc)
            if exc.code >= 500:
                raise AirflowUnavailable(f"{what}: HTTP {exc.code} {detail}") from None
            raise AirflowRefused(f"{what}: HTTP {exc.code} {detail}", status=exc.code) from None
        except (OSError, ValueError) as exc:  # refused, unreachable, timed out, a malformed URL
            raise AirflowUnavailable(f"Airflow is unreachable at {self.base_url} ({exc})") from None
        return json.loads(raw) if raw.strip() else None

    def token(self, *, renew: bool = False) -> str:
        key = (self.base_url, self.username)
        with _tokens_lock:
            cached = _tokens.get(key)
            if cached and not renew and cached[1] > time.monotonic():
                return cached[0]
        answer = self._send("POST", "/auth/token", {"username": self.username, "password": self.password})
        token = (answer or {}).get("access_token")
        if not token:
            raise AirflowRefused("Airflow POST /auth/token: no access_token in the answer", status=401)
        with _tokens_lock:
            _tokens[key] = (token, time.monotonic() + TOKEN_LIFETIME_SECONDS)
        return token

    def call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            return self._send(method, path, body, token=self.token())
        except AirflowRefused as exc:
            if exc.status != 401:
                raise
            return self._send(method, path, body, token=self.token(renew=True))  # expired or rotated secret

    # ------------------------------------------------------------ what Django asks
    def health(self) -> dict[str, Any]:
        return self._send("GET", "/api/v2/monitor/health")

    def dag(self, dag_id: str) -> dict[str, Any]:
        return self.call("GET", f"/api/v2/dags/{_q(dag_id)}")

    def set_paused(self, dag_id: str, paused: bool) -> dict[str, Any]:
        return self.call("PATCH", f"/api/v2/dags/{_q(dag_id)}", {"is_paused": paused})

    def parse_file(self, file_token: str) -> None:
        """Re-parse one DAG file now instead of at the next directory scan."""
        self.call("PUT", f"/api/v2/parseDagFile/{_q(file_token)}")

    def trigger(
        self,
        dag_id: str,
        *,
        run_id: str,
        conf: dict[str, Any],
        interval: tuple[datetime, datetime] | None,
        logical_date: datetime | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "dag_run_id": run_id,
            "conf": conf,
            "logical_date": logical_date,
            "note": note,
        }
        if interval is not None:
            # Airflow keeps a given interval only together with a logical date (TriggerDAGRunPostBody).
            body["logical_date"] = logical_date or interval[1]
            body["data_interval_start"], body["data_interval_end"] = interval
        return self.call("POST", f"/api/v2/dags/{_q(dag_id)}/dagRuns", body)

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.call("GET", f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")

    def set_run_state(self, dag_id: str, run_id: str, state: str) -> dict[str, Any]:
        return self.call("PATCH", f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}", {"state": state})

    def clear_failed_tasks(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """Clear the failed (and upstream-failed) task instances of one run, so they run again."""
        body = {"dag_run_id": run_id, "only_failed": True, "dry_run": False, "reset_dag_runs": True}
        return self.call("POST", f"/api/v2/dags/{_q(dag_id)}/clearTaskInstances", body)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of one run (all pages)."""
        path = f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances"
        return list(self.pages(path, "task_instances", {"order_by": "id"}))

    def task_tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every try of one task instance, the current one included (Airflow's task-instance history)."""
        path = f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/tries"
        return list(self.pages(path, "task_instances", {}))

    def dag_runs(
        self, *, updated_since: datetime, dag_id: str | None = None, dag_id_prefix: str = ""
    ) -> Iterator[dict[str, Any]]:
        """DAG runs Airflow changed since ``updated_since``, oldest first: of ``dag_id``, else of every DAG whose
        id starts with ``dag_id_prefix``. Ordered by id, so runs added while paging only lengthen the last page."""
        params = {"updated_at_gte": updated_since.isoformat(), "order_by": "id"}
        if dag_id is None and dag_id_prefix:
            params["dag_id_prefix_pattern"] = dag_id_prefix
        yield from self.pages(f"/api/v2/dags/{_q(dag_id) if dag_id else '~'}/dagRuns", "dag_runs", params)

    def dag_details(self, dag_id: str) -> dict[str, Any]:
        """The DAG as last parsed: tags, doc_md, dag_run_timeout…"""
        return self.call("GET", f"/api/v2/dags/{_q(dag_id)}/details")

    def latest_dag_version(self, dag_id: str) -> int | None:
        """The number of the DAG's newest version (a new one each time its parsed structure changes)."""
        answer = self.call("GET", f"/api/v2/dags/{_q(dag_id)}/dagVersions?order_by=-version_number&limit=1")
        versions = (answer or {}).get("dag_versions") or []
        return int(versions[0]["version_number"]) if versions else None

    def pages(self, path: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a paged list endpoint (``limit``/``offset``, ``total_entries``), page by page."""
        offset = 0
        while True:
            query = urllib.parse.urlencode({**params, "limit": PAGE_SIZE, "offset": offset})
            answer = self.call("GET", f"{path}?{query}") or {}
            items = list(answer.get(key) or [])
            yield from items
            offset += len(items)
            if not items or offset >= int(answer.get("total_entries") or 0):
                return


# ---------------------------------------------------------------- links to Airflow's UI
def ui_base() -> str:
    return str(conf.value("ETL_AIRFLOW_UI_URL") or conf.value("ETL_AIRFLOW_API_URL") or "").rstrip("/")


def dag_url(dag_id: str) -> str | None:
    base = ui_base()
    return f"{base}/dags/{_q(dag_id)}" if base and dag_id else None


def run_url(dag_id: str, run_id: str) -> str | None:
    base = ui_base()
    return f"{base}/dags/{_q(dag_id)}/runs/{_q(run_id)}" if base and dag_id and run_id else None


def task_url(dag_id: str, run_id: str, task_id: str) -> str | None:
    run = run_url(dag_id, run_id)
    return f"{run}/tasks/{_q(task_id)}" if run and task_id else None


def _q(part: str) -> str:
    return urllib.parse.quote(str(part), safe="")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        return exc.reason or ""
    detail = body.get("detail") if isinstance(body, dict) else body
    return json.dumps(detail)[:500] if not isinstance(detail, str) else detail[:500]
