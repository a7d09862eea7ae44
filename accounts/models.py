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

    # Unique by named constraints rather than `unique=True`, which would add a
    # LIKE (varchar_pattern_ops) index per field that no query uses.
    public_id = models.CharField(max_length=32, default=account_id, editable=False)
    external_id = models.CharField(max_length=255, help_text="The client app's own id for this user.")
    name = models.CharField(max_length=255, blank=True)
    email = models.EmailField(max_length=254, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # Also every API call's account look-up by public id, and the admin's search.
            models.UniqueConstraint(fields=["public_id"], name="account_public_id_unique"),
            # Also GET /accounts?external_id= and the admin's =account__external_id searches.
            models.UniqueConstraint(fields=["external_id"], name="account_external_id_unique"),
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

    public_id = models.CharField(max_length=32, default=api_key_id, editable=False)  # apikey_public_id_unique
    name = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Indexed: the admin's key search by account (=account__public_id).
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.PROTECT, related_name="api_keys")
    prefix = models.CharField(max_length=32, editable=False)  # apikey_prefix_unique
    secret_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # No index of its own: deleting a user clears it with a scan of a small table.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "API key"
        constraints = [
            # Also every request's authentication: the key is found by its prefix.
            models.UniqueConstraint(fields=["prefix"], name="apikey_prefix_unique"),
            # Also the admin's search =public_id.
            models.UniqueConstraint(fields=["public_id"], name="apikey_public_id_unique"),
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
