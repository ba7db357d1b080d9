"""A hostile tenant's second round against the network and file boundary: address forms, options, odd paths."""

from __future__ import annotations

import ipaddress
import os

import pytest

from django_etl.connectors import probe
from django_etl.dataplane.netpolicy import special_use
from tests.security.test_network import PUBLIC, connector, login, refusal, saved_anyway  # noqa: F401

pytestmark = pytest.mark.django_db

# Literal addresses (no resolution needed) that lead to this machine, a private network or a metadata service.
ADDRESS_FORMS = [
    "http://0.0.0.0:8080/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:0:7f00:1]/",  # IPv4-translated
    "http://[0:0:0:0:0:ffff:169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://[2002:a9fe:a9fe::]/",  # 6to4 of 169.254.169.254
    "http://[fe80::1%25eth0]/",
    "http://user:pw@127.0.0.1/",
    "http://127.0.0.1#@example.com/",
    "http://100.100.100.200/",  # Alibaba Cloud's metadata service (shared address space)
    "http://192.0.0.192/",  # Oracle Cloud's metadata service (IETF protocol assignments; "global" to Python 3.12.1)
    "http://[fd00:ec2::254]/",  # AWS's IPv6 metadata service
    "http://198.18.0.1/",
    "http://240.0.0.1/",
    "http://[100::1]/",
    # Numeric hosts libc reads as IPv4: checked as addresses whatever the resolver answers.
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://0/",
]


@pytest.mark.parametrize("url", ADDRESS_FORMS)
def test_network_address_form_is_refused_at_save_and_connect(organization, user, url, settings):
    settings.ETL_NETWORK_ALLOW = []  # the default (the suite opens loopback for its own servers)
    candidate = connector(organization, user, "api", {"base_url": url})
    assert "config.base_url" in refusal(candidate)
    result = probe.test_connection(saved_anyway(candidate))  # the guard proves nothing was contacted
    assert not result.ok and "address" in result.message


