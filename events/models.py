"""Events: what happened, recorded in the transaction of the change that caused it.

An event exists if and only if its change committed. Two kinds, one feed:

* **A ledger entry's event** (`grant.created`, `charge.created`,
  `lot.expired`) is the entry itself: the posting writes the event's type on
  the entry (`LedgerEntry.event_type`), in the statement that writes the
  entry, and nothing else. Entries are immutable (the append-only trigger),
  so the entry's API body rendered when the event is read is the snapshot.
  Its id is `evt_` + the entry's id (`evt_txn_...`). This keeps a charge's
  event to a column rather than a second row (docs/performance.md, "Events
  and webhooks on the charge path").
* **Every other event** is an `Event` row, written in its service's
  transaction (`events.services.event_record`).

Stored events draw their ids from the ledger's id sequence (billing's
migration 0019), so one integer ordering covers both kinds. The events API
reads each kind where its indexes serve it (`Event`; `EntryEvent`, a
read-only view of the ledger's rows that are events) and merges the two
pages (`events.selectors.events_page`). `FeedEvent` (the `events_feed`
view) unions them for reading one event or a few (it cannot be paged by id
without sorting the whole window, so the API and the admin never page over it).
An `Event` row with `entry_id` set is a copy of an entry's event, made when
a webhook delivery needs a row to point at (`events.services.event_materialize`);
the feed shows the entry, never the copy.
The app sits between pricing and billing so billing's services can record
events; webhook endpoints and deliveries live above billing (`webhooks`),
which hears of each recorded event through `events.services.event_hook_register`.

Events are listed for `CREDITLEDGER_EVENTS_RETENTION_DAYS` (30): a client that
was down catches up with `GET /api/v1/events`; the `purge_events` task deletes
older `Event` rows. Ledger entries are kept: past retention their events are
no longer listed or read.
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
    # Set on a copy of a ledger entry's event (its id is the entry's id too): no foreign key, the ledger is
    # above this app.
    entry_id = models.BigIntegerField(null=True, blank=True, editable=False)

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


def entry_event_public_id(entry_public_id: str) -> str:
    """A ledger entry's event id: `evt_` + the entry's (`evt_txn_...`); the entry is found from it again."""
    return "evt_" + entry_public_id


class EntryEvent(models.Model):
    """A ledger entry that is an event, read where it lives: billing's ledger table (read-only; billing writes it).

    Only the columns an event needs. The events app sits below billing, so it
    names the table, not billing's model; billing's migration 0019 added the
    `event_type` column this reads.
    """

    id = models.BigIntegerField(primary_key=True)
    entry_public_id = models.CharField(max_length=32, db_column="public_id")
    type = models.CharField(max_length=64, null=True, db_column="event_type")
    account = models.ForeignKey(
        Account, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    created_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "billing_ledgerentry"
        default_permissions = ()

    api_version = "v1"

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"

    @property
    def public_id(self) -> str:
        return entry_event_public_id(self.entry_public_id)

    @property
    def entry_id(self) -> int:
        return self.id

    @property
    def data(self) -> dict:
        rendered = self.__dict__.get("_rendered")
        if rendered is None:
            from events.services import entry_event_data

            rendered = self.__dict__["_rendered"] = entry_event_data([self.id])[self.id]
        return rendered


class FeedEvent(models.Model):
    """Every event, stored or a ledger entry's: the `events_feed` view (read-only).

    `stored_data` is the snapshot of a stored event; a ledger entry's event
    (`entry_id` set) renders its entry's API body when read (`data`).
    """

    id = models.BigIntegerField(primary_key=True)
    public_id = models.CharField(max_length=40)
    entry_public_id = models.CharField(max_length=32, null=True)
    type = models.CharField(max_length=64)
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    created_at = models.DateTimeField()
    api_version = models.CharField(max_length=16)
    stored_data = models.JSONField(null=True)
    entry_id = models.BigIntegerField(null=True)

    class Meta:
        managed = False
        db_table = "events_feed"
        verbose_name = "event"

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"

    @property
    def data(self) -> dict:
        """The snapshot: stored, or the entry's API body (entries never change)."""
        if self.entry_id is None:
            return self.stored_data
        rendered = self.__dict__.get("_rendered")
        if rendered is None:
            from events.services import entry_event_data

            rendered = self.__dict__["_rendered"] = entry_event_data([self.entry_id])[self.entry_id]
        return rendered
