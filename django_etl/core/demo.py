"""The demo organization: users, connectors, credentials and two pipelines that use every step type.

Idempotent: running it again refreshes the same objects (matched by slug, username and name).
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction

DEMO_ADMIN = ("admin", "admin")  # username, password — printed by `make demo`; development only
DEMO_ANALYST = ("analyst", "analyst")
DEMO_MINIO = "127.0.0.1:9000"  # the one loopback service the demo organization may reach (its policy)


@dataclass
class DemoSummary:
    organization: str
    pipelines: list[str] = field(default_factory=list)
    connectors: list[str] = field(default_factory=list)
    # Passwords set by this run (username -> password), to print once; empty when nothing changed.
    passwords: dict[str, str] = field(default_factory=dict)


def demo_paths() -> dict[str, Path]:
    demo_dir = Path(settings.VAR_DIR) / "demo"
    return {
        "data": Path(settings.BASE_DIR) / "demo_data",
        "crm": demo_dir / "crm.sqlite3",
        "warehouse": demo_dir / "warehouse.sqlite3",
        "exports": Path(settings.VAR_DIR) / "exports",
    }


def build_crm_database(path: Path, script: Path) -> None:
    """The demo's SQLite source, rebuilt from demo_data/crm.sql (databases are not committed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.executescript(script.read_text())


def _user(username: str, password: str, *, superuser: bool, passwords: dict[str, str]):
    """The demo user; with DEBUG off never with its well-known password: a generated one, reported once."""
    from django_etl.core.models import User

    user, created = User.objects.get_or_create(
        username=username, defaults={"email": f"{username}@demo.example"}
    )
    if settings.DEBUG:
        if created or not user.check_password(password):
            user.set_password(password)
            passwords[username] = password
    elif created or not user.has_usable_password() or user.check_password(password):
        generated = secrets.token_urlsafe(18)
        user.set_password(generated)
        passwords[username] = generated
    # A membership is what lets a member sign in (docs/security.md); staff marks operators only.
    user.is_staff = user.is_superuser = superuser
    user.save()
    return user


def _credential(org, name: str, data: dict):
    from django_etl.connectors.models import Credential

    credential = Credential.objects.filter(organization=org, name=name).first() or Credential(
        organization=org, name=name
    )
    credential.encrypt_data(data)
    credential.save()
    return credential


def _connector(org, user, name: str, connector_type: str, config: dict, credential=None):
    from django_etl.connectors.models import Connector

    connector, _ = Connector.objects.update_or_create(
        organization=org,
        name=name,
        defaults={
            "connector_type": connector_type,
            "config": config,
            "credential": credential,
            "created_by": user,
            "is_active": True,
        },
    )
    connector.full_clean()
    return connector


def _optional_connector(org, user, name: str, connector_type: str, config: dict, credential=None) -> None:
    """A connector for show that the platform's policy may refuse here (say, MinIO is the staging store)."""
    from django.core.exceptions import ValidationError

    try:
        with transaction.atomic():
            _connector(org, user, name, connector_type, config, credential)
    except ValidationError:
        return


def _policy(org, paths: dict[str, Path]) -> None:
    """The demo organization's openings, as a superuser would set them: its own folders and a local MinIO.

    Nothing else on loopback: the network policy refuses it by default (docs/security.md).
    """
    from django_etl.connectors.models import OrganizationPolicy

    policy = OrganizationPolicy.objects.filter(organization=org).first() or OrganizationPolicy(
        organization=org
    )
    policy.file_roots = [str(paths["data"]), str(paths["crm"].parent), str(paths["exports"])]
    policy.allowed_networks = [DEMO_MINIO]
    policy.note = "The demo: its data folders, and a MinIO on this machine for the 'archive' connector."
    policy.full_clean()
    policy.save()


def _pipeline(org, user, name: str, description: str, config: dict, tags: list[str], steps: list[dict]):
    from django_etl.pipelines import versioning

    with versioning.batch():
        return _write_pipeline(org, user, name, description, config, tags, steps)


