"""The webhook trigger refuses unsigned, stale, replayed, oversized, malformed and undeclared requests with a 4xx
and starts nothing; a valid one reaches the trigger (here Airflow is unreachable: 503, and Django unchanged)."""

from __future__ import annotations

import json
import time

import pytest

from django_etl.control.webhook import sign

pytestmark = pytest.mark.django_db

CLOSED_PORT_URL = "http://127.0.0.1:9"  # discard port: nothing listens, the connection is refused


@pytest.fixture
def hook(pipeline, settings):
    from django_etl.control.models import WebhookEndpoint

    settings.ETL_AIRFLOW_API_URL = CLOSED_PORT_URL
    pipeline.config = {
        "schedule": "@daily",
        "params": {"region": {"type": "string"}, "limit": {"type": "integer"}},
    }
    pipeline.save()
    endpoint, secret = WebhookEndpoint.rotate(pipeline)
    return endpoint, secret


def post(client, endpoint, body: bytes, *, secret=None, stamp=None, headers=None):
    stamp = str(int(time.time())) if stamp is None else str(stamp)
    sent = {}
    if secret is not None:
        sent = {"HTTP_X_ETL_TIMESTAMP": stamp, "HTTP_X_ETL_SIGNATURE": sign(secret, stamp, body)}
    sent.update(headers or {})
    return client.post(
        f"/hooks/pipelines/{endpoint.pk}/trigger", body, content_type="application/json", **sent
    )


def runs():
    from django_etl.runs.models import PipelineRun

    return PipelineRun.objects.count()


def test_webhook_unsigned_request_is_401(client, hook):
    endpoint, _ = hook
    assert post(client, endpoint, b"{}").status_code == 401
    assert runs() == 0


def test_webhook_wrong_secret_is_401(client, hook):
    endpoint, _ = hook
    response = post(client, endpoint, b"{}", secret="not-the-secret")
    assert response.status_code == 401 and "signature" in response.json()["error"]


def test_webhook_stale_timestamp_is_401(client, hook):
    endpoint, secret = hook
    response = post(client, endpoint, b"{}", secret=secret, stamp=int(time.time()) - 3600)
    assert response.status_code == 401 and "replay window" in response.json()["error"]


def test_webhook_replayed_signature_is_409(client, hook):
    endpoint, secret = hook
    stamp = int(time.time())
    first = post(client, endpoint, b"{}", secret=secret, stamp=stamp)
    assert first.status_code == 503  # accepted, then Airflow was unreachable
    again = post(client, endpoint, b"{}", secret=secret, stamp=stamp)
    assert again.status_code == 409 and "replay" in again.json()["error"]
    assert runs() == 0


def test_webhook_oversized_body_is_413(client, hook, settings):
    endpoint, secret = hook
    settings.ETL_WEBHOOK_MAX_BYTES = 100
    body = json.dumps({"params": {"region": "x" * 200}}).encode()
    assert post(client, endpoint, body, secret=secret).status_code == 413


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"conf": {}}', "unknown key"),
        (b'{"params": {"colour": "red"}}', "params.colour: not a param"),
        (b'{"params": {"limit": "ten"}}', "params.limit: expected integer"),
        (b'{"params": {"limit": true}}', "params.limit: expected integer"),
        (
            b'{"data_interval": {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}}',
            "before end",
        ),
        (b'{"data_interval": {"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00"}}', "time zone"),
    ],
)
def test_webhook_malformed_payload_is_400(client, hook, payload, error):
    endpoint, secret = hook
    response = post(client, endpoint, payload, secret=secret)
    assert response.status_code == 400 and error in response.json()["error"]
    assert runs() == 0


def test_webhook_rate_limit_is_429(client, hook, settings):
    endpoint, secret = hook
    settings.ETL_WEBHOOK_RATE_LIMIT = 2
    codes = [
        post(client, endpoint, f'{{"params": {{"limit": {n}}}}}'.encode(), secret=secret).status_code
        for n in range(3)
    ]
    assert codes == [503, 503, 429]


def test_webhook_unknown_endpoint_is_404_and_get_is_405(client, hook):
    endpoint, _ = hook
    assert (
        client.post("/hooks/pipelines/not-a-uuid/trigger", b"{}", content_type="application/json").status_code
        == 404
    )
    assert client.get(f"/hooks/pipelines/{endpoint.pk}/trigger").status_code == 405


def test_webhook_valid_request_with_airflow_unreachable_leaves_django_unchanged(client, hook):
    endpoint, secret = hook
    body = b'{"params": {"region": "eu", "limit": 5}, "data_interval": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}}'
    response = post(client, endpoint, body, secret=secret)
    assert response.status_code == 503 and "unreachable" in response.json()["error"]
    assert runs() == 0


def test_webhook_rotation_invalidates_the_old_secret(client, hook, pipeline):
    from django_etl.control.models import WebhookEndpoint

    endpoint, old = hook
    rotated, new = WebhookEndpoint.rotate(pipeline)
    assert rotated.pk == endpoint.pk and new != old
    assert post(client, endpoint, b"{}", secret=old).status_code == 401
    assert post(client, endpoint, b"{}", secret=new).status_code == 503
    assert old.encode() not in rotated.encrypted_secret.encode()
