"""The webhook trigger: ``POST /hooks/pipelines/<endpoint id>/trigger``, signed, fresh, small, and valid — or 4xx.

A request carries ``X-ETL-Timestamp`` (Unix seconds) and ``X-ETL-Signature: sha256=<hex>``, the HMAC-SHA256 of
``<timestamp>.<body>`` with the endpoint's secret. It is refused, and starts nothing, when: the endpoint is
unknown (404); the body is larger than ETL_WEBHOOK_MAX_BYTES (413); a header is missing, the timestamp is
further than ETL_WEBHOOK_REPLAY_SECONDS from now or the signature does not match (401); the same signature was
accepted before (409); more than ETL_WEBHOOK_RATE_LIMIT requests were accepted in the last minute (429); the
body is not a JSON object of ``params`` (declared in the pipeline's config, of the declared types) and an
optional ``data_interval`` ``{"start", "end"}`` (400); the pipeline is not active or paused (409). Accepted:
202 with the run id; trigger_type ``webhook``. The body is tenant input held by these checks (docs/security.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from django_etl import conf
from django_etl.errors import first_line

TIMESTAMP_HEADER = "X-ETL-Timestamp"
SIGNATURE_HEADER = "X-ETL-Signature"
ALLOWED_KEYS = {"params", "data_interval"}
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def sign(secret: bytes | str, timestamp: str | int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (what a caller computes)."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@csrf_exempt
@require_POST
def trigger(request: HttpRequest, endpoint_id: str) -> JsonResponse:
    try:
        return _trigger(request, endpoint_id)
    except Refused as refused:
        return JsonResponse({"error": str(refused)}, status=refused.status)


def _trigger(request: HttpRequest, endpoint_id: str) -> JsonResponse:
    from django_etl.control.airflow_api import AirflowRefused, AirflowUnavailable
    from django_etl.control.models import WebhookDelivery, WebhookEndpoint
    from django_etl.control.runs import start_run
    from django_etl.pipelines.choices import DEPLOYED_STATUSES
    from django_etl.runs.choices import TriggerType

    endpoint = _endpoint(WebhookEndpoint, endpoint_id)
    body = _body(request)
    signature = _verified_signature(request, endpoint, body)
    window = max(float(conf.value("ETL_WEBHOOK_REPLAY_SECONDS")), 60.0)
    now = timezone.now()
    with transaction.atomic():
        WebhookEndpoint.objects.select_for_update().filter(pk=endpoint.pk).first()  # one request at a time
        deliveries = WebhookDelivery.objects.filter(endpoint=endpoint)
        deliveries.filter(received_at__lt=now - timedelta(seconds=2 * window)).delete()
        if deliveries.filter(signature=signature).exists():
            raise Refused(409, "this signed request was already accepted (replay)")
        if deliveries.filter(received_at__gte=now - timedelta(seconds=60)).count() >= int(
            conf.value("ETL_WEBHOOK_RATE_LIMIT")
        ):
            raise Refused(429, "rate limit: too many webhook triggers for this pipeline in the last minute")
        try:
            delivery = WebhookDelivery.objects.create(endpoint=endpoint, signature=signature, received_at=now)
        except IntegrityError:
            raise Refused(409, "this signed request was already accepted (replay)") from None
    pipeline = endpoint.pipeline
    payload = _payload(body)
    params = _params(payload.get("params"), (pipeline.config or {}).get("params") or {})
    interval = _interval(payload.get("data_interval"))
    if pipeline.status not in DEPLOYED_STATUSES:
        raise Refused(409, f"pipeline is {pipeline.status}: only active or paused pipelines run")
    try:
        run = start_run(pipeline, trigger_type=TriggerType.WEBHOOK, params=params, interval=interval)
    except AirflowUnavailable as exc:
        return JsonResponse({"error": f"Airflow is unreachable: {first_line(exc)}"}, status=503)
    except AirflowRefused as exc:
        return JsonResponse({"error": f"Airflow refused the run: {first_line(exc)}"}, status=409)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(pipeline_run_id=run.pk)
    return JsonResponse({"pipeline_run": str(run.pk), "airflow_run_id": run.airflow_run_id}, status=202)


def _endpoint(model, endpoint_id: str):
    try:
        key = uuid.UUID(endpoint_id)
    except ValueError:
        raise Refused(404, "no such webhook") from None
    endpoint = model.objects.select_related("pipeline").filter(pk=key).first()
    if endpoint is None:
        raise Refused(404, "no such webhook")
    return endpoint


def _body(request: HttpRequest) -> bytes:
    limit = int(conf.value("ETL_WEBHOOK_MAX_BYTES"))
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise Refused(400, "Content-Length is not a number") from None
    if declared > limit:
        raise Refused(413, f"body larger than {limit} bytes")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise Refused(413, f"body larger than {limit} bytes")
    return body


def _verified_signature(request: HttpRequest, endpoint, body: bytes) -> str:
    stamp = request.headers.get(TIMESTAMP_HEADER, "")
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not stamp or not given:
        raise Refused(401, f"unsigned: {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
    if not stamp.isdigit() or len(stamp) > 12:
        raise Refused(401, f"{TIMESTAMP_HEADER} must be Unix seconds")
    if abs(time.time() - int(stamp)) > float(conf.value("ETL_WEBHOOK_REPLAY_SECONDS")):
        raise Refused(401, f"{TIMESTAMP_HEADER} is outside the replay window")
    expected = sign(endpoint.secret(), stamp, body)
    if not hmac.compare_digest(expected.encode(), given.strip().encode()):
        raise Refused(401, "signature does not match")
    return expected.removeprefix("sha256=")


def _payload(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "body is not JSON") from None
    if not isinstance(payload, dict):
        raise Refused(400, "body must be a JSON object")
    unknown = sorted(set(payload) - ALLOWED_KEYS)
    if unknown:
        raise Refused(400, f"unknown key(s): {', '.join(unknown)}; allowed: params, data_interval")
    return payload


def _params(given: Any, declared: dict[str, Any]) -> dict[str, Any]:
    """The given params, each declared by the pipeline and of its declared type."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise Refused(400, "params must be a JSON object")
    problems = []
    for name, value in given.items():
        spec = declared.get(name)
        if spec is None:
            problems.append(f"params.{name}: not a param of this pipeline")
            continue
        wanted = (spec or {}).get("type")
        types = JSON_TYPES.get(wanted or "", ())
        bad_bool = isinstance(value, bool) and wanted in {"integer", "number"}
        if value is not None and types and (not isinstance(value, types) or bad_bool):
            problems.append(f"params.{name}: expected {wanted}")
    if problems:
        raise Refused(400, "; ".join(problems))
    return dict(given)


def _interval(given: Any) -> tuple[datetime, datetime] | None:
    if given is None:
        return None
    if not isinstance(given, dict) or set(given) != {"start", "end"}:
        raise Refused(400, 'data_interval must be {"start": ISO datetime, "end": ISO datetime}')
    try:
        start, end = (datetime.fromisoformat(str(given[key])) for key in ("start", "end"))
    except ValueError:
        raise Refused(400, "data_interval: start and end must be ISO datetimes") from None
    if start.tzinfo is None or end.tzinfo is None:
        raise Refused(400, "data_interval: start and end need a time zone (e.g. +00:00 or Z)")
    if not start < end:
        raise Refused(400, "data_interval: start must be before end")
    return start, end
