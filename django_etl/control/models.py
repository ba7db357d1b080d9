"""Webhook endpoints (one per pipeline, secret encrypted with the key ring) and the deliveries they accepted."""

from __future__ import annotations

import secrets as random
import uuid

from django.db import models
from django.utils import timezone

from django_etl.pipelines.models import Pipeline


class WebhookEndpoint(models.Model):
    """``POST /hooks/pipelines/<id>/trigger`` starts a run of ``pipeline`` when signed with this secret."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pipeline = models.OneToOneField(Pipeline, on_delete=models.CASCADE, related_name="webhook")
    encrypted_secret = models.TextField(help_text="Fernet token of the signing secret; never shown again.")
    encryption_key_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return f"webhook of {self.pipeline}"

    def secret(self) -> bytes:
        """The signing secret, decrypted with the key ring (the key that encrypted it, current or not)."""
        from django_etl.connectors.keyring import get_keyring

        return get_keyring().fernet(self.encryption_key_id).decrypt(self.encrypted_secret.encode())

    @classmethod
    def rotate(cls, pipeline: Pipeline) -> tuple[WebhookEndpoint, str]:
        """Create the pipeline's endpoint or give it a new secret; returns it and the secret (shown once)."""
        from django_etl.connectors.keyring import get_keyring

        ring = get_keyring()
        secret = random.token_urlsafe(32)
        token = ring.fernet(ring.current_id).encrypt(secret.encode()).decode()
        endpoint, _ = cls.objects.update_or_create(
            pipeline=pipeline,
            defaults={
                "encrypted_secret": token,
                "encryption_key_id": ring.current_id,
                "rotated_at": timezone.now(),
            },
        )
        return endpoint, secret


class WebhookDelivery(models.Model):
    """One accepted signed request: its signature is never accepted again (replay), and they are counted (rate)."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    signature = models.CharField(max_length=64)
    received_at = models.DateTimeField(default=timezone.now)
    pipeline_run_id = models.UUIDField(null=True, blank=True)

    class Meta:
        verbose_name = "webhook delivery"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "signature"], name="unique_webhook_signature")
        ]
        indexes = [models.Index(fields=["endpoint", "received_at"])]

    def __str__(self) -> str:
        return f"delivery to {self.endpoint_id} at {self.received_at:%Y-%m-%d %H:%M:%S}"
