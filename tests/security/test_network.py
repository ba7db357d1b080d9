"""The network and file boundary, tried as a hostile tenant editor would: nothing but connector configs.

Each test is one attempt of issue 10's "Why", through the models (``full_clean``: the admin's validation) and
the admin's probe (test connection, preview), on real PostgreSQL, SQLite, a local HTTP server and moto's S3.
Names resolve through the suite's test resolver (fixture ``dns``) and the guard fails any connection off
loopback: a refused target is proven never contacted.
"""

from __future__ import annotations

import sqlite3

import pytest
from django.core.exceptions import ValidationError

from django_etl.connectors import probe
from tests.support.servers import TOKEN

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.215.14"  # what the test resolver answers for a "public" name; never contacted


def connector(organization, user, connector_type, config, credential=None, name="target"):
    from django_etl.connectors.models import Connector

    return Connector(
        name=name,
        connector_type=connector_type,
        organization=organization,
        created_by=user,
        config=config,
        credential=credential,
    )


def saved_anyway(candidate):
    """A connector stored without validation (as before this boundary), to try the check at connect time."""
    candidate.save()
    return candidate


def refusal(candidate) -> str:
    with pytest.raises(ValidationError) as caught:
        candidate.full_clean()
    return " ".join(caught.value.messages)


@pytest.fixture
def token(organization):
    from django_etl.connectors.models import Credential

    return Credential.objects.create_encrypted(name="token", organization=organization, data={"token": TOKEN})


@pytest.fixture
def login(organization):
    from django_etl.connectors.models import Credential

    return Credential.objects.create_encrypted(
        name="login", organization=organization, data={"user": "postgres", "password": "pw-canary-5f1"}
    )


# ---------------------------------------------------------------- SSRF: loopback and metadata services


def test_network_loopback_service_is_refused_at_save_and_connect(
    organization, user, token, api_server, settings
):
    settings.ETL_NETWORK_ALLOW = []  # the default: the suite's own opening closed
    api = connector(organization, user, "api", {"base_url": api_server.base_url, "auth": "bearer"}, token)
    assert "config.base_url: 127.0.0.1" in refusal(api) and "loopback address" in refusal(api)
    result = probe.test_connection(saved_anyway(api))
    assert not result.ok and "is a loopback address" in result.message
    assert api_server.state["requests"] == []  # never reached


@pytest.mark.parametrize(
    ("connector_type", "config", "key"),
    [
        ("api", {"base_url": "http://169.254.169.254/latest/meta-data/"}, "config.base_url"),
        ("api", {"base_url": "http://[fd00:ec2::254]/latest/"}, "config.base_url"),
        ("api", {"base_url": "http://[::ffff:169.254.169.254]/"}, "config.base_url"),
        ("cloud", {"bucket": "loot", "endpoint_url": "http://169.254.169.254"}, "config.endpoint_url"),
        ("database", {"engine": "postgresql", "host": "169.254.169.254", "database": "x"}, "config.host"),
    ],
)
def test_network_metadata_address_is_refused_at_save_and_connect(
    organization, user, connector_type, config, key
):
    candidate = connector(organization, user, connector_type, config)
    assert key in refusal(candidate)
    result = probe.test_connection(saved_anyway(candidate))  # the guard proves nothing was contacted
    assert not result.ok and ("link-local" in result.message or "private" in result.message)


def test_network_metadata_name_is_refused_at_save(organization, user, dns):
    dns["metadata.google.internal"] = ["169.254.169.254"]
    candidate = connector(organization, user, "api", {"base_url": "http://metadata.google.internal/"})
    assert "'metadata.google.internal' resolves to 169.254.169.254:80, a link-local address" in refusal(
        candidate
    )


def test_network_dns_rebinding_is_refused_at_connect(organization, user, token, api_server, settings, dns):
    """Public when saved, loopback when used: the connection goes to the address checked when connecting."""
    settings.ETL_NETWORK_ALLOW = []
    port = api_server.server_address[1]
    api = connector(organization, user, "api", {"base_url": f"http://rebind.example.test:{port}"}, token)
    dns["rebind.example.test"] = [PUBLIC]
    api.full_clean()
    api.save()
    dns["rebind.example.test"] = ["127.0.0.1"]
    result = probe.test_connection(api)
    assert not result.ok and "'rebind.example.test' resolves to 127.0.0.1" in result.message
    assert api_server.state["requests"] == []


def test_network_redirect_to_a_private_address_is_refused(organization, user, token, api_server):
    from django_etl.dataplane import adapter_for

    api = connector(organization, user, "api", {"base_url": api_server.base_url, "auth": "bearer"}, token)
    api.full_clean()
    api.save()
    adapter = adapter_for(api.runtime_settings())
    with pytest.raises(Exception, match=r"10\.0\.0\.1:80 is a private address"):
        list(adapter.read({"endpoint": "/redirect?to=http://10.0.0.1/admin"}, 10))


