"""HTTP transports that connect to the address the network policy checked, never to a second resolution.

Each request's host is resolved and checked by the policy (``NetworkPolicy.pin``) as it is sent, and the TCP
connection goes to that address while the request still names the host: the ``Host`` header, TLS SNI and
certificate verification use the name. Proxies from the environment are never used (they would make the
connection elsewhere). Imported only by the adapters that need it (requests and botocore load with it).
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

from botocore.httpsession import URLLib3Session
from requests.adapters import HTTPAdapter

from django_etl.dataplane.netpolicy import NetworkPolicy, NetworkRefused, url_target


def host_header(url: str) -> str:
    """The Host header of ``url``: its host and written port, without user information."""
    return urlsplit(url).netloc.rsplit("@", 1)[-1]


class PinnedHTTPAdapter(HTTPAdapter):
    """A requests transport that checks each request's host and connects to the checked address."""

    def __init__(self, policy: NetworkPolicy, **kwargs: Any) -> None:
        self.policy = policy
        super().__init__(**kwargs)

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        host, port = url_target(request.url)
        request.etl_pinned_address = self.policy.pin(host, port, key="url")
        request.headers["Host"] = host_header(request.url)
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=None)

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        name = host_params["host"]
        host_params["host"] = request.etl_pinned_address
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = name
            if verify is not False:
                pool_kwargs["assert_hostname"] = name
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)


class _PinnedManager:
    """What botocore's session asks of a pool manager (``connection_from_url``), at the pinned address."""

    def __init__(self, manager, session: PinnedBotocoreSession) -> None:
        self.manager = manager
        self.session = session

    def connection_from_url(self, url: str):
        pinned_url, address = self.session.pinned.current
        if pinned_url != url:  # botocore asks for the URL it sends: anything else is a bug, not a target
            raise NetworkRefused(f"endpoint_url: {url!r} was not checked")
        host, port = url_target(url)
        scheme = urlsplit(url).scheme.lower() or "https"
        pool_kwargs = {"server_hostname": host, "assert_hostname": host} if scheme == "https" else {}
        return self.manager.connection_from_host(address, port=port, scheme=scheme, pool_kwargs=pool_kwargs)

    def __getattr__(self, name: str):
        return getattr(self.manager, name)


class PinnedBotocoreSession(URLLib3Session):
    """botocore's HTTP session, pinned: every request (a redirect to another region's host included) goes to a
    checked address of the configured endpoint's host, or of an AWS host when no endpoint is configured.

    The check runs in ``send`` before botocore's own error handling, so a refusal is never retried.
    """

    def __init__(self, policy: NetworkPolicy, endpoint_host: str | None, **kwargs: Any) -> None:
        self.policy = policy
        self.endpoint_host = endpoint_host.lower() if endpoint_host else None
        self.pinned = threading.local()  # transfers send from several threads with one client
        super().__init__(proxies={}, **kwargs)

    def checked_target(self, url: str) -> tuple[str, int]:
        host, port = url_target(url)
        name = host.lower()
        if self.endpoint_host is not None:
            allowed = name == self.endpoint_host or name.endswith("." + self.endpoint_host)
        else:
            allowed = name.endswith(".amazonaws.com")
        if not allowed:
            expected = self.endpoint_host or "an AWS S3 host"
            raise NetworkRefused(f"endpoint_url: a request was sent to {host!r} instead of {expected!r}")
        return host, port

    def send(self, request):
        host, port = self.checked_target(request.url)
        self.pinned.current = (request.url, self.policy.pin(host, port, key="endpoint_url"))
        request.headers["Host"] = host_header(request.url)  # signed for the name; the address is pinned
        return super().send(request)

    def _get_connection_manager(self, url, proxy_url=None):
        return _PinnedManager(super()._get_connection_manager(url, None), self)

    def _get_request_target(self, url, proxy_url):
        return super()._get_request_target(url, None)
