"""The network policy on its own: special-use ranges, openings, platform servers, resolution and pinning.

Names resolve through the suite's test resolver (fixture ``dns``): nothing here is looked up or contacted.
"""

from __future__ import annotations

import ipaddress

import pytest

from django_etl.dataplane import netpolicy
from django_etl.dataplane.netpolicy import NetworkPolicy, NetworkRefused, parse_allow_entry, special_use
from django_etl.errors import ConfigurationError

PUBLIC = "93.184.215.14"  # a global address: only ever resolved to by the test resolver, never contacted


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.1.2.3", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.10", "private"),
        ("::ffff:127.0.0.1", "loopback (as 127.0.0.1)"),
        ("::ffff:169.254.169.254", "link-local (as 169.254.169.254)"),
        ("64:ff9b::a9fe:a9fe", "link-local (as 169.254.169.254)"),
        ("2002:7f00:1::", "loopback (as 127.0.0.1)"),
    ],
)
def test_special_use_names_each_range(address, reason):
    assert special_use(ipaddress.ip_address(address)) == reason


def test_special_use_public_address_is_none():
    assert special_use(ipaddress.ip_address(PUBLIC)) is None
    assert special_use(ipaddress.ip_address("2606:4700::1111")) is None


@pytest.mark.parametrize(
    ("text", "network", "port"),
    [
        ("10.0.0.0/8", "10.0.0.0/8", None),
        ("127.0.0.1", "127.0.0.1/32", None),
        ("127.0.0.1:9000", "127.0.0.1/32", 9000),
        ("[::1]:9000", "::1/128", 9000),
        ("fd00::/8", "fd00::/8", None),
    ],
)
def test_parse_allow_entry_reads_networks_and_ports(text, network, port):
    entry = parse_allow_entry(text)
    assert (str(entry.network), entry.port) == (network, port)


@pytest.mark.parametrize("text", ["intranet.example.com", "10.0.0.0/8:0", "127.0.0.1:http", "[::1]x"])
def test_parse_allow_entry_refuses_names_and_bad_ports(text):
    with pytest.raises(ValueError, match=repr(text).replace("[", r"\[").replace("]", r"\]")):
        parse_allow_entry(text)


def test_policy_refuses_special_addresses_by_default(settings, dns):
    settings.ETL_NETWORK_ALLOW = []
    dns["metadata.example.test"] = ["169.254.169.254"]
    policy = netpolicy.network_policy()
    with pytest.raises(
        NetworkRefused,
        match=r"host: 'metadata\.example\.test' resolves to 169\.254\.169\.254:80, a link-local address",
    ):
        policy.check("metadata.example.test", 80, key="host")
    with pytest.raises(NetworkRefused, match="is a loopback address"):
        policy.check("127.0.0.1", 8080)


def test_policy_opening_may_name_one_port(settings):
    settings.ETL_NETWORK_ALLOW = ["127.0.0.1:9000"]
    policy = netpolicy.network_policy()
    assert policy.check("127.0.0.1", 9000) == "127.0.0.1"
    with pytest.raises(NetworkRefused, match="loopback"):
        policy.check("127.0.0.1", 9001)


def test_policy_organization_allowance_adds_to_the_platform_opening(settings):
    settings.ETL_NETWORK_ALLOW = []
    assert netpolicy.network_policy(["10.20.0.0/16"]).check("10.20.3.4", 5432) == "10.20.3.4"
    with pytest.raises(NetworkRefused):
        netpolicy.network_policy(["10.20.0.0/16"]).check("10.21.0.1", 5432)


def test_policy_bad_opening_names_the_setting(settings):
    settings.ETL_NETWORK_ALLOW = ["intranet"]
    with pytest.raises(ConfigurationError, match="ETL_NETWORK_ALLOW: 'intranet'"):
        netpolicy.network_policy()


def test_policy_refuses_a_name_when_any_address_is_refused(settings, dns):
    settings.ETL_NETWORK_ALLOW = []
    dns["mixed.example.test"] = [PUBLIC, "10.0.0.7"]
    with pytest.raises(NetworkRefused, match=r"resolves to 10\.0\.0\.7:443, a private address"):
        netpolicy.network_policy().check("mixed.example.test", 443)


def test_policy_pins_the_first_checked_address_and_refuses_unresolved_names(settings, dns):
    dns["api.example.test"] = [PUBLIC, "93.184.215.15"]
    policy = netpolicy.network_policy()
    assert policy.pin("api.example.test", 443) == PUBLIC
    assert policy.check("nowhere.example.test", 443, unresolved_ok=True) is None  # save time: decided later
    with pytest.raises(NetworkRefused, match=r"'nowhere\.example\.test' does not resolve"):
        policy.pin("nowhere.example.test", 443)


