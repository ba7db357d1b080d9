"""rotate_credentials: re-encrypts in batches, survives a SIGKILL halfway, resumes; --retire refuses a used key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
COUNT = 40


@pytest.fixture
def ring(settings):
    """A ring of two keys; the test switches the current one from 'old' to 'new'."""
    from django_etl.connectors.keyring import get_keyring

    def use(current: str) -> str:
        settings.ETL_CREDENTIAL_KEYS = f"old:{OLD},new:{NEW}"
        settings.ETL_CREDENTIAL_CURRENT_KEY = current
        get_keyring.cache_clear()
        return settings.ETL_CREDENTIAL_KEYS

    yield use
    get_keyring.cache_clear()


@pytest.fixture
def old_credentials(ring, organization):
    from django_etl.connectors.models import Credential

    ring("old")
    for number in range(COUNT):
        Credential.objects.create_encrypted(
            name=f"cred {number:02d}", organization=organization, data={"password": f"secret-{number:02d}"}
        )
    ring("new")


def manage_env(keys: str) -> dict[str, str]:
    from django.conf import settings

    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_DEBUG": "true",
        "ETL_CREDENTIAL_KEYS": keys,
        "ETL_CREDENTIAL_CURRENT_KEY": "new",
        "PYTHONUNBUFFERED": "1",
    }


def all_decrypt() -> dict[str, int]:
    """Every credential decrypts to its own secret; returns how many are under each key."""
    from django_etl.connectors.models import Credential

    under: dict[str, int] = {}
    for credential in Credential.objects.all():
        number = credential.name.split()[1]
        assert credential.decrypt_data() == {"password": f"secret-{number}"}
        under[credential.encryption_key_id] = under.get(credential.encryption_key_id, 0) + 1
    return under


def test_rotate_credentials_killed_halfway_then_resumed(old_credentials, ring):
    keys = ring("new")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "rotate_credentials", "--batch-size", "1", "--pause", "0.05"],
        cwd=ROOT,
        env=manage_env(keys),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in process.stdout:
            all_decrypt()  # readable at every moment of the rotation
            if line.startswith("rotated 10/"):
                break
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    halfway = all_decrypt()
    assert halfway.get("new", 0) >= 10 and halfway.get("old", 0) > 0, halfway

    resumed = subprocess.run(
        [sys.executable, "manage.py", "rotate_credentials", "--batch-size", "10"],
        cwd=ROOT,
        env=manage_env(keys),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"{halfway['old']} credential(s) to re-encrypt" in resumed.stdout
    assert "0 credential(s) left under retired keys." in resumed.stdout
    assert all_decrypt() == {"new": COUNT}


def test_rotate_credentials_reports_what_is_left_and_retire_refuses(old_credentials, ring, capsys):
    from django_etl.connectors.models import Credential

    with pytest.raises(CommandError, match=r"Key 'old' still encrypts 40 credential\(s\)"):
        call_command("rotate_credentials", "--retire", "old")
    with pytest.raises(CommandError, match="is the current key"):
        call_command("rotate_credentials", "--retire", "new")
    locked_out = Credential.objects.order_by("pk").first()
    Credential.objects.filter(pk=locked_out.pk).update(encryption_key_id="gone")  # a key already removed
    call_command("rotate_credentials", "--batch-size", "20")
    out = capsys.readouterr()
    assert "rotated 20/40" in out.out and "rotated 39/40; 1 could not be decrypted" in out.out
    assert "1 credential(s) left under key 'gone' (NOT in the key ring)." in out.out
    assert f"skipped {locked_out.pk}" in out.err and "secret-" not in out.err
    call_command("rotate_credentials", "--retire", "old")
    assert "Key 'old' encrypts no credential" in capsys.readouterr().out
