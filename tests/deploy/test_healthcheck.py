"""deploy/healthcheck.py, the compose services' health check: a URL's status, and both databases answering."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deploy import healthcheck


class Answer(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200 if self.path == "/ok" else 503)
        self.end_headers()


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_healthcheck_url_answering_2xx_is_healthy(server):
    assert healthcheck.main([f"{server}/ok"]) == 0


def test_healthcheck_url_answering_503_or_nothing_is_unhealthy(server, capsys):
    assert healthcheck.main([f"{server}/down"]) == 1
    assert "503" in capsys.readouterr().err
    assert healthcheck.main(["http://127.0.0.1:9/", "--timeout", "1"]) == 1


def test_healthcheck_databases(monkeypatch, capsys):
    from django.db import connection

    db = connection.settings_dict
    url = f"postgresql://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/postgres"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv(
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", url.replace("postgresql://", "postgresql+psycopg2://")
    )
    assert healthcheck.main(["--databases"]) == 0
    monkeypatch.setenv(
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", url.replace("/postgres", "/no_such_database_here")
    )
    assert healthcheck.main(["--databases"]) == 1
    assert "no_such_database_here" in capsys.readouterr().err
