"""System checks: a broken key ring, file root or staging location fails ``manage.py check``."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_etl.connectors import checks


def _ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_check_key_ring_default_is_valid():
    assert checks.check_key_ring() == []


def test_check_key_ring_invalid_key_is_an_error(settings):
    settings.ETL_CREDENTIAL_KEYS = "k1:not-a-fernet-key"
    settings.ETL_CREDENTIAL_KEYS_FILE = ""
    messages = checks.check_key_ring()
    assert _ids(messages) == ["connectors.E001"]
    assert "'k1' is not a valid Fernet key" in messages[0].msg


def test_check_key_ring_unknown_current_key_is_an_error(settings):
    from cryptography.fernet import Fernet

    settings.ETL_CREDENTIAL_KEYS = f"k1:{Fernet.generate_key().decode()}"
    settings.ETL_CREDENTIAL_CURRENT_KEY = "k2"
    assert _ids(checks.check_key_ring()) == ["connectors.E001"]


def test_check_file_roots_relative_or_file_is_an_error(settings, tmp_path):
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    settings.ETL_FILE_ROOTS = ["relative/folder", str(a_file), str(tmp_path)]
    assert _ids(checks.check_file_roots()) == ["connectors.E002", "connectors.E003"]


def test_check_file_roots_exist_warns_only_on_deploy(settings, tmp_path):
    settings.ETL_FILE_ROOTS = [str(tmp_path / "missing"), str(tmp_path)]
    assert checks.check_file_roots() == []
    assert _ids(checks.check_file_roots_exist()) == ["connectors.W001"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("gs://bucket/x", ["connectors.E004"]),
        ("s3://", ["connectors.E005"]),
        ("relative/staging", ["connectors.E006"]),
        ("s3://bucket/prefix", []),
    ],
)
def test_check_staging_location(settings, url, expected):
    settings.ETL_STAGING_URL = url
    assert _ids(checks.check_staging_location()) == expected


def test_check_staging_inside_a_file_root_is_an_error(settings, tmp_path):
    settings.ETL_FILE_ROOTS = [str(tmp_path)]
    settings.ETL_STAGING_URL = str(tmp_path / "staging")
    messages = checks.check_file_roots()
    assert _ids(messages) == ["connectors.E007"]
    assert "overlaps the staging folder" in messages[0].msg


def test_check_platform_files_inside_a_file_root_are_errors(settings, tmp_path):
    """The connectors' own path rule, nothing else: the dags folder and the key ring file are the platform's."""
    (tmp_path / "keys.json").write_text("{}")
    settings.ETL_FILE_ROOTS = [str(tmp_path)]
    settings.ETL_DAGS_FOLDER = tmp_path / "dags"
    assert _ids(checks.check_file_roots()) == ["connectors.E007"]
    settings.ETL_DAGS_FOLDER = tmp_path.parent / "elsewhere-dags"
    settings.ETL_CREDENTIAL_KEYS_FILE = str(tmp_path / "keys.json")
    assert "overlaps ETL_CREDENTIAL_KEYS_FILE" in checks.check_file_roots()[0].msg


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ETL_NETWORK_ALLOW", ["10.0.0.0/8", "127.0.0.1:9000", "[::1]:80"], []),
        ("ETL_NETWORK_ALLOW", ["intranet.example.com"], ["connectors.E008"]),
        ("ETL_NETWORK_ALLOW", ["10.0.0.0/8:99999"], ["connectors.E008"]),
        ("ETL_PLATFORM_SERVERS", ["redis.internal:6379"], []),
        ("ETL_PLATFORM_SERVERS", ["redis.internal"], ["connectors.E008"]),
        ("ETL_POSTGRES_ALLOWED_OPTIONS", ["sslrootcert"], []),
        ("ETL_POSTGRES_ALLOWED_OPTIONS", ["options"], ["connectors.E009"]),
    ],
)
def test_check_network_policy_settings(settings, name, value, expected):
    setattr(settings, name, value)
    assert _ids(checks.check_network_policy()) == expected


def test_manage_py_check_fails_on_a_broken_key_ring(settings):
    settings.ETL_CREDENTIAL_KEYS = "broken"
    settings.ETL_CREDENTIAL_KEYS_FILE = ""
    with pytest.raises(SystemCheckError, match=r"connectors\.E001"):
        call_command("check")