def test_network_organization_allowance_opens_only_its_own_connectors(
    organization, other_organization, user, token, api_server, settings
):
    """A superuser opens one address:port for one organization; another organization stays closed."""
    from django_etl.connectors.models import Credential, OrganizationPolicy

    settings.ETL_NETWORK_ALLOW = []
    port = api_server.server_address[1]
    policy = OrganizationPolicy(organization=organization, allowed_networks=[f"127.0.0.1:{port}"])
    policy.full_clean()
    policy.save()
    ours = connector(organization, user, "api", {"base_url": api_server.base_url, "auth": "bearer"}, token)
    ours.full_clean()
    assert probe.test_connection(saved_anyway(ours)).ok
    theirs_token = Credential.objects.create_encrypted(
        name="t", organization=other_organization, data={"token": TOKEN}
    )
    theirs = connector(other_organization, user, "api", {"base_url": api_server.base_url}, theirs_token)
    assert "loopback address" in refusal(theirs)
    assert len(api_server.state["requests"]) == 1


# ---------------------------------------------------------------- the platform's own database servers


def platform_database():
    from django.db import connection

    params = connection.settings_dict
    return params["HOST"] or "localhost", int(params["PORT"] or 5432), params["NAME"]


@pytest.mark.django_db(transaction=True)
def test_network_platform_postgres_is_refused_even_with_loopback_open(
    organization, other_organization, user, login
):
    """The suite opens loopback; Django's server (127.0.0.1:5432 here) stays closed, for every database on it."""
    from django_etl.monitoring.models import Alert

    Alert.objects.create(
        organization=other_organization, level="error", alert_type="task_failed", message="canary-alert-of-b"
    )
    host, port, name = platform_database()
    for target_host in (host, "localhost", "127.0.0.2", "0.0.0.0", "::ffff:127.0.0.1", "::1"):
        for database in (name, "postgres", "template1"):
            config = {"engine": "postgresql", "host": target_host, "port": port, "database": database}
            message = refusal(connector(organization, user, "database", config, login))
            assert "Django's database server, which connectors may never reach" in message, (
                target_host,
                database,
            )
    stored = saved_anyway(
        connector(
            organization,
            user,
            "database",
            {"engine": "postgresql", "host": host, "port": port, "database": name},
            login,
        )
    )
    result = probe.preview(stored)
    assert not result.ok and not result.rows and "Django's database server" in result.message
    assert "canary-alert-of-b" not in repr(result)


def test_network_airflow_metadata_server_is_refused(organization, user, login, monkeypatch, dns):
    dns["airflow-db.example.test"] = [PUBLIC]
    monkeypatch.setenv(
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://airflow@airflow-db.example.test/airflow"
    )
    for database in ("airflow", "postgres", "other"):
        config = {"engine": "postgresql", "host": PUBLIC, "database": database}
        assert "Airflow's metadata database server" in refusal(
            connector(organization, user, "database", config, login)
        )


def test_network_staging_store_and_bucket_are_refused(organization, user, settings, dns):
    dns["minio.example.test"] = [PUBLIC]
    settings.ETL_STAGING_URL = "s3://platform-staging/runs"
    settings.ETL_STAGING_S3_ENDPOINT_URL = "http://minio.example.test:9000"
    same_store = {"bucket": "tenant-bucket", "endpoint_url": "http://minio.example.test:9000"}
    assert "the staging store" in refusal(connector(organization, user, "cloud", same_store))
    staging_bucket = {"bucket": "platform-staging", "endpoint_url": "https://s3.example.test"}
    assert "the platform's staging bucket" in refusal(connector(organization, user, "cloud", staging_bucket))


# ---------------------------------------------------------------- libpq options and hosts


@pytest.mark.parametrize(
    "options",
    [
        {"hostaddr": "127.0.0.1"},
        {"passfile": "/root/.pgpass"},
        {"service": "platform"},
        {"sslkey": "/etc/ssl/private/worker.key"},
        {"sslcert": "/etc/ssl/certs/worker.crt"},
        {"sslrootcert": "/etc/ssl/certs/ca.crt"},
        {"sslcrl": "/etc/crl.pem"},
        {"options": "-c default_transaction_read_only=off"},
    ],
)
def test_network_postgres_unsafe_options_are_refused(organization, user, login, options):
    config = {"engine": "postgresql", "host": PUBLIC, "database": "d", "options": options}
    message = refusal(connector(organization, user, "database", config, login))
    assert (
        "config.options" in message
        and f"'{next(iter(options))}': not an allowed connection option" in message
    )


@pytest.mark.parametrize("host", ["/var/run/postgresql", "/tmp", "db.example.test,127.0.0.1", "@/run/pg"])
def test_network_postgres_socket_paths_and_host_lists_are_refused(organization, user, login, host):
    config = {"engine": "postgresql", "host": host, "database": "d"}
    assert "config.host" in refusal(connector(organization, user, "database", config, login))


# ---------------------------------------------------------------- files and SQLite


