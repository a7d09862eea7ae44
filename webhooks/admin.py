"""Webhooks in the console: endpoints (create, edit, rotate the secret), deliveries with their attempts and "resend".

Writes go through `webhooks.services`: the admin never stores a secret or a
URL itself (the URL is checked against the SSRF rule like the API's).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from config.errors import DomainError
from webhooks import services
from webhooks.forms import WebhookEndpointForm
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["public_id", "url", "enabled", "types_short", "last_success_at", "failing_since", "disabled_reason"]
    list_filter = ["enabled"]
    search_fields = ["=public_id", "url"]
    readonly_fields = ["public_id", "created_at", "last_success_at", "failing_since", "disabled_at", "disabled_reason"]
    actions = ["rotate_secret", "enable"]

    @admin.display(description="event types")
    def types_short(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.event_types) or "all (but charge.declined)"

    def changelist_view(self, request, extra_context=None):
        # The admin notice for an endpoint disabled automatically (Sentry was told too).
        for endpoint in (
            WebhookEndpoint.objects.filter(enabled=False)
            .exclude(disabled_reason="")
            .exclude(disabled_reason__startswith="Disabled by request")
        ):
            self.message_user(
                request,
                f"Webhook endpoint {endpoint.public_id} ({endpoint.url}) is disabled: {endpoint.disabled_reason}",
                messages.WARNING,
            )
        return super().changelist_view(request, extra_context)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            if change:
                current = WebhookEndpoint.objects.get(pk=obj.pk)
                services.endpoint_update(
                    endpoint=current,
                    url=data["url"],
                    description=data["description"],
                    event_types=data["event_types"],
                    enabled=data["enabled"],
                )
                obj.refresh_from_db()
                return
            endpoint, secret = services.endpoint_create(
                url=data["url"],
                description=data["description"],
                event_types=data["event_types"],
                enabled=data["enabled"],
            )
        except DomainError as error:
            raise ValidationError(error.message) from error
        obj.pk = endpoint.pk
        obj.refresh_from_db()
        self.message_user(
            request,
            format_html("Signing secret of {} (shown once, copy it now): <code>{}</code>", endpoint.public_id, secret),
            messages.WARNING,
        )

    def delete_model(self, request, obj):
        services.endpoint_delete(endpoint=obj)

    @admin.action(description="Rotate the signing secret (the old one signs too for the grace period)")
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            secret = services.endpoint_secret_rotate(endpoint=endpoint)
            self.message_user(
                request,
                format_html("New signing secret of {} (shown once): <code>{}</code>", endpoint.public_id, secret),
                messages.WARNING,
            )

    @admin.action(description="Enable (clears the failure record)")
    def enable(self, request, queryset):
        for endpoint in queryset:
            services.endpoint_update(endpoint=endpoint, enabled=True)
        self.message_user(request, f"{queryset.count()} endpoint(s) enabled.")


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ["attempted_at", "status_code", "latency_ms", "error", "response_body"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-id"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "event_id_display", "event_type", "endpoint", "status", "attempts", "last_status_code"]
    list_display_links = ["id"]
    list_filter = ["status", "endpoint", "event__type"]
    list_select_related = ["event", "endpoint"]
    search_fields = ["=event__public_id", "=endpoint__public_id"]
    fields = [
        "event",
        "endpoint",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
        "delivered_at",
        "last_status_code",
        "last_error",
    ]
    readonly_fields = fields
    inlines = [WebhookAttemptInline]
    actions = ["resend"]
    show_full_result_count = False

    @admin.display(description="webhook-id", ordering="event__public_id")
    def event_id_display(self, delivery: WebhookDelivery) -> str:
        return delivery.event.public_id

    @admin.display(description="type", ordering="event__type")
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.type

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_resend_permission(self, request) -> bool:
        return request.user.has_perm("webhooks.change_webhookdelivery")

    @admin.action(description="Resend now (same webhook-id)", permissions=["resend"])
    def resend(self, request, queryset):
        for delivery in queryset:
            services.delivery_resend(delivery=delivery)
        self.message_user(request, f"{queryset.count()} deliver(ies) queued to be sent again.", messages.SUCCESS)