@pytest.mark.parametrize(
    "host", ["/var/run/postgresql", "db1,db2", "http://db", "db name", "", "db@evil", "a" * 254]
)
def test_host_syntax_refuses_paths_lists_and_urls(host):
    with pytest.raises(NetworkRefused):
        netpolicy.check_host_syntax(host)


def test_host_syntax_accepts_names_and_literals():
    for host in ("db", "db.example.com", "10.0.0.1", "::1", "[::1]", "db_1.internal."):
        netpolicy.check_host_syntax(host)


def test_platform_servers_are_closed_even_when_opened(settings, monkeypatch, dns):
    """Django's database server, on any local address, and Airflow's metadata server, whatever the openings."""
    settings.ETL_NETWORK_ALLOW = ["0.0.0.0/0", "::/0"]
    django_db = settings.DATABASES["default"]
    port = int(django_db["PORT"] or 5432)
    dns["airflow-db.example.test"] = [PUBLIC]
    monkeypatch.setenv(
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg2://a@airflow-db.example.test:6543/x"
    )
    policy = netpolicy.network_policy()
    for host in ("127.0.0.1", "127.0.0.2", "0.0.0.0", "::ffff:127.0.0.1", "localhost"):
        with pytest.raises(
            NetworkRefused, match="Django's database server, which connectors may never reach"
        ):
            policy.check(host, port)
    with pytest.raises(NetworkRefused, match="Airflow's metadata database server"):
        policy.check("airflow-db.example.test", 6543)
    assert policy.check("127.0.0.1", port + 1) == "127.0.0.1"  # another port of loopback is opened here
    assert policy.check("airflow-db.example.test", 5432) == PUBLIC


def test_platform_servers_include_declared_ones_and_the_staging_store(settings, dns):
    settings.ETL_PLATFORM_SERVERS = ["redis.example.test:6379"]
    settings.ETL_STAGING_S3_ENDPOINT_URL = "http://minio.example.test:9000"
    dns.update({"redis.example.test": [PUBLIC], "minio.example.test": ["93.184.215.16"]})
    whats = {server.what for server in netpolicy.platform_servers()}
    assert {"a platform server (ETL_PLATFORM_SERVERS)", "the staging store"} <= whats
    with pytest.raises(NetworkRefused, match="is the staging store"):
        netpolicy.network_policy().check("93.184.215.16", 9000)


def test_platform_servers_include_write_backs_database_and_airflows_api(settings, dns):
    settings.ETL_NETWORK_ALLOW = ["0.0.0.0/0"]
    settings.ETL_RECORDER_DATABASE_URL = "postgres://etl:pw@pgbouncer.example.test:6432/etl"
    dns["pgbouncer.example.test"] = [PUBLIC]
    settings.ETL_AIRFLOW_API_URL = "http://airflow-api.example.test:8080"
    dns["airflow-api.example.test"] = ["93.184.215.17"]
    policy = netpolicy.network_policy()
    with pytest.raises(NetworkRefused, match=r"write-back's database server \(ETL_RECORDER_DATABASE_URL\)"):
        policy.check("pgbouncer.example.test", 6432)
    with pytest.raises(NetworkRefused, match=r"Airflow's API server \(ETL_AIRFLOW_API_URL\)"):
        policy.check("airflow-api.example.test", 8080)


def test_platform_server_of_this_machine_matches_every_local_address():
    server = netpolicy.PlatformServer("x", "localhost", 5432, frozenset({ipaddress.ip_address("127.0.0.1")}))
    assert server.matches(ipaddress.ip_address("127.9.9.9"), 5432)
    assert server.matches(ipaddress.ip_address("::"), 5432)
    assert not server.matches(ipaddress.ip_address("127.0.0.1"), 5433)
    for own in netpolicy.this_machine():
        assert server.matches(own, 5432)


def test_allowance_round_trips_through_runtime_settings():
    allowance = netpolicy.Allowance(("10.0.0.0/8",), ("/data/a",), ("/data/b",), "org-1")
    assert netpolicy.Allowance.from_runtime(allowance.as_runtime()) == allowance
    assert netpolicy.Allowance.from_runtime(None) == netpolicy.Allowance()


def test_real_resolver_answers_literals_without_lookups():
    assert netpolicy.real_resolve("127.0.0.1", 80) == ["127.0.0.1"]


def test_policy_is_a_frozen_value():
    with pytest.raises(AttributeError):
        NetworkPolicy().allow = ()  # type: ignore[misc]
