"""Messy sources end to end: the step fixtures of tests/airflow_plugin/steps, and a JSON API of messy pages."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from tests.airflow_plugin.conftest import airflow_db, recorder_alias  # noqa: F401 - fixtures
from tests.airflow_plugin.steps.conftest import execute, file_root, make_run, staging  # noqa: F401 - fixtures
from tests.support.servers import TOKEN, ApiHandler, free_port

# Pages whose records disagree: ints then floats then text in one column, keys that come and go, nested values.
MESSY_PAGES = [
    [{"id": 1, "amount": 10, "tags": ["a"]}, {"id": 2, "amount": 20, "tags": []}],
    [{"id": 3, "amount": 2.5, "coupon": "X1"}, {"id": 4, "amount": None}],
    [{"id": 5, "amount": "n/a", "tags": ["b", "c"], "coupon": None}],
]


class MessyApiHandler(ApiHandler):
    """The suite's JSON API plus /empty (no records), /messy?page= (MESSY_PAGES) and /orders (two records)."""

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if self.headers.get("Authorization") == f"Bearer {TOKEN}" and url.path in (
            "/empty",
            "/messy",
            "/orders",
        ):
            self.server.state["requests"].append(self.path)
            if url.path == "/empty":
                return self._send(200, {"results": []})
            if url.path == "/orders":
                return self._send(200, {"results": self.server.state["orders"]})
            page = int(parse_qs(url.query).get("page", ["1"])[0])
            records = MESSY_PAGES[page - 1] if page <= len(MESSY_PAGES) else []
            return self._send(200, {"results": records})
        return super().do_GET()


@pytest.fixture
def messy_api():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), MessyApiHandler)
    server.state = {
        "requests": [],
        "posts": [],
        "flaky": 0,
        "flaky_failures": 1,
        "limited": 0,
        "orders": [{"id": 1, "amount": 5.5}, {"id": 2, "amount": 7.0}],
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()
