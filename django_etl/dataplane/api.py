"""HTTP(S) JSON APIs: config, auth from the credential, pagination, retries with backoff, timeouts, POSTs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Literal
from urllib.parse import urljoin

import pyarrow as pa
from pydantic import Field, HttpUrl

from django_etl.configmodel import Strict
from django_etl.dataplane.base import Adapter
from django_etl.dataplane.batches import batches_of_rows

RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_BACKOFF_SECONDS = 30.0


# Secret keys an API connector reads from its credential, by auth style.
CREDENTIAL_KEYS: dict[str, tuple[str, ...]] = {
    "bearer": ("token",),
    "basic": ("username", "password"),
    "api_key": ("api_key",),
    "none": (),
}


class ApiConnectorConfig(Strict):
    base_url: HttpUrl
    auth: Literal["none", "bearer", "basic", "api_key"] = "none"
    api_key_header: str = "X-API-Key"
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(30, gt=0)
    max_retries: int = Field(3, ge=0, le=10)
    verify_tls: bool = True

    def credential_keys(self) -> tuple[str, ...]:
        return CREDENTIAL_KEYS[self.auth]


def dig(document: Any, dotted: str | None) -> Any:
    """``document['a']['b']`` for 'a.b'; None when a key is missing."""
    if not dotted:
        return document
    for part in dotted.split("."):
        if not isinstance(document, dict) or part not in document:
            return None
        document = document[part]
    return document


class ApiAdapter(Adapter):
    connector_type = "api"
    config_model = ApiConnectorConfig
    config: ApiConnectorConfig
    backoff_base = 0.5  # seconds; doubled on each retry (tests lower it)

    def session(self):
        import requests

        session = requests.Session()
        session.headers.update({"Accept": "application/json", **self.config.headers})
        auth = self.config.auth
        if auth == "bearer":
            session.headers["Authorization"] = f"Bearer {self.secret.get('token', '')}"
        elif auth == "basic":
            session.auth = (self.secret.get("username", ""), self.secret.get("password", ""))
        elif auth == "api_key":
            session.headers[self.config.api_key_header] = self.secret.get("api_key", "")
        session.verify = self.config.verify_tls
        return session

    def url(self, endpoint: str) -> str:
        return urljoin(str(self.config.base_url).rstrip("/") + "/", (endpoint or "").lstrip("/"))

    def request(self, session, method: str, url: str, **kwargs: Any):
        """One call with retries on 429/5xx and network errors; raises ConnectorError naming the status."""
        import requests

        retries = self.config.max_retries
        timeout = self.config.timeout_seconds
        shown = url.split("?", 1)[0]  # query strings may carry tokens
        for attempt in range(retries + 1):
            last_try = attempt == retries
            try:
                response = session.request(method, url, timeout=timeout, **kwargs)
            except requests.RequestException as exc:
                if last_try:
                    raise self.fail(
                        f"{method} {shown} failed: {type(exc).__name__}", retryable=True
                    ) from None
                self._sleep(attempt, None)
                continue
            if response.status_code in RETRY_STATUSES and not last_try:
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            if response.status_code in (401, 403):
                raise self.fail(f"{method} {shown}: authentication refused (HTTP {response.status_code})")
            if response.status_code >= 400:
                raise self.fail(
                    f"{method} {shown}: HTTP {response.status_code}",
                    retryable=response.status_code in RETRY_STATUSES,
                )
            return response
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff_base * (2**attempt)
        if retry_after and retry_after.isdigit():
            delay = float(retry_after)
        time.sleep(min(delay, MAX_BACKOFF_SECONDS))

    def get_json(self, session, url: str, params: dict[str, Any] | None = None) -> Any:
        response = self.request(session, "GET", url, params=params)
        try:
            return response.json()
        except ValueError:
            raise self.fail(f"GET {url.split('?', 1)[0]} did not return JSON") from None

    def check(self) -> str:
        with self.session() as session:
            response = self.request(session, "GET", self.url(""))
        return f"reached {self.url('')} (HTTP {response.status_code})"

    def read(self, request: dict[str, Any], batch_size: int) -> Iterator[pa.RecordBatch]:
        yield from batches_of_rows(self.records(request), batch_size)

    def records(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every record of every page, following the configured pagination."""
        pagination = request.get("pagination") or None
        params = dict(request.get("params") or {})
        url = self.url(request.get("endpoint") or "")
        records_path = request.get("records_path")
        with self.session() as session:
            page_number, offset, pages = 1, 0, 0
            while True:
                page_params = dict(params)
                style = pagination["style"] if pagination else None
                if style in ("page", "offset"):
                    page_params[pagination["size_param"]] = pagination["page_size"]
                    page_params[pagination["page_param"]] = page_number if style == "page" else offset
                document = self.get_json(
                    session, url, page_params if style != "next_link" or not pages else None
                )
                records = dig(document, records_path)
                if not isinstance(records, list):
                    raise self.fail(
                        f"response of {url.split('?', 1)[0]} has no record list at "
                        f"{records_path or 'the top level'!r}; set 'records_path'"
                    )
                yield from records
                pages += 1
                if not pagination or pages >= pagination["max_pages"]:
                    return
                if style in ("page", "offset"):
                    if len(records) < pagination["page_size"]:
                        return
                    page_number, offset = page_number + 1, offset + len(records)
                elif style == "cursor":
                    cursor = dig(document, pagination["cursor_path"])
                    if not cursor or not records:
                        return
                    params[pagination["cursor_param"]] = cursor
                else:
                    link = dig(document, pagination["next_link_path"])
                    if not link:
                        return
                    url = urljoin(url, link)

    def post_json(self, path: str, payload: dict[str, Any]) -> int:
        with self.session() as session:
            response = self.request(session, "POST", self.url(path), json=payload)
        return response.status_code

    def sample(self, limit: int = 10) -> pa.Table:
        raise self.fail("API connectors have no preview; run the extract step instead")
