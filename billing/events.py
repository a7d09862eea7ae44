"""The ledger's events: recorded by the services inside their posting, so they commit with the change.

Each snapshot is the body the API returns for the object (`entry_body`,
`hold_body`), amounts at the credit type's scale. The bodies are imported
when first used: billing.api imports billing.services, which call these.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import connection, transaction

from accounts.models import Account
from billing.exceptions import InsufficientCredits
from billing.models import Hold, LedgerEntry
from events.models import Event
from events.services import entry_event_renderer_register, event_record
from events.services import entry_event_rows as events_entry_event_rows
from pricing.models import CreditType

_HOLD_EVENTS = {
    Hold.Status.CAPTURED: "hold.captured",
    Hold.Status.RELEASED: "hold.released",
    Hold.Status.EXPIRED: "hold.expired",
}


def entry_event_rows(type: str, entry: LedgerEntry) -> list:
    """Make the new `entry` the event `type`; the rows its hooks add, unsaved: `Posting.post(event=...)` writes them.

    The event is the entry's `event_type` column, written with the entry: no
    row of its own (events.models). A hook's row (a webhook fan-out message)
    goes out in the same statement.
    """
    entry.event_type = type
    return events_entry_event_rows(type=type, account=entry.account, entry_public_id=entry.public_id)


def entries_event_data(entry_ids: list[int]) -> dict[int, dict]:
    """Ledger entries' events' data by entry id: each entry's API body (the events feed renders them with this)."""
    from billing.api import entry_body

    entries = LedgerEntry.objects.filter(pk__in=entry_ids).select_related(
        "account", "credit_type", "related_entry", "price_version"
    )
    return {entry.pk: entry_body(entry) for entry in entries}


def entry_events_register() -> None:
    """Billing's AppConfig.ready: the events app renders ledger entries' events with `entries_event_data`."""
    entry_event_renderer_register(entries_event_data)


def hold_event_record(hold: Hold, *, type: str | None = None) -> Event:
    from billing.api_holds import hold_body

    return event_record(type=type or _HOLD_EVENTS[hold.status], account=hold.account, data=hold_body(hold))


def zero_charge_event_record(result, *, account: Account) -> Event:
    """`pricing.anomaly` for a paid key settled at zero; the snapshot is the API's zero-charge answer."""
    from billing.api import zero_charge_body

    return event_record(type="pricing.anomaly", account=account, data=zero_charge_body(result))


def charge_declined_attach(
    error: InsufficientCredits, *, account: Account, credit_type: CreditType, amount: Decimal, **fields: str
) -> None:
    """Give a declined charge its `charge.declined` event, recorded once the decline itself is final.

    The decline rolled back the posting's transaction, so the event cannot be
    written there. Called on its own (the admin, a task), the charge is not
    inside a caller's transaction: record it now, in a transaction of its
    own. Inside the API's request transaction, which the decline ends, the
    idempotency layer records it with the stored decline
    (`charge_declined_record`).
    """
    error.declined_event = {
        "account": account.public_id,
        "credit_type": credit_type.code,
        "amount": format(amount.quantize(credit_type.quantum), "f"),
        "code": error.code,
        **fields,
    }
    error.declined_account = account
    if not connection.in_atomic_block:
        with transaction.atomic():
            charge_declined_record(error)


def charge_declined_record(error: Exception) -> None:
    """Record the `charge.declined` event a decline carries (if any), in the caller's transaction; only once."""
    data = getattr(error, "declined_event", None)
    if data is None:
        return
    error.declined_event = None
    event_record(type="charge.declined", account=error.declined_account, data=data)
