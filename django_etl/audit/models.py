"""Historical models of the audited models, registered here so that every history table belongs to this app.

One row per saved or deleted version (django-simple-history): every field of the object, who (``history_user``,
from the admin's request), when (``history_date``) and how (``history_type`` +, ~, -). A credential's ciphertext
is never copied: its history records ``secret_changed`` instead, so history keeps nothing a retired key
encrypted. Run records (``runs``: PipelineRun and the partitioned ``task_runs``) get no history: they are
written by Airflow, not changed by people, and would double the largest table.
"""

from __future__ import annotations

from django.db import models
from django.db.models.signals import post_init
from simple_history import register
from simple_history.signals import pre_create_historical_record

from django_etl.connectors.models import Connector, Credential
from django_etl.core.models import Organization, OrganizationMembership
from django_etl.pipelines.models import Pipeline, PipelineStep

SECRET_FIELD = "encrypted_data"
AUDIT_APP = "django_etl.audit"  # simple-history puts the historical models in AUDIT_APP + ".models"


class SecretFlag(models.Model):
    """The extra column of a credential's history: the secret changed in this version (its value never kept)."""

    secret_changed = models.BooleanField(default=False)

    class Meta:
        abstract = True


register(Organization, app=AUDIT_APP, table_name="audit_organization_history")
register(OrganizationMembership, app=AUDIT_APP, table_name="audit_membership_history")
register(Connector, app=AUDIT_APP, table_name="audit_connector_history")
register(
    Credential,
    app=AUDIT_APP,
    table_name="audit_credential_history",
    excluded_fields=[SECRET_FIELD],
    bases=[SecretFlag],
)
register(Pipeline, app=AUDIT_APP, table_name="audit_pipeline_history")
register(PipelineStep, app=AUDIT_APP, table_name="audit_pipelinestep_history")

AUDITED_MODELS = (Organization, OrganizationMembership, Connector, Credential, Pipeline, PipelineStep)


def _remember_token(sender, instance, **kwargs) -> None:
    instance._audit_token = getattr(instance, SECRET_FIELD, "")


def _flag_secret_change(sender, instance, history_instance, **kwargs) -> None:
    if isinstance(instance, Credential):
        history_instance.secret_changed = instance.encrypted_data != getattr(instance, "_audit_token", None)
        instance._audit_token = instance.encrypted_data  # the next save compares with this version


post_init.connect(_remember_token, sender=Credential, dispatch_uid="audit.remember_token")
pre_create_historical_record.connect(_flag_secret_change, dispatch_uid="audit.flag_secret_change")
