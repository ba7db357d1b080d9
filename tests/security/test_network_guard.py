"""The suite's own guard (tests/support/netguard.py): connections off loopback fail, loopback ones do not.

Each attempt below is refused by the guard before any packet leaves (the audit hook runs before the system
call; psycopg's attempt is checked before libpq is asked); the test then takes the recorded violation so the
guard's own end-of-test check does not fail it.
"""

from __future__ import annotations

import socket

import pytest

from tests.support import netguard


def test_guard_refuses_a_socket_connection_off_loopback():
    with socket.socket() as sock, pytest.raises(netguard.OffLoopback, match=r"192\.0\.2\.1"):
        sock.connect(("192.0.2.1", 80))  # TEST-NET-1: never routed anyway
    assert netguard.GUARD.take() == ["socket.connect to ('192.0.2.1', 80)"]


def test_guard_refuses_an_ipv6_and_a_mapped_connection():
    for address in (("2001:db8::1", 443, 0, 0), ("::ffff:192.0.2.1", 443, 0, 0)):
        with socket.socket(socket.AF_INET6) as sock, pytest.raises(netguard.OffLoopback):
            sock.connect(address)
    assert len(netguard.GUARD.take()) == 2


def test_guard_refuses_a_postgresql_connection_off_loopback():
    import psycopg

    with pytest.raises(netguard.OffLoopback, match=r"10\.255\.255\.1"):
        psycopg.connect(host="db.example.test", hostaddr="10.255.255.1", dbname="x", connect_timeout=1)
    assert netguard.GUARD.take() == ["PostgreSQL connection to '10.255.255.1'"]


def test_guard_lets_loopback_through(api_server, pg_target):
    import psycopg
    import requests

    assert requests.get(f"{api_server.base_url}/open/x", timeout=5).status_code == 200
    runtime, _ = pg_target
    with psycopg.connect(
        host="127.0.0.1", port=runtime["config"]["port"], dbname="postgres", user="postgres"
    ):
        pass
    assert netguard.GUARD.take() == []


def test_test_resolver_answers_only_its_table(dns):
    from django_etl.dataplane import netpolicy

    dns["api.example.test"] = ["93.184.215.14"]
    assert netpolicy.resolve("api.example.test", 443) == ["93.184.215.14"]
    assert netpolicy.resolve("localhost", 80) == ["127.0.0.1", "::1"]
    with pytest.raises(socket.gaierror):
        netpolicy.resolve("example.com", 443)  # a real name: never looked up in the suite


def test_guard_refuses_a_real_dns_lookup():
    with pytest.raises(netguard.OffLoopback, match=r"DNS lookup of 'example\.com'"):
        socket.getaddrinfo("example.com", 443)
    assert netguard.GUARD.take() == ["DNS lookup of 'example.com'"]
    assert socket.getaddrinfo("localhost", 80)  # /etc/hosts: no query leaves the machine
