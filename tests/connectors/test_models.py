"""Credential encryption: round trip, key selection by encryption_key_id, no plaintext anywhere visible."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet, InvalidToken

from django_etl.connectors.keyring import UnknownKeyError, build_keyring, get_keyring

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
SECRET = {"user": "etl", "password": "canary-7f3a9"}


@pytest.fixture
def two_keys(settings):
    settings.ETL_CREDENTIAL_KEYS = f"old:{KEY_A},new:{KEY_B}"
    settings.ETL_CREDENTIAL_KEYS_FILE = ""
    settings.ETL_CREDENTIAL_CURRENT_KEY = "new"
    get_keyring.cache_clear()
    yield
    get_keyring.cache_clear()


@pytest.mark.django_db
def test_credential_round_trip_with_current_key(two_keys, organization):
    from django_etl.connectors.models import Credential

    credential = Credential.objects.create_encrypted(name="db", organization=organization, data=SECRET)
    stored = Credential.objects.get(pk=credential.pk)
    assert stored.encryption_key_id == "new"
    assert stored.decrypt_data() == SECRET
    assert "canary" not in stored.encrypted_data


@pytest.mark.django_db
def test_stored_token_decrypts_with_plain_fernet_of_its_key_only(two_keys, organization):
    from django_etl.connectors.models import Credential

    credential = Credential.objects.create_encrypted(name="db", organization=organization, data=SECRET)
    token = Credential.objects.get(pk=credential.pk).encrypted_data.encode()
    assert json.loads(Fernet(KEY_B.encode()).decrypt(token)) == SECRET
    with pytest.raises(InvalidToken):
        Fernet(KEY_A.encode()).decrypt(token)
    with pytest.raises(InvalidToken):
        Fernet(Fernet.generate_key()).decrypt(token)


@pytest.mark.django_db
def test_key_is_chosen_by_encryption_key_id(two_keys, organization):
    from django_etl.connectors.models import Credential

    credential = Credential(name="legacy", organization=organization, encryption_key_id="old")
    credential.encrypt_data(SECRET)
    credential.save()
    assert json.loads(Fernet(KEY_A.encode()).decrypt(credential.encrypted_data.encode())) == SECRET
    assert Credential.objects.get(pk=credential.pk).decrypt_data() == SECRET


@pytest.mark.django_db
def test_decrypt_with_wrong_key_id_names_credential_not_secret(two_keys, organization):
    from django_etl.connectors.models import Credential, CredentialDecryptionError

    credential = Credential.objects.create_encrypted(name="db", organization=organization, data=SECRET)
    credential.encryption_key_id = "old"
    with pytest.raises(CredentialDecryptionError, match="'db'") as caught:
        credential.decrypt_data()
    assert "canary" not in str(caught.value)


@pytest.mark.django_db
def test_unknown_key_id_is_a_clear_error(two_keys, organization):
    from django_etl.connectors.models import Credential

    credential = Credential(name="x", organization=organization, encryption_key_id="gone")
    with pytest.raises(UnknownKeyError, match="'gone' is not in the key ring"):
        credential.encrypt_data(SECRET)


@pytest.mark.django_db
def test_rotate_moves_to_current_key(two_keys, organization):
    from django_etl.connectors.models import Credential

    credential = Credential(name="legacy", organization=organization, encryption_key_id="old")
    credential.encrypt_data(SECRET)
    credential.rotate()
    assert credential.encryption_key_id == "new"
    assert credential.decrypt_data() == SECRET


@pytest.mark.django_db
def test_str_and_repr_show_no_secret(credential):
    for text in (str(credential), repr(credential)):
        assert "s3cr3t" not in text and credential.encrypted_data not in text


def test_keyring_file_format(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"current": "a", "keys": {"a": KEY_A, "b": KEY_B}}))
    ring = build_keyring("", str(path), "")
    assert ring.current_id == "a" and set(ring.keys) == {"a", "b"}


def test_keyring_rejects_bad_key():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="'k1' is not a valid Fernet key"):
        build_keyring("k1:not-a-key", "", "")


def test_keyring_last_listed_key_is_current_by_default():
    assert build_keyring(f"a:{KEY_A},b:{KEY_B}", "", "").current_id == "b"
    with pytest.raises(UnknownKeyError):
        build_keyring(f"a:{KEY_A}", "", "").key("zz")
