"""Production settings pass `check --deploy` with no warning; the plain-HTTP profile relaxes exactly four checks.

And issue 12 on the embedded SQLite default, in a fresh process: migrate, sign in (throttled), an audited change.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ETL_"))}
    (tmp_path / "files").mkdir(exist_ok=True)
    (tmp_path / "state").mkdir(exist_ok=True)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'state' / 'prod.sqlite3'}",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="x7" * 30 + "-Qz_9!kL#mP2",
        ETL_CREDENTIAL_KEYS=f"prod:{Fernet.generate_key().decode()}",
        ETL_VAR_DIR=str(tmp_path / "state"),
        ETL_FILE_ROOTS=str(tmp_path / "files"),
        DJANGO_ALLOWED_HOSTS="etl.example.com",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://etl.example.com",
        DJANGO_SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        DJANGO_EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        DJANGO_EMAIL_HOST="smtp.example.com",
    )
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_check_deploy_passes_with_production_values(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_plain_http_profile_relaxes_exactly_the_tls_checks(tmp_path):
    env = production_env(tmp_path, DJANGO_PLAIN_HTTP="true")
    result = manage("check", "--deploy", env=env)
    found = set(re.findall(r"\((\w+\.W\d+)\)", result.stderr + result.stdout))
    assert found == {"security.W004", "security.W008", "security.W012", "security.W016"}


def test_check_deploy_warns_about_a_development_email_backend(tmp_path):
    env = production_env(tmp_path)
    del env["DJANGO_EMAIL_BACKEND"]
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0 and "etl.W101" in result.stderr


SQLITE_SCRIPT = textwrap.dedent(
    """
    from django_etl.startup import setup_django
    setup_django()
    from django.test import Client
    from django.urls import reverse
    from django_etl.core.models import Organization, OrganizationMembership, User
    from django_etl.pipelines.models import Pipeline

    org = Organization.objects.create(name="Acme", slug="acme")
    ada = User.objects.create_user("ada", password="pw-ada-123")
    OrganizationMembership.objects.create(user=ada, organization=org, role="owner")
    client = Client(REMOTE_ADDR="203.0.113.5")
    login = reverse("admin:login")
    for _ in range(2):
        client.post(login, {"username": "ada", "password": "wrong"})
    print("locked", client.post(login, {"username": "ada", "password": "pw-ada-123"}).status_code)
    other = Client(REMOTE_ADDR="203.0.113.6")
    print("other", other.post(login, {"username": "ada", "password": "pw-ada-123"}).status_code)
    ada.refresh_from_db()
    print("ip", ada.last_login_ip)
    pipeline = Pipeline.objects.create(name="Orders", organization=org, created_by=ada, config={})
    pipeline.name = "Orders v2"
    pipeline.save()
    record = pipeline.history.order_by("-history_id").first()
    delta = record.diff_against(record.prev_record)
    print("diff", [(c.field, c.old, c.new) for c in delta.changes])
    """
)


def test_sqlite_default_migrates_throttles_sign_in_and_audits(tmp_path):
    env = production_env(
        tmp_path, DJANGO_DEBUG="true", DJANGO_AXES_FAILURE_LIMIT="2", DJANGO_ALLOWED_HOSTS="testserver"
    )
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'state' / 'embedded.sqlite3'}"
    migrated = manage("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "Applying audit.0001_initial... OK" in migrated.stdout
    assert "Applying axes.0001_initial... OK" in migrated.stdout
    result = subprocess.run(
        [sys.executable, "-c", SQLITE_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["locked"] == "429"
    assert lines["other"] == "302"
    assert lines["ip"] == "203.0.113.6"
    assert lines["diff"].startswith("[('name', 'Orders', 'Orders v2')")  # the version bump may follow


@pytest.mark.parametrize("value", ["HTTP_X_FORWARDED_PROTO", ",https"])
def test_settings_refuse_a_malformed_proxy_ssl_header(tmp_path, value):
    result = manage("check", env=production_env(tmp_path, DJANGO_SECURE_PROXY_SSL_HEADER=value))
    assert result.returncode != 0 and "DJANGO_SECURE_PROXY_SSL_HEADER" in result.stderr
