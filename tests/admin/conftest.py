"""Two organizations for the admin's tenancy tests: Acme (one member per role) and B, whose every name is a canary.

Organization B's objects carry the word ``CANARY`` in every name, message and log, and a shared account
belongs to both organizations: a page shown to an Acme member that mentions the canary (or one of B's ids) leaked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

CANARY = "canary"
ROLES = ("viewer", "editor", "admin", "owner")


@dataclass
class Tenant:
    organization: object
    members: dict = field(default_factory=dict)  # name (the role, or "shared") -> user
    objects: list = field(default_factory=list)  # every object of the organization, memberships and users too


@dataclass
class Tenants:
    a: Tenant
    b: Tenant
    shared: object  # viewer in Acme, owner in B

    def ids_of_b(self) -> set[str]:
        """The ids only organization B's pages may show (the shared account is in both)."""
        return {str(obj.pk) for obj in self.b.objects if obj not in self.a.objects}


def build_tenant(prefix: str, slug: str, members: dict, root, tmp_path) -> Tenant:
    """An organization with a member per role, a credential, two connectors, a two-step pipeline and a run."""
    from django_etl.connectors.models import Connector, Credential, OrganizationPolicy
    from django_etl.core.models import Organization, OrganizationMembership, User
    from django_etl.lineage.models import DataLineage
    from django_etl.monitoring.models import Alert, AlertDelivery, AlertRule
    from django_etl.pipelines.models import Pipeline, PipelineStep
    from django_etl.runs.models import PipelineRun, TaskRun

    organization = Organization.objects.create(name=f"{prefix} organization", slug=slug)
    tenant = Tenant(organization)
    tenant.objects.append(organization)
    for name, (role, user) in members.items():
        if isinstance(user, str):
            user = User.objects.create_user(user, f"{user}@{slug}.example", "pw-member-123")
        tenant.members[name] = user
        tenant.objects.append(user)
        tenant.objects.append(
            OrganizationMembership.objects.create(user=user, organization=organization, role=role)
        )
    folder = tmp_path / slug
    folder.mkdir()
    (folder / "orders.csv").write_text(f"id,name\n1,{prefix} row\n")
    credential = Credential.objects.create_encrypted(
        name=f"{prefix} credential", organization=organization, data={"token": f"{prefix}-secret-token"}
    )
    landing = Connector.objects.create(
        name=f"{prefix} landing",
        connector_type="file",
        organization=organization,
        created_by=root,
        config={"root": str(folder), "format": "csv"},
    )
    api = Connector.objects.create(
        name=f"{prefix} api",
        connector_type="api",
        organization=organization,
        created_by=root,
        config={"base_url": "http://127.0.0.1:9/", "auth": "bearer", "max_retries": 0, "timeout_seconds": 1},
        credential=credential,
    )
    pipeline = Pipeline.objects.create(
        name=f"{prefix} pipeline",
        organization=organization,
        created_by=root,
        status="draft",
        config={"schedule": "@daily"},
        metadata={"tags": [f"{prefix} tag"]},
    )
    extract = PipelineStep.objects.create(
        pipeline=pipeline,
        name=f"{prefix} extract",
        step_type="extract",
        order_index=1,
        config={"connector": landing.name, "path": "orders.csv"},
    )
    load = PipelineStep.objects.create(
        pipeline=pipeline,
        name=f"{prefix} load",
        step_type="load",
        order_index=2,
        config={"connector": landing.name, "path": "out.csv"},
    )
    run = PipelineRun.objects.create(
        pipeline=pipeline, trigger_type="manual", status="failed", airflow_run_id=f"{prefix} run"
    )
    extract_run = TaskRun.objects.create(
        pipeline_run=run, pipeline_step=extract, status="success", logs=f"{prefix} log line"
    )
    load_run = TaskRun.objects.create(
        pipeline_run=run, pipeline_step=load, status="failed", logs=f"{prefix} log line"
    )
    alert = Alert.objects.create(
        pipeline_run=run,
        task_run=load_run,
        level="error",
        alert_type="task_failed",
        message=f"{prefix} alert",
        metadata={"note": f"{prefix} metadata"},
    )
    rule = AlertRule.objects.create(
        organization=organization,
        name=f"{prefix} rule",
        email_recipients=f"ops@{slug}.example",
        webhook_connector=api,
        webhook_path=f"/{slug}-hook",
    )
    rule.pipelines.set([pipeline])
    delivery = AlertDelivery.objects.create(
        alert=alert,
        rule=rule,
        organization=organization,
        channel="email",
        level="error",
        target=f"ops@{slug}.example",
        last_error=f"{prefix} delivery error",
    )
    lineage = DataLineage.objects.create(
        source_task=extract_run, target_task=load_run, relationship_type="direct", metadata={"rows": 1}
    )
    # Superusers only: no member of either organization sees or changes it (docs/security.md).
    policy = OrganizationPolicy.objects.create(organization=organization, note=f"{prefix} policy note")
    tenant.objects += [
        policy,
        credential,
        landing,
        api,
        pipeline,
        extract,
        load,
        run,
        extract_run,
        load_run,
        alert,
        rule,
        delivery,
        lineage,
    ]
    return tenant


@pytest.fixture
def root(db):
    from django_etl.core.models import User

    return User.objects.create_superuser("root", "root@example.com", "pw-root-123")


@pytest.fixture
def tenants(root, settings, tmp_path) -> Tenants:
    from django_etl.core.models import User

    settings.ETL_FILE_ROOTS = [str(tmp_path)]
    settings.ETL_DAGS_FOLDER = tmp_path / "dags"
    shared = User.objects.create_user("shared", "shared@example.com", "pw-shared-123", first_name="Sam")
    acme_members = {role: (role, f"acme-{role}") for role in ROLES} | {"shared": ("viewer", shared)}
    a = build_tenant("Acme", "acme", acme_members, root, tmp_path)
    # The shared account owns B: what it is there must not show to Acme's members.
    b_members = {
        "owner": ("owner", "canary-b-owner"),
        "viewer": ("viewer", "canary-b-viewer"),
        "shared": ("owner", shared),
    }
    b = build_tenant("CANARY-B", "canary-b", b_members, root, tmp_path)
    return Tenants(a, b, shared)
