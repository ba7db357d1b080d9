"""Try a connector from the admin: test its connection, preview a few sample rows; never reveal the secret."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django_etl.connectors.expiry import CredentialExpiredError, refuse_expired
from django_etl.connectors.models import Connector, CredentialDecryptionError
from django_etl.connectors.secrets import mask, secret_values
from django_etl.errors import EtlError, first_line


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def _run(connector: Connector, action) -> ProbeResult:
    from django_etl.dataplane import adapter_for

    where = f"{connector.name}: "
    try:
        refuse_expired(connector)  # an expired credential is not tried, here as at run time
        runtime = connector.runtime_settings()
    except (CredentialDecryptionError, CredentialExpiredError) as exc:
        return ProbeResult(False, where + str(exc))
    secrets = secret_values(runtime.get("secret", {}))
    try:
        return action(adapter_for(runtime))
    except EtlError as exc:  # names the connector already
        return ProbeResult(False, mask(str(exc), secrets))
    except Exception as exc:  # any library error: its type and text, with secret values blanked
        return ProbeResult(False, where + mask(f"{type(exc).__name__}: {first_line(exc)}", secrets))


def test_connection(connector: Connector) -> ProbeResult:
    """Connect with the connector's config and credential; the result says what worked or what failed."""
    return _run(connector, lambda adapter: ProbeResult(True, f"{connector.name}: {adapter.check()}"))


test_connection.__test__ = False  # a library function, not a pytest test


def preview(connector: Connector, limit: int = 10) -> ProbeResult:
    """A few rows from the first table (database), file (file) or object (cloud) the connector reaches."""

    def sample(adapter) -> ProbeResult:
        table = adapter.sample(limit)
        rows = [[_cell(v) for v in row.values()] for row in table.slice(0, limit).to_pylist()]
        return ProbeResult(True, f"{connector.name}: {len(rows)} sample row(s)", table.column_names, rows)

    return _run(connector, sample)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text if len(text) <= 200 else text[:197] + "..."
