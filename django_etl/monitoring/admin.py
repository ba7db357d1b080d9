"""Admin for alerts (read-only; members resolve them), the organization's alert rules, and the delivery log."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from django_etl.core.tenancy import OrganizationScopedAdmin, ReadOnlyAdmin, ScopedTabularInline
from django_etl.monitoring.choices import AlertType, DeliveryStatus
from django_etl.monitoring.lifecycle import BY_HAND, resolve_alerts
from django_etl.monitoring.models import Alert, AlertDelivery, AlertRule
from django_etl.runs import display

RETRYABLE = (DeliveryStatus.FAILED, DeliveryStatus.REFUSED)


class DeliveryInline(ScopedTabularInline):
    """The deliveries of one alert, on its page (read-only: the drain writes them)."""

    model = AlertDelivery
    extra = 0
    fields = ["channel", "reason", "target", "status", "attempts", "last_error", "sent_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(OrganizationScopedAdmin):
    organization_path = "organization"
    list_display = [
        "last_seen_at",
        "level_badge",
        "alert_type",
        "short_message",
        "occurrences",
        "organization",
        "pipeline_run",
        "is_resolved",
    ]
    list_filter = ["is_resolved", "level", "alert_type", "organization"]
    search_fields = ["message"]
    ordering = ["-last_seen_at"]  # what happened last first; one alert per problem (lifecycle.py)
    date_hierarchy = "last_seen_at"
    list_select_related = ["pipeline_run__pipeline", "organization"]
    fields = [
        "level",
        "alert_type",
        "message",
        "metadata",
        "organization",
        "pipeline_run",
        "task_run",
        "condition_key",
        "occurrences",
        "created_at",
        "last_seen_at",
        "is_resolved",
        "resolved_at",
    ]
    # Nothing is typed into an alert: resolving is the action below, so the open-alert rule (one per
    # condition) and the resolution record hold whatever a person does.
    readonly_fields = fields
    actions = ["mark_resolved"]
    inlines = [DeliveryInline]

    @admin.display(description="level", ordering="level")
    def level_badge(self, obj: Alert):
        return display.level_badge(obj.level)  # the console's colours (runs/display.py)

    @admin.display(description="message")
    def short_message(self, obj: Alert) -> str:
        return obj.message if len(obj.message) <= 100 else obj.message[:99] + "…"

    # Resolving is the one change a person makes to an alert: editors and up (core/permissions.py). The
    # tenancy mixin has already narrowed ``queryset`` to alerts of organizations where the role allows it.
    @admin.action(description="Mark selected alerts resolved", permissions=["change"])
    def mark_resolved(self, request, queryset) -> None:
        count = resolve_alerts(alerts=queryset, how=BY_HAND, by=request.user.get_username())
        self.message_user(request, f"Resolved {count} alert(s).", messages.SUCCESS)

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class AlertRuleForm(forms.ModelForm):
    alert_types = forms.MultipleChoiceField(
        choices=AlertType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None chosen: every type.",
    )

    class Meta:
        model = AlertRule
        fields = [
            "organization",
            "name",
            "is_active",
            "min_level",
            "alert_types",
            "pipelines",
            "on_escalation",
            "email_recipients",
            "webhook_connector",
            "webhook_path",
            "webhook_format",
        ]

    def clean(self):
        cleaned = super().clean()
        organization = cleaned.get("organization")
        pipelines = cleaned.get("pipelines")
        if organization is not None and pipelines is not None:
            foreign = [p.name for p in pipelines if p.organization_id != organization.pk]
            if foreign:
                self.add_error("pipelines", f"not pipelines of {organization}: {', '.join(foreign)}")
        return cleaned


@admin.register(AlertRule)
class AlertRuleAdmin(OrganizationScopedAdmin):
    form = AlertRuleForm
    list_display = ["name", "organization", "is_active", "min_level", "types", "channels", "on_escalation"]
    list_filter = ["is_active", "min_level", "organization"]
    search_fields = ["name", "email_recipients"]
    filter_horizontal = ["pipelines"]
    fieldsets = [
        (None, {"fields": ["organization", "name", "is_active"]}),
        ("Which alerts", {"fields": ["min_level", "alert_types", "pipelines", "on_escalation"]}),
        ("Where to", {"fields": ["email_recipients", "webhook_connector", "webhook_path", "webhook_format"]}),
    ]

    @admin.display(description="types")
    def types(self, obj: AlertRule) -> str:
        labels = dict(AlertType.choices)
        return ", ".join(labels.get(t, t) for t in obj.alert_types) or "all"

    @admin.display(description="channels")
    def channels(self, obj: AlertRule) -> str:
        found = []
        if obj.recipients():
            found.append(f"email ({len(obj.recipients())})")
        if obj.webhook_connector_id:
            found.append("webhook")
        return ", ".join(found) or "none"


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdmin):
    """The delivery log: every message the rules asked for, its attempts and what the receiver said."""

    list_display = [
        "created_at",
        "status",
        "channel",
        "reason",
        "target",
        "attempts",
        "next_attempt_at",
        "alert",
    ]
    list_filter = ["status", "channel", "reason", "organization"]
    search_fields = ["target", "last_error"]
    ordering = ["-created_at"]
    list_select_related = ["alert", "rule", "organization"]
    fields = [
        "alert",
        "rule",
        "organization",
        "channel",
        "reason",
        "level",
        "target",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "response",
        "sent_at",
        "created_at",
    ]
    readonly_fields = fields
    actions = ["send_again"]

    def has_retry_permission(self, request, obj=None) -> bool:
        return self.has_role_permission(request, "retry", obj)

    # Admins and owners (core/permissions.py): after the receiver or the network policy was fixed.
    @admin.action(description="Send selected failed or refused deliveries again", permissions=["retry"])
    def send_again(self, request, queryset) -> None:
        count = queryset.filter(status__in=RETRYABLE).update(
            status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now()
        )
        self.message_user(
            request, f"Queued {count} delivery(ies) again; the next drain sends them.", messages.SUCCESS
        )