def test_files_sqlite_outside_the_roots_is_refused(organization, user, settings, tmp_path):
    settings.ETL_FILE_ROOTS = [str(tmp_path / "roots")]
    for path in ("/etc/passwd", str(tmp_path / "roots" / ".." / "elsewhere.db")):
        candidate = connector(organization, user, "database", {"engine": "sqlite", "path": path}, name="s")
        assert "config.path" in refusal(candidate) and "outside the allowed file roots" in refusal(candidate)
    stored = saved_anyway(
        connector(organization, user, "database", {"engine": "sqlite", "path": "/etc/passwd"})
    )
    result = probe.preview(stored)
    assert (
        not result.ok and "root:" not in repr(result) and "outside the allowed file roots" in result.message
    )


def test_files_another_organizations_sqlite_file_is_refused(
    organization, other_organization, user, settings, tmp_path
):
    """B's folder is assigned to B by a superuser: A cannot name B's file, even inside A's shared roots."""
    from django_etl.connectors.models import OrganizationPolicy

    shared = tmp_path / "shared"
    theirs = shared / "b"
    theirs.mkdir(parents=True)
    with sqlite3.connect(theirs / "crm.sqlite3") as conn:
        conn.execute("CREATE TABLE customers (name text)")
        conn.execute("INSERT INTO customers VALUES ('canary-customer-of-b')")
    settings.ETL_FILE_ROOTS = [str(shared)]
    policy = OrganizationPolicy(organization=other_organization, file_roots=[str(theirs)])
    policy.full_clean()
    policy.save()
    config = {"engine": "sqlite", "path": str(theirs / "crm.sqlite3")}
    assert "outside the allowed file roots" in refusal(connector(organization, user, "database", config))
    assert "outside the allowed file roots" in refusal(
        connector(organization, user, "file", {"root": str(shared)}, name="everything")
    )
    result = probe.preview(saved_anyway(connector(organization, user, "database", config)))
    assert not result.ok and "canary-customer-of-b" not in repr(result)
    # B itself reads it.
    own = connector(other_organization, user, "database", config)
    own.full_clean()
    assert probe.preview(saved_anyway(own)).rows == [["canary-customer-of-b"]]


def test_files_platform_files_are_refused_as_roots(organization, user, settings, tmp_path):
    settings.ETL_FILE_ROOTS = [str(tmp_path)]
    settings.ETL_STAGING_URL = str(tmp_path / "staging")
    settings.ETL_DAGS_FOLDER = tmp_path / "dags"
    for root in (tmp_path, tmp_path / "staging", tmp_path / "dags" / "x"):
        assert "which connectors may never reach" in refusal(
            connector(organization, user, "file", {"root": str(root)})
        )


def test_files_staged_data_is_namespaced_by_organization(tmp_path):
    """A's steps look up datasets in A's folder only: B's dataset of the same dag, run and name is not found."""
    import pyarrow as pa

    from django_etl.dataplane.staging import Staging

    url = str(tmp_path / "staging")
    a, b = Staging(url, organization="org-a"), Staging(url, organization="org-b")
    table = pa.table({"secret": ["canary-staged-of-b"]})
    info = b.write_dataset(b.dataset_dir("dag", "run", "extract", "orders"), "orders", table.to_batches())
    b.write_manifest("dag", "run", "extract", {"status": "success", "outputs": [info.as_manifest()]})
    assert "/org_org-b/" in info.uri
    assert b.find_dataset("dag", "run", "orders") is not None
    assert a.find_dataset("dag", "run", "orders") is None


# ---------------------------------------------------------------- masking


def test_masking_one_character_secret_does_not_mangle_logs(organization):
    from django_etl.connectors.models import Credential
    from django_etl.connectors.secrets import mask, secret_values, too_short_to_mask

    credential = Credential.objects.create_encrypted(
        name="short", organization=organization, data={"user": "etl", "password": "e"}
    )
    secret = credential.decrypt_data()
    assert secret_values(secret) == [] and too_short_to_mask(secret) == ["password"]
    assert mask("extract step finished: 3 rows", secret_values(secret)) == "extract step finished: 3 rows"


def test_masking_credential_form_warns_about_short_values(client, organization, user):
    from django.contrib.messages import get_messages
    from django.urls import reverse

    client.force_login(user)
    response = client.post(
        reverse("admin:connectors_credential_add"),
        {"name": "short", "organization": organization.pk, "secret": '{"user": "etl", "password": "e"}'},
    )
    assert response.status_code == 302
    warnings = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert warnings and "'password': shorter than 5 characters, so not masked" in warnings[0]
    assert '"e"' not in warnings[0]


def test_masking_runtime_registers_only_maskable_values_with_airflow():
    """Through Airflow's own masker: the long value is blanked in a log line, the one-letter one is not."""
    from airflow.sdk._shared.secrets_masker.secrets_masker import redact

    from airflow_plugin import runtime

    for value in ("e", "abcd", "canary-long-9d1"):
        runtime.register_with_airflow(value)
    assert redact("extract e abcd canary-long-9d1") == "extract e abcd ***"
