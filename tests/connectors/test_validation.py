"""Connector validation: config per type (the adapters' own models), credential, file root; same messages."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from django_etl.connectors.validation import validate_connector

pytestmark = pytest.mark.django_db


def database(organization, user, config):
    from django_etl.connectors.models import Connector

    return Connector(
        name="db", connector_type="database", organization=organization, created_by=user, config=config
    )


def test_credential_of_another_organization_rejected(file_connector, other_organization):
    from django_etl.connectors.models import Credential

    foreign = Credential.objects.create_encrypted(name="x", organization=other_organization, data={"a": "b"})
    file_connector.credential = foreign
    with pytest.raises(ValidationError, match="belongs to another organization"):
        file_connector.full_clean()


def test_connector_config_checked_per_type(organization, user):
    from django_etl.connectors.models import Connector

    connector = Connector(
        name="api",
        connector_type="api",
        organization=organization,
        created_by=user,
        config={"base_url": "not a url", "auth": "bearer"},
    )
    text = str(validate_connector(connector))
    assert "connector 'api' config.base_url" in text
    assert "auth 'bearer' needs a credential" not in text  # config is invalid, checked first
    connector.config = {"base_url": "https://api.example.com", "auth": "bearer"}
    assert "auth 'bearer' needs a credential" in str(validate_connector(connector))


def test_file_connector_root_must_be_allowed(organization, user, settings, tmp_path):
    from django_etl.connectors.models import Connector

    settings.ETL_FILE_ROOTS = [str(tmp_path / "allowed")]
    connector = Connector(
        name="f", connector_type="file", organization=organization, created_by=user, config={"root": "/etc"}
    )
    assert "'/etc' is outside the allowed file roots" in str(validate_connector(connector))


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({}, "connector 'db' config.engine: Field required"),
        (
            {"engine": "oracle"},
            "connector 'db' config.engine: Input should be 'postgresql', 'sqlite' or 'mysql'",
        ),
        (
            {"engine": "postgresql", "host": "h"},
            "connector 'db' config: a postgresql connector needs 'host' and 'database'",
        ),
        ({"engine": "sqlite"}, "connector 'db' config: a sqlite connector needs 'path'"),
        (
            {"engine": "postgresql", "host": "h", "database": "d", "port": 0},
            "connector 'db' config.port: Input should be greater than or equal to 1",
        ),
        (
            {"engine": "sqlite", "path": "/tmp/x.db", "colour": "blue"},
            "connector 'db' config.colour: unknown key",
        ),
    ],
)
def test_database_connector_config_checked_per_engine(organization, user, config, problem):
    assert problem in str(validate_connector(database(organization, user, config))).splitlines()


def test_database_connector_config_valid_per_engine(organization, user, tmp_path):
    postgres = {
        "engine": "postgresql",
        "host": "h",
        "database": "d",
        "schema": "s",
        "options": {"sslmode": "require"},
    }
    assert not validate_connector(database(organization, user, postgres))
    sqlite = {"engine": "sqlite", "path": str(tmp_path / "x.db")}  # the suite's folders are file roots
    assert not validate_connector(database(organization, user, sqlite))


def test_connector_of_unknown_type_is_named(organization, user):
    from django_etl.connectors.models import Connector

    connector = Connector(
        name="x", connector_type="ftp", organization=organization, created_by=user, config={}
    )
    assert str(validate_connector(connector)) == "connector 'x' connector_type: unknown type 'ftp'"


def test_connector_config_must_be_an_object(organization, user):
    assert "connector 'db' config: must be a JSON object, not list" in str(
        validate_connector(database(organization, user, []))
    )


def test_connector_clean_raises_every_problem_on_its_field(organization, user):
    connector = database(organization, user, {"engine": "oracle"})
    with pytest.raises(ValidationError) as caught:
        connector.clean()
    assert caught.value.message_dict == {
        "config": ["connector 'db' config.engine: Input should be 'postgresql', 'sqlite' or 'mysql'"]
    }


def test_every_connector_type_has_an_adapter():
    from django_etl import dataplane
    from django_etl.connectors.choices import ConnectorType

    assert set(dataplane.ADAPTERS) == set(ConnectorType.values)
