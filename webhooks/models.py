"""Webhook endpoints, their deliveries and every delivery attempt.

An endpoint receives the events it subscribes to (all types but the
off-by-default ones when its list is empty), each POSTed as the event's API
body, signed by the Standard Webhooks scheme with the endpoint's secret.

The secret is needed in clear to sign, so it is stored encrypted (Fernet,
key derived from CREDITLEDGER_WEBHOOK_SECRET_KEY or SECRET_KEY: see
`webhooks.secrets`), shown once when created or rotated, never again. After
a rotation the previous secret keeps signing alongside the new one until
`previous_secret_expires_at`.

A `WebhookDelivery` is one event for one endpoint (unique): its `webhook-id`
is the event's id, so a receiver dedupes retries and resends by it.
Every attempt is a `WebhookAttempt` row.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.ids import public_id
from events.models import Event


def endpoint_public_id() -> str:
    return public_id("we", 24)


class WebhookEndpoint(models.Model):
    public_id = models.CharField(max_length=32, default=endpoint_public_id, editable=False)
    url = models.URLField(max_length=2048)
    description = models.CharField(max_length=500, blank=True, default="")
    # Empty: every type except the off-by-default ones (events.types.OFF_BY_DEFAULT).
    event_types = models.JSONField(blank=True, default=list)  # a list of type names
    enabled = models.BooleanField(default=True)
    secret_encrypted = models.TextField(editable=False)
    previous_secret_encrypted = models.TextField(blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    # The first failure since the last success; the endpoint is disabled when it is too old.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["public_id"], name="webhookendpoint_public_id_unique")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.url}"


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.IntegerField(default=0)
    # When the next attempt is due (a claimed attempt pushes it forward by a lease).
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.IntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="webhookdelivery_one_per_endpoint_event")
        ]
        indexes = [
            # The sweep: pending deliveries that are due.
            models.Index(
                fields=["next_attempt_at"],
                name="webhookdelivery_due_idx",
                condition=models.Q(status="pending"),
            ),
            models.Index(fields=["event"], name="webhookdelivery_event_idx"),
        ]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_rows")
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.IntegerField(null=True, blank=True, help_text="Empty: no HTTP answer.")
    latency_ms = models.IntegerField(default=0)
    response_body = models.TextField(blank=True, default="", help_text="The first 1 KB of the answer.")
    error = models.CharField(max_length=1000, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["delivery", "-id"], name="webhookattempt_delivery_idx")]

    def __str__(self) -> str:
        return f"attempt {self.pk} of delivery {self.delivery_id}"
