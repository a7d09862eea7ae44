"""Events: what happened, recorded in the transaction of the change that caused it.

An `Event` exists if and only if its change committed: it is written inside the
posting (a ledger entry's event in the very statement that writes the entry,
`Posting.post(event=...)`) or other service transaction (`events.services.event_record`),
never after it.
The app sits between pricing and billing so billing's services can record
events; webhook endpoints and deliveries live above billing (`webhooks`),
which hears of each recorded event through `events.services.event_hook_register`.

Events are kept `CREDITLEDGER_EVENTS_RETENTION_DAYS` (30): a client that was
down catches up with `GET /api/v1/events`; the `purge_events` task deletes
older ones.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.ids import public_id
from accounts.models import Account


def event_public_id() -> str:
    return public_id("evt", 24)


class Event(models.Model):
    public_id = models.CharField(max_length=32, default=event_public_id, editable=False)
    type = models.CharField(max_length=64)
    # Null for events about the ledger as a whole (a reconciliation run).
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now)
    api_version = models.CharField(max_length=16, default="v1")
    data = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["public_id"], name="event_public_id_unique"),
        ]
        indexes = [
            # An account's events, newest first (an account key's list, the admin's account filter).
            models.Index(fields=["account", "-id"], name="event_account_id_idx"),
            # The list filtered by type; the retention purge reads created_at.
            models.Index(fields=["type", "-id"], name="event_type_id_idx"),
            models.Index(fields=["created_at"], name="event_created_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"
