"""Validation of a connector (its config, credential and targets) and of an organization's policy.

Used by ``Connector.clean()`` and ``OrganizationPolicy.clean()`` (so the admin forms) and by whoever checks
connectors before use. The config models and the network and path rules are the data plane's own
(``django_etl.dataplane``): what validates here is what the adapter reads and checks again when it connects.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from django_etl import dataplane
from django_etl.dataplane.files import path_refusal
from django_etl.dataplane.netpolicy import Allowance, parse_allow_entry
from django_etl.validation_report import Report, check_schema

if TYPE_CHECKING:
    from django_etl.connectors.models import Connector, OrganizationPolicy


def validate_connector(connector: Connector) -> Report:
    from django_etl.connectors.models import OrganizationPolicy

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
        # The network and path policy, as the adapter applies it when it connects (docs/security.md).
        allowance = OrganizationPolicy.objects.allowance_for(connector.organization_id)
        adapter = dataplane.adapter_class(connector.connector_type, connector.config)
        for key, message in adapter.refusals(parsed, allowance):
            report.add(where, key, message, field="config")
    return report


def validate_policy(policy: OrganizationPolicy) -> dict[str, list[str]]:
    """Errors by field of an organization's policy: entries that parse, roots that are the platform's own."""
    errors: dict[str, list[str]] = {}
    networks = policy.allowed_networks
    if not isinstance(networks, list) or not all(isinstance(entry, str) for entry in networks):
        errors["allowed_networks"] = ["a JSON list of networks or address[:port] strings"]
    else:
        for entry in networks:
            try:
                parse_allow_entry(entry)
            except ValueError as exc:
                errors.setdefault("allowed_networks", []).append(str(exc))
    roots = policy.file_roots
    if not isinstance(roots, list) or not all(isinstance(root, str) for root in roots):
        errors["file_roots"] = ["a JSON list of absolute folders"]
        return errors
    others = type(policy).objects.exclude(organization_id=policy.organization_id)
    foreign = [Path(r).resolve() for row in others.values_list("file_roots", flat=True) for r in row or ()]
    for root in roots:
        problem = None
        if not Path(root).is_absolute():
            problem = f"{root!r} is not an absolute folder"
        else:
            problem = path_refusal(root, Allowance(file_roots=(root,)))
            resolved = Path(root).resolve()
            if problem is None and any(
                resolved == f or f in resolved.parents or resolved in f.parents for f in foreign
            ):
                problem = f"{root!r} overlaps a folder assigned to another organization"
        if problem:
            errors.setdefault("file_roots", []).append(problem)
    return errors
