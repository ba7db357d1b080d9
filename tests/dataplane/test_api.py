"""The API adapter against a real HTTP server on loopback: auth, every pagination style, retries, errors."""

from __future__ import annotations

import pyarrow as pa
import pytest

from django_etl.dataplane import ConnectorError, adapter_for
from tests.support.servers import TOKEN, api_runtime


@pytest.fixture
def api(api_server):
    adapter = adapter_for(api_runtime(api_server.base_url))
    adapter.backoff_base = 0.01
    return adapter


def read_ids(adapter, request) -> list[int]:
    table = pa.Table.from_batches(list(adapter.read(request, batch_size=7)))
    return table.column("id").to_pylist()


def test_api_read_page_pagination_collects_every_record(api):
    pagination = {
        "style": "page",
        "page_param": "page",
        "size_param": "page_size",
        "page_size": 10,
        "max_pages": 100,
        "cursor_param": "cursor",
        "cursor_path": "",
        "next_link_path": "",
    }
    ids = read_ids(api, {"endpoint": "/items", "records_path": "data.items", "pagination": pagination})
    assert ids == list(range(1, 26))


def test_api_read_cursor_pagination_follows_cursor(api):
    pagination = {
        "style": "cursor",
        "cursor_param": "cursor",
        "cursor_path": "meta.next",
        "max_pages": 100,
        "page_param": "page",
        "size_param": "page_size",
        "page_size": 10,
        "next_link_path": "",
    }
    assert read_ids(api, {"endpoint": "cursor", "records_path": "results", "pagination": pagination}) == list(
        range(1, 26)
    )


def test_api_read_next_link_pagination_follows_links(api):
    pagination = {
        "style": "next_link",
        "next_link_path": "next",
        "max_pages": 100,
        "page_param": "page",
        "size_param": "page_size",
        "page_size": 10,
        "cursor_param": "c",
        "cursor_path": "",
    }
    assert read_ids(api, {"endpoint": "linked", "records_path": "results", "pagination": pagination}) == list(
        range(1, 26)
    )


def test_api_read_retries_http_500_then_succeeds(api, api_server):
    assert read_ids(api, {"endpoint": "flaky", "records_path": "results"}) == [1, 2, 3, 4, 5]
    assert api_server.state["flaky"] == 2


def test_api_read_waits_on_429_then_succeeds(api, api_server):
    assert read_ids(api, {"endpoint": "limited", "records_path": "results"}) == [1, 2, 3]


def test_api_read_gives_up_after_retries_as_retryable(api, api_server):
    api_server.state["flaky_failures"] = 10
    with pytest.raises(ConnectorError, match="HTTP 500") as caught:
        read_ids(api, {"endpoint": "flaky", "records_path": "results"})
    assert caught.value.retryable is True
    assert api_server.state["flaky"] == 4  # the first try and max_retries=3 more


def test_api_bad_token_fails_permanently_without_the_token(api_server):
    adapter = adapter_for(api_runtime(api_server.base_url, token="wrong-canary-token"))
    with pytest.raises(ConnectorError, match=r"authentication refused \(HTTP 401\)") as caught:
        adapter.check()
    assert caught.value.retryable is False
    assert "wrong-canary-token" not in str(caught.value)


def test_api_missing_record_list_names_the_path(api):
    with pytest.raises(ConnectorError, match=r"no record list at 'data\.nothing'"):
        read_ids(api, {"endpoint": "/items", "records_path": "data.nothing"})


