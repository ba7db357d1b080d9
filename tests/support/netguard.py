"""pytest plugin: no test sends traffic off loopback, and no name a connector uses is looked up for real.

Two parts, active for the whole suite (``tests/conftest.py`` loads this plugin):
- **the guard**: an audit hook on ``socket.connect`` (every Python socket: requests/urllib3, botocore, moto,
  Airflow's clients, asyncio) and a check of each psycopg connection attempt (libpq connects in C, where
  no Python hook sees it; psycopg hands it the address first). A connection to anything but 127.0.0.0/8,
  ::1 or a Unix socket raises :class:`OffLoopback` before any packet leaves, and fails the test that made
  it even if the code under test swallowed the error. Python's name lookups of names /etc/hosts does not
  answer (they would reach the DNS resolver) are refused the same way;
- **the test resolver**: the network policy's one lookup function (``netpolicy.resolve``) answers from a table
  (fixture ``dns``) instead of DNS: IP literals and ``localhost`` as themselves, names a test maps, and
  every other name "does not resolve". It maps names to addresses without contacting them.

Subprocesses (the real-Airflow tests) are not covered: they get only loopback URLs from their tests.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from pathlib import Path

import pytest

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


class OffLoopback(RuntimeError):
    """A test tried to connect outside loopback (not an OSError: nothing may mistake it for a network blip)."""


class Guard:
    def __init__(self) -> None:
        self.violations: list[str] = []
        self.lock = threading.Lock()

    def refuse(self, what: str) -> None:
        with self.lock:
            self.violations.append(what)
        raise OffLoopback(f"the test suite never connects off loopback: {what}")

    def take(self) -> list[str]:
        with self.lock:
            found, self.violations = self.violations, []
        return found


GUARD = Guard()
NAMES: dict[str, list[str]] = {}  # the test resolver's table (fixture ``dns``)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # a name: Python would resolve it, and may reach anything
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in LOOPBACK)


def _hosts_file_names() -> frozenset[str]:
    """Names /etc/hosts answers (looked up without a DNS query), and this machine's own name."""
    names = {"localhost", socket.gethostname().lower()}
    try:
        for line in Path("/etc/hosts").read_text().splitlines():
            names.update(word.lower() for word in line.split("#", 1)[0].split()[1:])
    except OSError:
        pass
    return frozenset(names)


LOCAL_NAMES = _hosts_file_names()
LOOKUPS = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"}


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _audit(event: str, args: tuple) -> None:
    if event in LOOKUPS:
        # A name outside /etc/hosts would be sent to the DNS resolver, which is not on loopback here.
        host = args[0]
        if isinstance(host, bytes):
            host = host.decode(errors="replace")
        if host and not _is_literal(str(host)) and str(host).lower().rstrip(".") not in LOCAL_NAMES:
            GUARD.refuse(f"DNS lookup of {host!r}")
        return
    if event == "socket.gethostbyaddr":
        if not is_loopback(str(args[0])) and str(args[0]).lower() not in LOCAL_NAMES:
            GUARD.refuse(f"reverse DNS lookup of {args[0]!r}")
        return
    if event != "socket.connect":
        return
    sock, address = args
    family = getattr(sock, "family", None)
    if family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
        return  # Unix sockets and the like stay on this machine
    if not is_loopback(str(address[0])):
        GUARD.refuse(f"socket.connect to {address[:2]!r}")


def _guard_psycopg() -> None:
    import psycopg.connection

    original = psycopg.connection.conninfo_attempts

    def checked_attempts(params):
        attempts = original(params)
        for attempt in attempts:
            host = str(attempt.get("hostaddr") or attempt.get("host") or "")
            if host and not host.startswith("/") and not is_loopback(host):
                GUARD.refuse(f"PostgreSQL connection to {host!r}")
        return attempts

    psycopg.connection.conninfo_attempts = checked_attempts


def test_resolve(host: str, port: int) -> list[str]:
    """The network policy's lookup in the suite: the table, literals and localhost; nothing else resolves."""
    name = host.strip("[]").lower().rstrip(".")
    if name in NAMES:
        return list(NAMES[name])
    if name == "localhost":
        return ["127.0.0.1", "::1"]
    try:
        return [str(ipaddress.ip_address(name.split("%", 1)[0]))]
    except ValueError:
        raise socket.gaierror(socket.EAI_NONAME, f"{host!r} is not in the test resolver's table") from None


test_resolve.__test__ = False  # a resolver, not a pytest test


def pytest_configure(config) -> None:
    sys.addaudithook(_audit)  # cannot be removed: it stays for the whole session, as wanted
    _guard_psycopg()
    from django_etl.dataplane import netpolicy

    netpolicy.real_resolve = netpolicy.resolve
    netpolicy.resolve = test_resolve


@pytest.fixture(autouse=True)
def _no_traffic_off_loopback():
    """Fails the test that tried to connect off loopback, even when the code under test caught the error."""
    GUARD.take()
    yield
    violations = GUARD.take()
    if violations:
        pytest.fail("connections off loopback were attempted: " + "; ".join(violations), pytrace=False)


@pytest.fixture
def dns():
    """The test resolver's table: ``dns["api.example.test"] = ["93.184.215.14"]``; emptied after the test."""
    NAMES.clear()
    yield NAMES
    NAMES.clear()
