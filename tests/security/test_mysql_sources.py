"""MySQL/MariaDB connectors tried as a hostile tenant would: queries that write or run forever, a server of the
tenant's that asks for a worker's file (LOAD DATA LOCAL INFILE), hosts off the network policy, unsafe options.

Real MariaDB for the queries; a fake server on loopback (a few protocol packets) for the malicious server,
since a real one asks for a file only when the client offered to send files.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

import pytest
from django.core.exceptions import ValidationError

from django_etl.connectors import probe
from django_etl.dataplane import ConnectorError, adapter_for
from tests.support import mysql_server

pytestmark = pytest.mark.integration
mysql_target = mysql_server.mysql_target  # the fixture: a throwaway database on the real server


@pytest.fixture
def source(mysql_target):
    mysql_target.execute("CREATE TABLE orders (id INT PRIMARY KEY, note VARCHAR(20))")
    mysql_target.execute("INSERT INTO orders VALUES (1, 'kept'), (2, 'kept')")
    return adapter_for(mysql_target.runtime), mysql_target


def _read(adapter, query: str) -> list:
    return [row for batch in adapter.read({"query": query}, 100) for row in batch.to_pylist()]


def _untouched(target) -> None:
    assert target.execute("SELECT count(*), min(note), max(note) FROM orders") == [(2, "kept", "kept")]


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM orders",
        "UPDATE orders SET note = 'pwned'",
        "SELECT 1; DELETE FROM orders",
        "SELECT 1 AS a) AS x; DELETE FROM orders; SELECT * FROM (SELECT 1",
        "SELECT * FROM orders) AS x; DROP TABLE orders; -- ",
        "WITH c AS (SELECT 1) DELETE FROM orders",
        "SELECT * FROM orders FOR UPDATE) AS x; INSERT INTO orders VALUES (3, 'x'); SELECT * FROM (SELECT 1",
    ],
)
def test_mysql_extract_query_cannot_write(source, query):
    adapter, target = source
    with pytest.raises(ConnectorError):
        _read(adapter, query)
    _untouched(target)


def test_mysql_extract_query_cannot_write_through_a_function(source):
    adapter, target = source
    target.execute(
        "CREATE FUNCTION sneaky() RETURNS INT MODIFIES SQL DATA "
        "BEGIN UPDATE orders SET note = 'pwned'; RETURN 1; END"
    )
    with pytest.raises(ConnectorError, match="source queries are read-only") as caught:
        _read(adapter, "SELECT sneaky() AS s")
    assert caught.value.retryable is False
    _untouched(target)


def test_mysql_extract_query_cannot_write_a_server_file(source, tmp_path):
    adapter, _ = source
    with pytest.raises(ConnectorError):
        _read(adapter, "SELECT * FROM orders INTO OUTFILE '/tmp/etl-mysql-outfile-canary'")
    with pytest.raises(ConnectorError):
        _read(adapter, "SELECT 1) AS x INTO OUTFILE '/tmp/etl-mysql-outfile-canary' -- ")


@pytest.mark.parametrize(
    "query",
    [
        "SELECT LOAD_FILE('/etc/hostname') AS f",
        "SELECT load_file /* spaced */ ('/etc/hostname') AS f",
        "SELECT /*!50000 LOAD_FILE('/etc/hostname') */ AS f",
        "SELECT 1 AS a INTO DUMPFILE '/tmp/etl-mysql-dumpfile-canary'",
        "SELECT sys_exec('id') AS x",
    ],
)
def test_mysql_extract_query_cannot_reach_server_files_or_commands(source, query):
    adapter, _ = source
    with pytest.raises(
        ConnectorError, match=r"query refused: .*a source query may only read tables"
    ) as caught:
        _read(adapter, query)
    assert caught.value.retryable is False


def test_mysql_extract_query_is_bounded_by_the_statement_limit(source, settings):
    adapter, _ = source
    settings.ETL_SOURCE_STATEMENT_TIMEOUT = 0.5
    with pytest.raises(ConnectorError, match="timed out") as caught:
        _read(adapter, "SELECT BENCHMARK(2000000000, MD5('x')) AS b")
    assert caught.value.retryable is True


def test_mysql_read_only_still_reads(source):
    adapter, _ = source
    assert _read(
        adapter, "WITH c AS (SELECT id, UPPER(note) AS note FROM orders) SELECT * FROM c ORDER BY id"
    ) == [
        {"id": 1, "note": "KEPT"},
        {"id": 2, "note": "KEPT"},
    ]


def test_mysql_local_infile_is_refused_on_a_real_server(source, tmp_path):
    """The client never offers local files: the server refuses LOAD DATA LOCAL even where it allows it."""
    adapter, target = source
    canary = tmp_path / "worker-secret.txt"
    canary.write_text("3\tleaked\n")
    conn = adapter.connect()
    try:
        from pymysql.constants import CLIENT

        assert not conn.client_flag & CLIENT.LOCAL_FILES
        assert not conn.client_flag & CLIENT.MULTI_STATEMENTS
        with (
            pytest.raises(Exception, match=r"(?i)not allowed|local_infile|LOAD_LOCAL|command"),
            conn.cursor() as cursor,
        ):
            cursor.execute(f"LOAD DATA LOCAL INFILE '{canary}' INTO TABLE orders")
    finally:
        conn.close()
    _untouched(target)


class FileAskingServer:
    """A fake MySQL server (a tenant's): greets, accepts any login, answers every query (but the driver's own
    SET NAMES) with a request for a local file (the LOAD DATA LOCAL INFILE packet), and records whatever the client sends back."""

    def __init__(self, wanted: str) -> None:
        self.wanted = wanted.encode()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(10)
        self.port = self.listener.getsockname()[1]
        self.received: list[bytes] = []
        self.asked = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @staticmethod
    def packet(seq: int, payload: bytes) -> bytes:
        return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload

    @staticmethod
    def read(conn) -> tuple[int, bytes] | None:
        header = conn.recv(4)
        if len(header) < 4:
            return None
        length = int.from_bytes(header[:3], "little")
        payload = b""
        while len(payload) < length:
            chunk = conn.recv(length - len(payload))
            if not chunk:
                return None
            payload += chunk
        return header[3], payload

    def serve(self) -> None:
        with contextlib.suppress(OSError):  # the client hung up (as it should)
            self.converse()

    def converse(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(10)
        with conn:
            # Protocol 41, secure connection, plugin auth, LOCAL FILES offered; no TLS.
            capabilities = 0x0200 | 0x8000 | 0x80000 | 0x0080
            greeting = (
                b"\x0a8.0.0-fake\x00"
                + struct.pack("<I", 7)
                + b"abcdefgh\x00"
                + struct.pack("<H", capabilities & 0xFFFF)
                + b"\x21"
                + struct.pack("<H", 2)
                + struct.pack("<H", capabilities >> 16)
                + bytes([21])
                + b"\x00" * 10
                + b"ijklmnopqrst\x00"
                + b"mysql_native_password\x00"
            )
            conn.sendall(self.packet(0, greeting))
            if self.read(conn) is None:  # the login
                return
            conn.sendall(self.packet(2, b"\x00\x00\x00\x00\x00\x00\x00"))  # OK (autocommit off, as asked)
            while (message := self.read(conn)) is not None:
                _, payload = message
                if payload[:1] == b"\x03" and payload[1:].upper().startswith(
                    (b"SET NAMES", b"SET AUTOCOMMIT")
                ):
                    conn.sendall(self.packet(1, b"\x00\x00\x00\x00\x00\x00\x00"))  # PyMySQL's own set-up
                elif payload[:1] == b"\x03":  # any other query: ask for the file
                    self.asked += 1
                    conn.sendall(self.packet(1, b"\xfb" + self.wanted))
                elif payload[:1] == b"\x01":  # quit
                    return
                else:
                    self.received.append(payload)  # file contents, had the client sent them

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=10)


def test_mysql_server_asking_for_a_worker_file_gets_nothing(tmp_path):
    canary = tmp_path / "worker-secret.txt"
    canary.write_text("secret-canary-of-the-worker")
    server = FileAskingServer(str(canary))
    runtime = {
        "type": "database",
        "name": "tenant-db",
        "config": {"engine": "mysql", "host": "127.0.0.1", "port": server.port, "database": "x"},
        "secret": {"user": "u", "password": "p"},
    }
    try:
        with pytest.raises(ConnectorError, match="asked for a local file") as caught:
            adapter_for(runtime).check()
    finally:
        server.close()
    assert server.asked >= 1  # the server did ask
    assert not any(b"secret-canary" in payload for payload in server.received)
    assert caught.value.retryable is False


# ---------------------------------------------------------------- the network policy and the options


def _connector(organization, user, config, login=None):
    from django_etl.connectors.models import Connector, Credential

    login = login or {"user": "root", "password": "pw-canary-m1"}
    login = Credential.objects.create_encrypted(name="login", organization=organization, data=login)
    return Connector(
        name="shop",
        connector_type="database",
        organization=organization,
        created_by=user,
        config=config,
        credential=login,
    )


@pytest.mark.django_db
def test_mysql_off_policy_host_is_refused_at_save_and_connect(organization, user, settings, dns):
    settings.ETL_NETWORK_ALLOW = []  # the default: loopback closed
    candidate = _connector(
        organization, user, {"engine": "mysql", "host": "127.0.0.1", "port": 3306, "database": "mysql"}
    )
    with pytest.raises(ValidationError) as caught:
        candidate.full_clean()
    assert "loopback address" in " ".join(caught.value.messages)
    candidate.save()  # as if stored before the rule: the connection is refused too, nothing contacted
    result = probe.test_connection(candidate)
    assert not result.ok and "is a loopback address" in result.message
    assert "pw-canary-m1" not in repr(result)


@pytest.mark.django_db
def test_mysql_rebinding_name_is_refused_at_connect(organization, user, dns):
    dns["shop-db.example.test"] = ["93.184.215.14", "169.254.169.254"]
    candidate = _connector(
        organization, user, {"engine": "mysql", "host": "shop-db.example.test", "database": "shop"}
    )
    candidate.save()
    result = probe.test_connection(candidate)
    assert not result.ok and "link-local" in result.message


@pytest.mark.django_db
@pytest.mark.parametrize(
    "options",
    [
        {"init_command": "SET GLOBAL x = 1"},
        {"local_infile": True},
        {"unix_socket": "/tmp/s"},
        {"ssl_key": "/k"},
    ],
)
def test_mysql_unsafe_options_are_refused_at_save(organization, user, options):
    candidate = _connector(
        organization,
        user,
        {"engine": "mysql", "host": "db.example.test", "database": "shop", "options": options},
    )
    with pytest.raises(ValidationError) as caught:
        candidate.full_clean()
    assert "not an allowed connection option" in " ".join(caught.value.messages)


@pytest.mark.django_db
def test_mysql_probe_tests_and_previews_a_real_server(organization, user, mysql_target):
    mysql_target.execute("CREATE TABLE customers (id INT, name VARCHAR(9))")
    mysql_target.execute("INSERT INTO customers VALUES (1, 'Ada'), (2, NULL)")
    runtime = mysql_target.runtime
    candidate = _connector(organization, user, dict(runtime["config"]), dict(runtime["secret"]))
    candidate.full_clean()
    candidate.save()
    tested = probe.test_connection(candidate)
    assert tested.ok and "connected to" in tested.message
    shown = probe.preview(candidate)
    assert shown.ok and shown.columns == ["id", "name"] and shown.rows == [["1", "Ada"], ["2", ""]]
