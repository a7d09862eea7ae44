"""Accounts (the client app's users) and the API keys client apps call us with.

API key secrets are shown once and stored only as a SHA-256 digest: they are
long random strings, so a fast digest is as safe as a slow password hash and
keeps authentication cheap on the charge path. A short non-secret prefix
finds the row; the digest is compared in constant time.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.ids import account_id, api_key_id


class Account(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    public_id = models.CharField(max_length=32, unique=True, default=account_id, editable=False)
    external_id = models.CharField(max_length=255, unique=True, help_text="The client app's own id for this user.")
    name = models.CharField(max_length=255, blank=True)
    email = models.EmailField(max_length=254, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["active", "suspended"]), name="account_status_valid"),
        ]
        permissions = [("grant_credits", "Can grant credits to accounts")]

    def __str__(self) -> str:
        return f"{self.name or self.external_id} ({self.public_id})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class ApiKey(models.Model):
    class Kind(models.TextChoices):
        SERVICE = "service", "Service (any account)"
        ACCOUNT = "account", "Account (one account)"

    public_id = models.CharField(max_length=32, unique=True, default=api_key_id, editable=False)
    name = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.PROTECT, related_name="api_keys")
    prefix = models.CharField(max_length=32, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="service", account__isnull=True) | Q(kind="account", account__isnull=False)),
                name="apikey_kind_matches_account",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.prefix} ({self.kind})"

    @property
    def is_service(self) -> bool:
        return self.kind == self.Kind.SERVICE

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
