"""HTTP(S) JSON APIs: config, auth from the credential, pagination, retries with backoff, timeouts, POSTs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import pyarrow as pa
from pydantic import Field, HttpUrl

from django_etl.configmodel import Strict
from django_etl.dataplane.base import Adapter
from django_etl.dataplane.batches import batches_of_rows
from django_etl.dataplane.netpolicy import Allowance, NetworkRefused, refusal_at_save, url_target

RETRY_STATUSES = {429, 500, 502, 503, 504}
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 5
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


def origin_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL: where a credential may be sent."""
    host, port = url_target(url)
    return urlsplit(url).scheme.lower(), host.lower(), port


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

    @classmethod
    def refusals(cls, config: ApiConnectorConfig, allowance: Allowance) -> list[tuple[str, str]]:
        reason = refusal_at_save(allowance, *url_target(str(config.base_url)), key="base_url")
        return [("config.base_url", reason)] if reason else []

    def session(self):
        """A session whose every request goes to a checked, pinned address; nothing from the environment.

        ``trust_env`` off: no proxy (it would connect elsewhere), no ``.netrc`` credentials of the worker.
        Credentials are not on the session: :meth:`send` adds them only for the connector's own origin.
        """
        import requests

        from django_etl.dataplane.pinning import PinnedHTTPAdapter

        session = requests.Session()
        session.trust_env = False
        policy = self.network()
        for scheme in ("http://", "https://"):
            session.mount(scheme, PinnedHTTPAdapter(policy))
        session.headers.update({"Accept": "application/json", **self.config.headers})
        session.verify = self.config.verify_tls
        return session

    def credentials(self) -> dict[str, Any]:
        """The request arguments that carry the credential (headers or basic auth)."""
        auth = self.config.auth
        if auth == "bearer":
            return {"headers": {"Authorization": f"Bearer {self.secret.get('token', '')}"}}
        if auth == "basic":
            return {"auth": (self.secret.get("username", ""), self.secret.get("password", ""))}
        if auth == "api_key":
            return {"headers": {self.config.api_key_header: self.secret.get("api_key", "")}}
        return {}

    def url(self, endpoint: str) -> str:
        """``endpoint`` under the base URL; one naming another origin (``http://…``, ``//host``) is refused."""
        url = urljoin(self.base(), (endpoint or "").lstrip("/"))
        if origin_of(url) != self.origin():
            raise self.fail(f"endpoint {endpoint!r} leaves the API's base URL (scheme, host and port)")
        return url

    def base(self) -> str:
        return str(self.config.base_url).rstrip("/") + "/"

    def origin(self) -> tuple[str, str, int]:
        return origin_of(self.base())

    def send(self, session, method: str, url: str, **kwargs: Any):
        """One request, following at most MAX_REDIRECTS redirects itself: every hop is checked and pinned by
        the session's transport, and the credential goes only to the connector's own origin.
        """
        shown = url.split("?", 1)[0]
        for _ in range(MAX_REDIRECTS + 1):
            arguments = dict(kwargs)
            if origin_of(url) == self.origin():
                credential = self.credentials()
                arguments["headers"] = {**(arguments.get("headers") or {}), **credential.get("headers", {})}
                if "auth" in credential:
                    arguments["auth"] = credential["auth"]
            response = session.request(method, url, allow_redirects=False, **arguments)
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                return response
            response.close()
            url = urljoin(url, location)
            if urlsplit(url).scheme.lower() not in ("http", "https"):
                raise self.fail(f"{method} {shown}: redirected to a URL that is not http(s)")
            if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                method = "GET"
                kwargs.pop("json", None)
                kwargs.pop("data", None)
            kwargs.pop("params", None)  # the redirect's URL carries its own query
        raise self.fail(f"{method} {shown}: more than {MAX_REDIRECTS} redirects")

    def request(self, session, method: str, url: str, **kwargs: Any):
        """One call with retries on 429/5xx and network errors; raises ConnectorError naming the status."""
        import requests

        retries = self.config.max_retries
        timeout = self.config.timeout_seconds
        shown = url.split("?", 1)[0]  # query strings may carry tokens
        for attempt in range(retries + 1):
            last_try = attempt == retries
            try:
                response = self.send(session, method, url, timeout=timeout, **kwargs)
            except NetworkRefused as exc:
                raise self.fail(f"{method} {shown}: {exc}") from None
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
                    url = urljoin(url, str(link))
                    if origin_of(url) != self.origin():
                        # A response names the next page: it may not send the credential elsewhere.
                        raise self.fail("the next-page link leaves the API's origin (scheme, host and port)")

    def post_json(self, path: str, payload: dict[str, Any]) -> int:
        with self.session() as session:
            response = self.request(session, "POST", self.url(path), json=payload)
        return response.status_code

    def sample(self, limit: int = 10) -> pa.Table:
        raise self.fail("API connectors have no preview; run the extract step instead")