@pytest.mark.parametrize(
    "address", ["192.0.0.192", "192.0.0.8", "192.88.99.1", "2001:10::1", "5f00::1", "3fff::1"]
)
def test_special_use_does_not_depend_on_the_interpreters_tables(address):
    assert special_use(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"])
def test_special_use_public_addresses_pass(address):
    assert special_use(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "config",
    [
        {"bucket": "loot", "endpoint_url": "http://192.0.0.192"},
        {"bucket": "loot", "endpoint_url": "http://[::ffff:127.0.0.1]:9000"},
        {"bucket": "loot", "endpoint_url": "http://0.0.0.0:9000"},
    ],
)
def test_network_s3_endpoint_forms_are_refused(organization, user, config, settings):
    settings.ETL_NETWORK_ALLOW = []
    assert "config.endpoint_url" in refusal(connector(organization, user, "cloud", config))


@pytest.mark.parametrize(
    "host",
    [
        "host=127.0.0.1",
        "127.0.0.1 port=5432",
        "postgresql://127.0.0.1/postgres",
        "db.example.test:5432",
        "192.0.0.192",
        "::ffff:127.0.0.1",
        "[::1]",
        "0",
    ],
)
def test_network_postgres_host_forms_are_refused(organization, user, login, host, settings):  # noqa: F811
    settings.ETL_NETWORK_ALLOW = []
    config = {"engine": "postgresql", "host": host, "database": "d"}
    assert "config.host" in refusal(connector(organization, user, "database", config, login))


@pytest.mark.parametrize(
    "options",
    [
        {"sslpassword": "x"},
        {"sslcrldir": "/etc"},
        {"krbsrvname": "postgres"},
        {"requirepeer": "root"},
        {"gssencmode": "prefer"},
        {"target_session_attrs": "any", "host": "127.0.0.1"},
        {"load_balance_hosts": "random"},
        {"application_name": "x", "user": "postgres"},
    ],
)
def test_network_postgres_options_beyond_the_allow_list_are_refused(organization, user, login, options):  # noqa: F811
    config = {"engine": "postgresql", "host": PUBLIC, "database": "d", "options": options}
    assert "config.options" in refusal(connector(organization, user, "database", config, login))


def test_files_paths_that_leave_the_roots_are_refused(organization, user, settings, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.db").write_bytes(b"")
    os.symlink(outside, root / "link")
    os.symlink("/proc/self/environ", root / "environ")
    settings.ETL_FILE_ROOTS = [str(root)]
    for path in [
        f"{root}/../outside/secret.db",
        f"{root}/link/secret.db",
        f"{root}/environ",
        "/proc/self/environ",
        "/etc/passwd",
        f"{root}/./../outside",
        str(outside),
    ]:
        sqlite = connector(organization, user, "database", {"engine": "sqlite", "path": path})
        assert "config.path" in refusal(sqlite), path
        files = connector(organization, user, "file", {"root": path, "format": "csv"})
        assert "config.root" in refusal(files), path


@pytest.fixture
def token(organization):
    from django_etl.connectors.models import Credential
    from tests.support.servers import TOKEN

    return Credential.objects.create_encrypted(name="token", organization=organization, data={"token": TOKEN})


@pytest.fixture
def listener():
    """A TCP port that records who connects to it (a proxy the environment names, a platform server)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    accepted: list = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn.recv(1024))
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(2)
    server.close()


def test_network_proxy_from_the_environment_is_never_used(
    organization, user, token, api_server, listener, monkeypatch
):
    from django_etl.dataplane import adapter_for

    port, accepted = listener
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(variable, f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    api = connector(organization, user, "api", {"base_url": api_server.base_url, "auth": "bearer"}, token)
    api.full_clean()
    api.save()
    rows = list(
        adapter_for(api.runtime_settings()).read({"endpoint": "/items", "records_path": "data.items"}, 10)
    )
    assert rows and accepted == []  # straight to the API: the proxy (which would see the token) saw nothing


def test_network_redirect_to_a_platform_server_is_refused(
    organization, user, token, api_server, listener, settings
):
    from django_etl.dataplane import adapter_for

    port, accepted = listener
    settings.ETL_PLATFORM_SERVERS = [f"127.0.0.1:{port}"]  # as Django's database or Redis would be
    api = connector(organization, user, "api", {"base_url": api_server.base_url, "auth": "bearer"}, token)
    api.full_clean()
    api.save()
    adapter = adapter_for(api.runtime_settings())
    for target in (
        f"http://127.0.0.1:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",
        f"http://0.0.0.0:{port}/",
    ):
        with pytest.raises(Exception, match="which connectors may never reach"):
            list(adapter.read({"endpoint": f"/redirect?to={target}"}, 10))
    assert accepted == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://s3.example.test/platform-staging",  # botocore would read bucket "platform-staging"
        "https://s3.example.test/platform-staging/",
        "https://s3.example.test/?bucket=platform-staging",
        "https://user:pw@s3.example.test",
    ],
)
def test_network_s3_endpoint_with_a_path_is_refused(organization, user, endpoint, settings):
    settings.ETL_STAGING_URL = "s3://platform-staging/etl"
    config = {"bucket": "tenant-bucket", "endpoint_url": endpoint}
    message = refusal(connector(organization, user, "cloud", config))
    assert "config.endpoint_url" in message and "give the server only" in message


def test_network_s3_endpoint_without_a_path_is_accepted(organization, user, dns):
    dns["s3.example.test"] = [PUBLIC]
    for endpoint in ("https://s3.example.test", "https://s3.example.test/", "https://s3.example.test:9000"):
        connector(
            organization, user, "cloud", {"bucket": "tenant-bucket", "endpoint_url": endpoint}
        ).full_clean()


def test_network_s3_virtual_hosted_endpoint_of_the_staging_bucket_is_refused(
    organization, user, settings, dns
):
    settings.ETL_STAGING_URL = "s3://platform-staging/etl"
    dns["platform-staging.s3.example.test"] = [PUBLIC]
    config = {"bucket": "tenant-bucket", "endpoint_url": "https://Platform-Staging.s3.example.test"}
    message = refusal(connector(organization, user, "cloud", config))
    assert "config.endpoint_url" in message and "names the platform's staging bucket" in message
