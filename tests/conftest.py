"""Shared fixtures: an organization with a member, connectors and a small pipeline, on real PostgreSQL."""

from __future__ import annotations

import os

import pytest

# Loopback servers (JSON API, S3 API, PostgreSQL target schema) for the connector and operator tests; the guard
# that fails any connection off loopback and the test resolver (no real lookup of a connector's host).
pytest_plugins = [
    "tests.support.servers",
    "tests.support.netguard",
    # Airflow's REST API served in-process (one per session) and the recorder behind a stoppable proxy (catch-up).
    "tests.support.airflow_api_server",
    "tests.support.tcp_proxy",
]

# The suite opts in to loopback targets (its own servers); the platform's own servers stay closed even so.
# Refusals by default are tested with the setting emptied. The environment carries it to subprocesses.
LOOPBACK_TARGETS = ["127.0.0.0/8", "::1"]
os.environ.setdefault("ETL_NETWORK_ALLOW", ",".join(LOOPBACK_TARGETS))


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The real hasher costs ~0.3 s per user; tests create many users and never test hashing strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def loopback_targets_allowed(settings):
    settings.ETL_NETWORK_ALLOW = list(LOOPBACK_TARGETS)


@pytest.fixture(autouse=True)
def temporary_folders_are_file_roots(settings, tmp_path_factory):
    # The suite's temporary folders are file roots (SQLite and file connectors of tests live there); tests of
    # the confinement set ETL_FILE_ROOTS themselves.
    settings.ETL_FILE_ROOTS = [*settings.ETL_FILE_ROOTS, str(tmp_path_factory.getbasetemp())]


@pytest.fixture
def user(db):
    from django_etl.core.models import User

    return User.objects.create_user(username="ada", email="ada@example.com", password="pw-ada-123")


@pytest.fixture
def organization(db, user):
    from django_etl.core.models import MembershipRole, Organization, OrganizationMembership

    org = Organization.objects.create(name="Acme", slug="acme")
    OrganizationMembership.objects.create(user=user, organization=org, role=MembershipRole.OWNER)
    return org


@pytest.fixture
def other_organization(db):
    from django_etl.core.models import Organization

    return Organization.objects.create(name="Globex", slug="globex")


@pytest.fixture
def credential(organization):
    from django_etl.connectors.models import Credential

    return Credential.objects.create_encrypted(
        name="warehouse login", organization=organization, data={"user": "etl", "password": "s3cr3t-canary"}
    )


@pytest.fixture
def file_connector(organization, user, settings, tmp_path):
    from django_etl.connectors.models import Connector

    settings.ETL_FILE_ROOTS = [str(tmp_path)]
    return Connector.objects.create(
        name="landing",
        connector_type="file",
        organization=organization,
        created_by=user,
        config={"root": str(tmp_path), "format": "csv"},
    )


@pytest.fixture
def db_connector(organization, user, credential):
    from django_etl.connectors.models import Connector

    return Connector.objects.create(
        name="warehouse",
        connector_type="database",
        organization=organization,
        created_by=user,
        config={"engine": "postgresql", "host": "127.0.0.1", "database": "warehouse"},
        credential=credential,
    )


@pytest.fixture
def pipeline(organization, user):
    from django_etl.pipelines.models import Pipeline

    return Pipeline.objects.create(
        name="Orders daily",
        organization=organization,
        created_by=user,
        status="active",
        config={"schedule": "@daily"},
    )


@pytest.fixture
def make_step(pipeline):
    from django_etl.pipelines.models import PipelineStep

    def make(name, step_type, config, order_index, **extra):
        return PipelineStep.objects.create(
            pipeline=extra.pop("pipeline", pipeline),
            name=name,
            step_type=step_type,
            config=config,
            order_index=order_index,
            **extra,
        )

    return make
