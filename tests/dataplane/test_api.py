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
    import requests

    basic = adapter_for(
        {
            "type": "api",
            "name": "b",
            "config": {"base_url": api_server.base_url, "auth": "basic"},
            "secret": {"username": "u", "password": "p"},
        }
    )
    keyed = adapter_for(
        {
            "type": "api",
            "name": "k",
            "config": {"base_url": api_server.base_url, "auth": "api_key", "api_key_header": "X-Key"},
            "secret": {"api_key": "k-123"},
        }
    )
    assert basic.session().auth == ("u", "p")
    assert keyed.session().headers["X-Key"] == "k-123"
    assert (
        adapter_for(api_runtime(api_server.base_url)).session().headers["Authorization"] == f"Bearer {TOKEN}"
    )
    assert isinstance(basic.session(), requests.Session)


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