def _write_pipeline(org, user, name, description, config, tags, steps):
    from django_etl.pipelines.models import Pipeline, PipelineStep

    pipeline, _ = Pipeline.objects.update_or_create(
        organization=org,
        name=name,
        defaults={
            "description": description,
            "created_by": user,
            "config": config,
            "status": "active",
            "metadata": {"tags": tags, "owner_team": "data"},
        },
    )
    wanted = {spec["name"] for spec in steps}
    for stale in pipeline.steps.exclude(name__in=wanted):
        if stale.taskrun_set.exists():
            continue  # steps that ran are history; the demo leaves them be
        stale.delete()
    wanted_order = {spec["name"]: index * 10 for index, spec in enumerate(steps, start=1)}
    current_order = dict(pipeline.steps.values_list("name", "order_index"))
    if any(wanted_order.get(name) != order for name, order in current_order.items()):
        # Move existing steps out of the way so order_index stays unique while they are renumbered.
        for offset, step in enumerate(pipeline.steps.all()):
            PipelineStep.objects.filter(pk=step.pk).update(order_index=10_000 + offset)
    for index, spec in enumerate(steps, start=1):
        step = pipeline.steps.filter(name=spec["name"]).first() or PipelineStep(
            pipeline=pipeline, name=spec["name"]
        )
        step.order_index = index * 10
        step.step_type = spec["type"]
        step.config = spec["config"]
        step.is_parallel = spec.get("parallel", False)
        step.dependencies = []
        step.save()
    from django_etl.pipelines.validation import validate_pipeline

    report = validate_pipeline(pipeline)
    if report:
        raise ValueError(f"the demo pipeline is invalid:\n{report}")
    return pipeline


