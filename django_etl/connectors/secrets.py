"""The one masking rule for credential secrets, used by every log, record, error and message path.

The rule, in full:
- every string inside a credential's decrypted secret is a secret value, except those under a login-name key
  (``IDENTITY_KEYS``): as Airflow masks a Connection's password but not its login, masking a user name like
  "postgres" would blank every log line that mentions it;
- values shorter than ``MIN_SECRET_LENGTH`` characters are not registered (Airflow's own
  ``[logging] min_length_masked_secret`` default is the same): masking a one-letter secret would rewrite
  ordinary text ("e***tract"); the credential form warns about such values instead;
- masking replaces whole occurrences, longest value first, with ``MASK``; nothing else in the text changes.

No Django import: Airflow's side (task processes before Django is set up, the recorder) calls it too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MASK = "***"
MIN_SECRET_LENGTH = 5
IDENTITY_KEYS = frozenset({"user", "username", "login", "access_key_id"})


def secret_values(secret: Any) -> list[str]:
    """The values of a decrypted secret that must never be shown (see the module's rule)."""
    found: list[str] = []
    _collect(secret, found)
    return sorted(set(found), key=len, reverse=True)


def _collect(value: Any, found: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if str(key).lower() not in IDENTITY_KEYS:
                _collect(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, found)
    elif value is not None and not isinstance(value, bool):
        text = str(value)
        if len(text) >= MIN_SECRET_LENGTH:
            found.append(text)


def too_short_to_mask(secret: Any) -> list[str]:
    """Keys of a secret whose values are too short to be masked (the credential form warns about them)."""
    if not isinstance(secret, dict):
        return []
    return sorted(
        str(key)
        for key, item in secret.items()
        if str(key).lower() not in IDENTITY_KEYS
        and isinstance(item, str | int | float)
        and not isinstance(item, bool)
        and 0 < len(str(item)) < MIN_SECRET_LENGTH
    )


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``MASK`` (values from :func:`secret_values`)."""
    for value in sorted({s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}, key=len)[
        ::-1
    ]:
        text = text.replace(value, MASK)
    return text


def mask_data(value: Any, secrets: Iterable[str]) -> Any:
    """A JSON-like value with every string masked (dict keys too): for records stored in Django."""
    secrets = list(secrets)
    if not secrets:
        return value
    if isinstance(value, str):
        return mask(value, secrets)
    if isinstance(value, dict):
        return {mask_data(k, secrets): mask_data(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_data(v, secrets) for v in value]
    return value


# Keys whose values are masked in data a run was given (its conf), whatever the credential holds.
SENSITIVE_KEY_WORDS = ("password", "secret", "token", "api_key", "apikey", "credential")


def mask_sensitive_keys(value: Any) -> Any:
    """JSON-safe ``value`` with values under secret-looking keys replaced by ``MASK`` (a run's conf)."""
    if isinstance(value, dict):
        return {
            str(k): MASK if any(w in str(k).lower() for w in SENSITIVE_KEY_WORDS) else mask_sensitive_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_sensitive_keys(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
