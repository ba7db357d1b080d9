"""The MariaDB/MySQL server of the machine (127.0.0.1:3306, ``.ci/run`` starts it) as connector targets.

Each test gets a database of its own (created and dropped here), so tests never see each other's tables. The
server is reached as ``root`` without a password unless ``TEST_MYSQL_URL`` names another
(``mysql://user:password@host:port``).
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlparse

import pytest

URL = os.environ.get("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306")


def server() -> dict:
    url = urlparse(URL)
    return {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or 3306,
        "user": url.username or "root",
        "password": url.password or "",
    }


def admin_connection(database: str | None = None):
    """A plain PyMySQL connection of the test's own (autocommit), to arrange and inspect tables."""
    import pymysql

    where = server()
    try:
        return pymysql.connect(
            host=where["host"],
            port=where["port"],
            user=where["user"],
            password=where["password"],
            database=database,
            autocommit=True,
            charset="utf8mb4",
        )
    except pymysql.err.OperationalError as exc:
        raise RuntimeError(
            f"no MySQL/MariaDB server at {URL} ({exc}): start it (.ci/run does) or set TEST_MYSQL_URL"
        ) from None


class MysqlTarget:
    """One throwaway database: its connector runtime settings and a connection to look inside it."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.conn = admin_connection(database)
        where = server()
        self.runtime = {
            "type": "database",
            "name": "shop",
            "config": {"engine": "mysql", "host": where["host"], "port": where["port"], "database": database},
            "secret": {"user": where["user"], "password": where["password"]},
        }

    def execute(self, statement: str, params=None) -> list[tuple]:
        with self.conn.cursor() as cursor:
            cursor.execute(statement, params)
            return list(cursor.fetchall())

    def count(self, table: str) -> int:
        exists = self.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            [self.database, table],
        )[0][0]
        return self.execute(f"SELECT count(*) FROM `{table}`")[0][0] if exists else 0


@pytest.fixture
def mysql_target():
    database = f"etl_t_{uuid.uuid4().hex[:10]}"
    with admin_connection() as conn, conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    target = MysqlTarget(database)
    yield target
    target.conn.close()
    with admin_connection() as conn, conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE `{database}`")