@transaction.atomic
def load_demo() -> DemoSummary:
    from django_etl.core.models import MembershipRole, Organization, OrganizationMembership

    paths = demo_paths()
    build_crm_database(paths["crm"], paths["data"] / "crm.sql")
    paths["exports"].mkdir(parents=True, exist_ok=True)

    passwords: dict[str, str] = {}
    admin = _user(*DEMO_ADMIN, superuser=True, passwords=passwords)
    analyst = _user(*DEMO_ANALYST, superuser=False, passwords=passwords)
    org, _ = Organization.objects.update_or_create(
        slug="demo", defaults={"name": "Demo Company", "settings": {"timezone": "UTC"}}
    )
    for user, role in ((admin, MembershipRole.OWNER), (analyst, MembershipRole.VIEWER)):
        OrganizationMembership.objects.update_or_create(user=user, organization=org, defaults={"role": role})
    _policy(org, paths)

    files = _connector(org, admin, "demo-files", "file", {"root": str(paths["data"]), "format": "csv"})
    crm = _connector(org, admin, "crm", "database", {"engine": "sqlite", "path": str(paths["crm"])})
    warehouse = _connector(
        org, admin, "warehouse", "database", {"engine": "sqlite", "path": str(paths["warehouse"])}
    )
    exports = _connector(org, admin, "exports", "file", {"root": str(paths["exports"]), "format": "csv"})
    # Configured for show and for the admin's "Test connection": not used by the demo pipelines. The
    # warehouse host is a name of your network (the demo opens no loopback database: 127.0.0.1:5432 may be
    # the platform's own server).
    pg_login = _credential(org, "analytics-postgres login", {"user": "etl", "password": "change-me"})
    _connector(
        org,
        admin,
        "analytics-postgres",
        "database",
        {"engine": "postgresql", "host": "analytics-db.internal", "port": 5432, "database": "analytics"},
        pg_login,
    )
    s3_keys = _credential(
        org, "archive bucket keys", {"access_key_id": "demo", "secret_access_key": "demo-secret-key"}
    )
    _optional_connector(
        org,
        admin,
        "archive",
        "cloud",
        {"bucket": "etl-archive", "endpoint_url": f"http://{DEMO_MINIO}", "prefix": "demo/"},
        s3_keys,
    )
    api_token = _credential(org, "status page token", {"token": "demo-token"})
    _connector(
        org,
        admin,
        "status-page",
        "api",
        {"base_url": "https://status.example.com/api", "auth": "bearer"},
        api_token,
    )

    daily = _pipeline(
        org,
        admin,
        "Daily orders",
        "Orders from the shop's CSV export joined with CRM customers, checked, and upserted into the warehouse.",
        {"schedule": "@daily", "start_date": "2026-11-01", "retries": 1, "retry_delay_seconds": 10},
        ["sales", "demo"],
        [
            {
                "name": "Extract orders",
                "type": "extract",
                "config": {
                    "connector": files.name,
                    "path": "orders.csv",
                    "format": "csv",
                    "output": "orders_raw",
                },
            },
            {
                "name": "Extract customers",
                "type": "extract",
                "parallel": True,
                "config": {"connector": crm.name, "table": "customers", "output": "customers"},
            },
            {
                "name": "Enrich orders",
                "type": "transform",
                "config": {
                    "inputs": ["orders_raw", "customers"],
                    "output": "orders_enriched",
                    "sql": "SELECT o.order_id, o.customer_id, c.name AS customer_name, c.country, "
                    "o.ordered_at, o.amount, o.status FROM orders_raw o "
                    "JOIN customers c USING (customer_id)",
                },
            },
            {
                "name": "Check orders",
                "type": "validate",
                "config": {
                    "key_columns": ["order_id"],
                    "checks": [
                        {"check": "row_count", "min": 1},
                        {"check": "not_null", "columns": ["order_id", "customer_id", "amount"]},
                        {"check": "unique", "columns": ["order_id"]},
                        {"check": "range", "column": "amount", "min": 0},
                        {
                            "check": "accepted_values",
                            "column": "status",
                            "values": ["paid", "refunded", "pending"],
                            "severity": "warning",
                        },
                    ],
                },
            },
            {
                "name": "Load warehouse",
                "type": "load",
                "config": {
                    "connector": warehouse.name,
                    "table": "fact_orders",
                    "mode": "upsert",
                    "key": ["order_id"],
                },
            },
            {
                "name": "Notify team",
                "type": "notify",
                "config": {"email": ["data-team@demo.example"], "subject": "Daily orders loaded"},
            },
        ],
    )
    revenue = _pipeline(
        org,
        admin,
        "Revenue by customer",
        "Paid revenue per customer, exported as a CSV file for finance.",
        {"schedule": "@weekly", "start_date": "2026-11-01"},
        ["finance", "demo"],
        [
            {
                "name": "Extract orders",
                "type": "extract",
                "config": {
                    "connector": files.name,
                    "path": "orders.csv",
                    "format": "csv",
                    "output": "orders",
                },
            },
            {
                "name": "Paid revenue",
                "type": "transform",
                "config": {
                    "output": "revenue",
                    "operations": [
                        {"op": "filter", "condition": "status = 'paid'"},
                        {"op": "cast", "columns": {"amount": "DECIMAL(12,2)"}},
                        {
                            "op": "aggregate",
                            "group_by": ["customer_id"],
                            "aggregations": {"orders": "count(*)", "revenue": "sum(amount)"},
                        },
                    ],
                },
            },
            {
                "name": "Check revenue",
                "type": "validate",
                "config": {
                    "checks": [
                        {"check": "row_count", "min": 1},
                        {"check": "range", "column": "revenue", "min": 0},
                    ]
                },
            },
            {
                "name": "Export revenue",
                "type": "load",
                "config": {
                    "connector": exports.name,
                    "path": "revenue_by_customer.csv",
                    "format": "csv",
                    "mode": "replace",
                },
            },
            {
                "name": "Notify finance",
                "type": "notify",
                "config": {"email": ["finance@demo.example"], "when": "always"},
            },
        ],
    )
    return DemoSummary(
        organization=org.name,
        pipelines=[daily.name, revenue.name],
        connectors=sorted(c.name for c in org.connector_set.all()),
        passwords=passwords,
    )
