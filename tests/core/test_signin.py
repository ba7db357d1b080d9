"""Sign-in: lock-out after repeated wrong passwords, keyed on username and client address; last_login_ip."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

GOOD = "pw-ada-123"


@pytest.fixture
def member(user, organization):
    return user  # a member of Acme (tests/conftest.py), so the admin lets her in


def sign_in(client, password: str, *, username: str = "ada", address: str = "203.0.113.7", **headers):
    return client.post(
        reverse("admin:login"), {"username": username, "password": password}, REMOTE_ADDR=address, **headers
    )


def test_signin_locks_out_username_and_address_after_failures(client, member, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        assert sign_in(client, "wrong").status_code in (200, 429)
    locked = sign_in(client, GOOD)
    assert locked.status_code == 429  # the right password no longer opens the door
    assert "_auth_user_id" not in client.session


def test_signin_lockout_spares_other_addresses_and_other_users(client, member, organization, settings):
    from django_etl.core.models import OrganizationMembership, User

    settings.AXES_FAILURE_LIMIT = 3
    bob = User.objects.create_user(username="bob", password="pw-bob-123")
    OrganizationMembership.objects.create(user=bob, organization=organization, role="viewer")
    for _ in range(3):
        sign_in(client, "wrong")
    assert sign_in(client, GOOD, address="198.51.100.2").status_code == 302
    client.logout()
    assert sign_in(client, "pw-bob-123", username="bob").status_code == 302  # same address, other user


def test_signin_records_last_login_ip_from_the_socket(client, member):
    response = sign_in(client, GOOD, address="203.0.113.9", HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.last_login_ip == "203.0.113.9"  # X-Forwarded-For is not trusted by default


def test_signin_records_last_login_ip_from_the_trusted_proxy_header(client, member, settings):
    settings.CLIENT_IP_HEADER = "HTTP_X_REAL_IP"
    response = sign_in(client, GOOD, address="10.0.0.2", HTTP_X_REAL_IP="198.51.100.20")
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.last_login_ip == "198.51.100.20"


def test_client_ip_ignores_a_malformed_trusted_header(rf, settings):
    from django_etl.core.signals import client_ip

    settings.CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    assert client_ip(rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="not-an-ip")) == "10.0.0.2"
    # Of a list, the right-most entry: the one the trusted proxy appended (the rest the client may have sent).
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.3")
    assert client_ip(request) == "198.51.100.3"


def test_lockout_is_keyed_on_username_and_address():
    from django.conf import settings

    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.AUTHENTICATION_BACKENDS == [
        "axes.backends.AxesStandaloneBackend",
        "django_etl.core.permissions.RoleBackend",
    ]
