"""Validation of a connector: its config against its adapter's model, its credential, its file root.

Used by ``Connector.clean()`` (so the admin forms) and by whoever checks connectors before use; the config
models are the data plane's own (``django_etl.dataplane``), so what validates here is what the adapter reads.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from django_etl import dataplane
from django_etl.dataplane.files import allowed_roots, is_allowed_root
from django_etl.validation_report import Report, check_schema

if TYPE_CHECKING:
    from django_etl.connectors.models import Connector


def validate_connector(connector: Connector) -> Report:
    report = Report()
    where = f"connector {connector.name!r}"
    if connector.connector_type not in dataplane.ADAPTERS:
        report.add(
            where, "connector_type", f"unknown type {connector.connector_type!r}", field="connector_type"
        )
        return report
    parse = partial(dataplane.parse_config, connector.connector_type)
    parsed = check_schema(report, parse, connector.config, where, "config", "config")
    credential = connector.credential if connector.credential_id else None
    if (
        credential is not None
        and connector.organization_id
        and (credential.organization_id != connector.organization_id)
    ):
        report.add(where, "credential", "belongs to another organization", field="credential")
    if parsed is not None:
        needed = parsed.credential_keys()
        if needed and credential is None and connector.connector_type == "api":
            report.add(where, "credential", f"auth {parsed.auth!r} needs a credential", field="credential")
        if connector.connector_type == "file" and not is_allowed_root(parsed.root):
            report.add(
                where,
                "config.root",
                f"{parsed.root!r} is outside the allowed file roots "
                f"({', '.join(map(str, allowed_roots()))}); add it to ETL_FILE_ROOTS",
                field="config",
            )
    return report