def test_api_basic_and_api_key_auth_send_credentials(api_server):
    import base64

    basic = adapter_for(
        {
            "type": "api",
            "name": "b",
            "config": {"base_url": api_server.base_url, "auth": "basic", "max_retries": 0},
            "secret": {"username": "u", "password": "p"},
        }
    )
    keyed = adapter_for(
        {
            "type": "api",
            "name": "k",
            "config": {
                "base_url": api_server.base_url,
                "auth": "api_key",
                "api_key_header": "X-Key",
                "max_retries": 0,
            },
            "secret": {"api_key": "k-123"},
        }
    )
    for adapter in (basic, keyed):
        with pytest.raises(ConnectorError, match="authentication refused"):  # the server wants the bearer
            adapter.check()
    adapter_for(api_runtime(api_server.base_url)).check()
    basic_sent, key_sent, bearer_sent = api_server.state["headers"]
    assert basic_sent["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    assert key_sent["X-Key"] == "k-123" and "Authorization" not in key_sent
    assert bearer_sent["Authorization"] == f"Bearer {TOKEN}"


def test_api_timeout_is_retryable(api_server):
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts, never answers
    try:
        adapter = adapter_for(
            api_runtime(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_seconds=0.3, max_retries=0)
        )
        with pytest.raises(ConnectorError, match="ReadTimeout") as caught:
            adapter.check()
        assert caught.value.retryable is True
    finally:
        silent.close()


# ---------------------------------------------------------------- the network policy at connect time


def test_api_connects_to_the_pinned_address_and_keeps_the_host_name(api_server, dns):
    """The name is resolved once, by the policy: urllib3 never looks it up (it is no real name)."""
    dns["api.example.test"] = ["127.0.0.1"]
    port = api_server.server_address[1]
    adapter = adapter_for(api_runtime(f"http://api.example.test:{port}"))
    assert adapter.check().startswith("reached http://api.example.test")
    assert api_server.state["headers"][-1]["Host"] == f"api.example.test:{port}"


def test_api_refuses_loopback_by_default_without_sending(api_server, settings):
    settings.ETL_NETWORK_ALLOW = []
    adapter = adapter_for(api_runtime(api_server.base_url))
    with pytest.raises(ConnectorError, match=r"127\.0\.0\.1:[0-9]+ is a loopback address") as refused:
        adapter.check()
    assert refused.value.retryable is False
    assert api_server.state["requests"] == []


def test_api_dns_rebinding_to_loopback_is_refused_at_connect(api_server, settings, dns):
    settings.ETL_NETWORK_ALLOW = []
    dns["rebind.example.test"] = ["127.0.0.1"]  # public when saved, loopback now
    adapter = adapter_for(api_runtime(f"http://rebind.example.test:{api_server.server_address[1]}"))
    with pytest.raises(ConnectorError, match=r"'rebind\.example\.test' resolves to 127\.0\.0\.1"):
        adapter.check()
    assert api_server.state["requests"] == []


def test_api_redirect_to_a_private_address_is_refused(api, api_server):
    hop = "http://169.254.169.254/latest/meta-data/iam/"
    with pytest.raises(ConnectorError, match=r"169\.254\.169\.254:80 is a link-local address"):
        read_ids(api, {"endpoint": f"/redirect?to={hop}"})
    assert api_server.state["requests"] == [f"/redirect?to={hop}"]  # one request; the hop was never made


def test_api_redirect_to_another_origin_drops_the_credential(api, api_server, second_api_server):
    hop = f"{second_api_server.base_url}/open/records"
    assert read_ids(api, {"endpoint": f"/redirect?to={hop}", "records_path": "results"}) == [1]
    assert api_server.state["headers"][0]["Authorization"] == f"Bearer {TOKEN}"
    assert "Authorization" not in second_api_server.state["headers"][0]


def test_api_redirects_are_bounded(api, api_server):
    with pytest.raises(ConnectorError, match="more than 5 redirects"):
        read_ids(api, {"endpoint": "/loop"})
    assert len(api_server.state["requests"]) == 6


def test_api_redirect_keeps_the_credential_on_its_own_origin(api, api_server):
    ids = read_ids(api, {"endpoint": "/redirect?to=/cursor", "records_path": "results"})
    assert ids == list(range(1, 11))


def test_api_next_link_to_another_origin_is_refused(api, api_server, second_api_server):
    pagination = {
        "style": "next_link",
        "page_param": "page",
        "size_param": "page_size",
        "page_size": 10,
        "max_pages": 5,
        "cursor_param": "cursor",
        "cursor_path": "",
        "next_link_path": "next",
    }
    request = {"endpoint": f"/away?to={second_api_server.base_url}/open/page", "records_path": "results"}
    with pytest.raises(ConnectorError, match="next-page link leaves the API's origin"):
        read_ids(api, {**request, "pagination": pagination})
    assert second_api_server.state["requests"] == []


def test_api_ignores_proxies_and_netrc_of_the_environment(api_server, monkeypatch, tmp_path):
    (tmp_path / ".netrc").write_text("machine 127.0.0.1 login worker password worker-netrc-secret\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")  # the guard would fail the test if used
    adapter = adapter_for(
        {**api_runtime(api_server.base_url), "secret": {}, "config": {"base_url": api_server.base_url}}
    )
    with pytest.raises(ConnectorError, match="authentication refused"):
        adapter.check()
    assert "Authorization" not in api_server.state["headers"][0]


@pytest.mark.parametrize(
    "endpoint", ["http://169.254.169.254/latest/", "https://elsewhere.test/", "http://127.0.0.1:1/x"]
)
def test_api_endpoint_may_not_leave_the_base_url(api, api_server, endpoint):
    with pytest.raises(ConnectorError, match="leaves the API's base URL"):
        read_ids(api, {"endpoint": endpoint})
    assert api_server.state["requests"] == []
