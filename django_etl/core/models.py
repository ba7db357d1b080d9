"""User, Organization and the OrganizationMembership that links them (seed section 1)."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models

from django_etl.core.choices import MembershipRole


class User(AbstractUser):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organizations = models.ManyToManyField(
        "Organization",
        through="OrganizationMembership",
        help_text="Organizations whose connectors, pipelines and runs this user may see.",
    )
    preferences = models.JSONField(default=dict, blank=True)
    last_login_ip = models.GenericIPAddressField(null=True)

    class Meta:
        db_table = "auth_user"
        verbose_name = "user"
        verbose_name_plural = "users"
        indexes = [
            models.Index(fields=["email"]),
            models.Index(fields=["username"]),
        ]


class Organization(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    slug = models.SlugField(unique=True, help_text="Short, unique, URL-safe name; used in DAG tags.")
    settings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "organizations"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # settings["monitoring"]: the organization's alert thresholds, the same keys as a pipeline's (docs/alerts.md).
        from django.core.exceptions import ValidationError

        from django_etl.alertpolicy import validate_organization_settings
        from django_etl.validation_report import Report

        report = Report()
        validate_organization_settings(self.settings, report, f"organization {self.name!r}")
        if report:
            raise ValidationError(report.as_django_dict())


class OrganizationMembership(models.Model):
    """The through model the seed names for User.organizations, with the member's role."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=MembershipRole.choices, default=MembershipRole.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "organization_memberships"
        ordering = ["organization__name", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="unique_membership_per_org"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"
