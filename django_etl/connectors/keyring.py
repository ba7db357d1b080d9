"""The Fernet key ring that encrypts credentials: configured outside the database, selected by key id."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from django_etl.errors import ConfigurationError


class UnknownKeyError(ConfigurationError, LookupError):
    """A credential names a key id that the configured key ring does not hold."""


@dataclass(frozen=True)
class KeyRing:
    keys: dict[str, bytes]
    current_id: str

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            known = ", ".join(sorted(self.keys)) or "none"
            raise UnknownKeyError(
                f"Credential key id {key_id!r} is not in the key ring (known ids: {known}). "
                "Add it to ETL_CREDENTIAL_KEYS or ETL_CREDENTIAL_KEYS_FILE."
            ) from None

    def fernet(self, key_id: str) -> Fernet:
        return Fernet(self.key(key_id))


def parse_pairs(text: str) -> dict[str, bytes]:
    """Parse "id:key,id2:key2" (the ETL_CREDENTIAL_KEYS format)."""
    keys: dict[str, bytes] = {}
    for position, item in enumerate(filter(None, (part.strip() for part in text.split(","))), start=1):
        key_id, sep, key = item.partition(":")
        if not sep or not key_id or not key:
            raise ImproperlyConfigured(
                f"ETL_CREDENTIAL_KEYS entry {position} is not of the form id:fernet-key."
            )
        keys[key_id.strip()] = key.strip().encode()
    return keys


def load_file(path: str) -> tuple[dict[str, bytes], str]:
    """Read {"current": "id", "keys": {"id": "fernet-key"}} from a JSON file."""
    try:
        document = json.loads(Path(path).read_text())
        keys = {str(k): str(v).encode() for k, v in document["keys"].items()}
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise ImproperlyConfigured(
            f"ETL_CREDENTIAL_KEYS_FILE {path!r} must be JSON like "
            '{"current": "k1", "keys": {"k1": "<fernet key>"}}: ' + str(exc)
        ) from exc
    return keys, str(document.get("current", ""))


def build_keyring(pairs: str, path: str, current: str) -> KeyRing:
    keys: dict[str, bytes] = {}
    file_current = ""
    if path:
        keys, file_current = load_file(path)
    if pairs:
        keys.update(parse_pairs(pairs))
    if not keys:
        raise ImproperlyConfigured("The credential key ring is empty: set ETL_CREDENTIAL_KEYS.")
    for key_id, key in keys.items():
        try:
            Fernet(key)
        except ValueError:
            raise ImproperlyConfigured(
                f"Credential key {key_id!r} is not a valid Fernet key (32 url-safe base64 bytes). "
                "Generate one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from None
    # Without an explicit choice the last key listed is the current one, so appending a key rotates.
    current_id = current or file_current or list(keys)[-1]
    if current_id not in keys:
        raise ImproperlyConfigured(f"ETL_CREDENTIAL_CURRENT_KEY {current_id!r} is not in the key ring.")
    return KeyRing(keys=keys, current_id=current_id)


@lru_cache(maxsize=1)
def get_keyring() -> KeyRing:
    """The key ring from settings, parsed once per process."""
    return build_keyring(
        settings.ETL_CREDENTIAL_KEYS,
        settings.ETL_CREDENTIAL_KEYS_FILE,
        settings.ETL_CREDENTIAL_CURRENT_KEY,
    )
