"""Connector and Credential (seed section 2): where data lives and the encrypted secrets to reach it."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from django_etl.connectors.choices import ConnectorType
from django_etl.connectors.keyring import get_keyring
from django_etl.core.models import Organization

if TYPE_CHECKING:
    from django_etl.dataplane.netpolicy import Allowance
from django_etl.errors import ConfigurationError


class CredentialDecryptionError(ConfigurationError, ValueError):
    """The stored token cannot be decrypted with the key its encryption_key_id names."""


class CredentialManager(models.Manager["Credential"]):
    def create_encrypted(
        self, *, name: str, organization: Organization, data: dict, **extra: Any
    ) -> Credential:
        """Create a credential whose secret ``data`` is encrypted with the key ring's current key."""
        credential = self.model(name=name, organization=organization, **extra)
        credential.encrypt_data(data)
        credential.save(force_insert=True)
        return credential


class Credential(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    encrypted_data = models.TextField(help_text="Fernet token of the secret JSON; never shown.")
    encryption_key_id = models.CharField(
        max_length=255, help_text="Id of the key-ring key that encrypted this secret."
    )
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    objects = CredentialManager()

    class Meta:
        db_table = "credentials"

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        # Never the token, never the plaintext.
        return f"<Credential {self.name!r} key={self.encryption_key_id!r}>"

    def get_encryption_key(self) -> bytes:
        """The key-ring key this credential uses: its own key id, or the ring's current key for a new one."""
        ring = get_keyring()
        if not self.encryption_key_id:
            self.encryption_key_id = ring.current_id
        return ring.key(self.encryption_key_id)

    def encrypt_data(self, data: dict) -> None:
        """Encrypt ``data`` (a JSON object) into ``encrypted_data`` with the key named by encryption_key_id."""
        if not isinstance(data, dict):
            raise TypeError("Credential data must be a dict of secret values.")
        fernet = Fernet(self.get_encryption_key())
        self.encrypted_data = fernet.encrypt(json.dumps(data, sort_keys=True).encode()).decode()

    def decrypt_data(self) -> dict:
        """Decrypt ``encrypted_data``; raises CredentialDecryptionError naming the credential, not the secret."""
        ring = get_keyring()
        try:
            plaintext = ring.fernet(self.encryption_key_id).decrypt(self.encrypted_data.encode())
        except InvalidToken:
            raise CredentialDecryptionError(
                f"Credential {self.name!r} cannot be decrypted with key {self.encryption_key_id!r}: "
                "the token was made with another key or is damaged."
            ) from None
        return json.loads(plaintext.decode())

    def rotate(self) -> None:
        """Re-encrypt with the ring's current key (does not save)."""
        data = self.decrypt_data()
        self.encryption_key_id = get_keyring().current_id
        self.encrypt_data(data)

    @property
    def is_expired(self) -> bool:
        from django.utils import timezone

        return self.expires_at is not None and self.expires_at <= timezone.now()


class Connector(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(
        max_length=255, help_text="Unique in the organization; steps refer to it by name."
    )
    connector_type = models.CharField(max_length=50, choices=ConnectorType.choices)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    config = models.JSONField(help_text="Type-specific settings; see docs/step-config.md. No secrets here.")
    credential = models.ForeignKey(
        Credential,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text="Secret used to connect; empty for local files and public APIs.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "connectors"
        indexes = [
            models.Index(fields=["organization", "connector_type"]),
            models.Index(fields=["is_active"]),
        ]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="unique_connector_name_per_org"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_connector_type_display()})"

    def clean(self) -> None:
        # Imported here: the data plane's models (and pyarrow) load only when a connector is validated.
        from django_etl.connectors.validation import validate_connector

        errors = validate_connector(self)
        if errors:
            raise ValidationError(errors.as_django_dict())

    def runtime_settings(self) -> dict[str, Any]:
        """Hand-over to the engine: config, decrypted secret and the organization's network and file allowance.

        Call only inside the task that needs it.
        """
        secret = self.credential.decrypt_data() if self.credential_id else {}
        allowance = OrganizationPolicy.objects.allowance_for(self.organization_id)
        return {
            "type": self.connector_type,
            "name": self.name,
            "config": dict(self.config),
            "secret": secret,
            "allowance": allowance.as_runtime(),
        }


class OrganizationPolicyManager(models.Manager["OrganizationPolicy"]):
    def allowance_for(self, organization_id: Any) -> Allowance:
        """What the organization's connectors may reach beyond the platform's policy (docs/security.md)."""
        from django_etl.dataplane.netpolicy import Allowance

        rows = list(self.values_list("organization_id", "allowed_networks", "file_roots"))
        own = next((row for row in rows if str(row[0]) == str(organization_id)), None)
        foreign = tuple(
            str(root) for org, _, roots in rows if str(org) != str(organization_id) for root in roots or ()
        )
        return Allowance(
            networks=tuple(map(str, own[1] or ())) if own else (),
            file_roots=tuple(map(str, own[2])) if own and own[2] else None,
            foreign_roots=foreign,
            organization=str(organization_id) if organization_id else None,
        )


class OrganizationPolicy(models.Model):
    """What one organization's connectors may reach beyond the platform's network and file policy.

    Set by superusers only (no role grants any permission on it): an organization's own members never widen
    their own boundary. The platform's own servers stay closed whatever it says.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="connector_policy"
    )
    allowed_networks = models.JSONField(
        default=list,
        blank=True,
        help_text="Networks or address[:port] its connectors may reach beyond public addresses, e.g. "
        '["10.20.0.0/16", "127.0.0.1:9000"]. Names are not accepted.',
    )
    file_roots = models.JSONField(
        default=list,
        blank=True,
        help_text="Absolute folders its file and SQLite connectors may use instead of ETL_FILE_ROOTS; "
        "no other organization may use them. Empty: ETL_FILE_ROOTS.",
    )
    note = models.TextField(blank=True, help_text="Why this organization has these openings.")
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrganizationPolicyManager()

    class Meta:
        db_table = "organization_policies"
        verbose_name = "organization policy"
        verbose_name_plural = "organization policies"

    def __str__(self) -> str:
        return f"policy of {self.organization}"

    def clean(self) -> None:
        from django_etl.connectors.validation import validate_policy

        errors = validate_policy(self)
        if errors:
            raise ValidationError(errors)
