"""Batches of charges: usage reported after the fact (an LLM gateway's calls), many charges in one call.

Each wallet of a batch has its own posting; the batch opens them together:

1. every item is checked without any lock (amount format and scale, the
   quote's credit type, the account's status; pricing happened before, in
   the caller); a zero quote settles without a posting (`zero_cost_settle`);
2. the remaining items are grouped by wallet (account, credit type), and the
   groups are taken in a fixed order, account id then credit type id: two
   batches naming the same wallets in opposite orders lock them in the same
   order, so they cannot deadlock;
3. every group's wallet is locked by ONE statement (`postings_for_debit`,
   one round trip for the whole batch), and each group is that wallet's
   posting: its items are applied in request order, each deciding from the
   locked row (`require_available`, `count_daily_usage`, `post`), so the
   third of three items on a wallet funded for two is the one declined;
4. a declined item (402 insufficient credits, 429 daily limit) is that item's
   outcome and the group goes on. `require_available` refuses before
   anything is written; `count_daily_usage` writes the day's usage before it
   refuses, so while a daily limit applies each item runs in a savepoint.

Transaction scope: the batch is one transaction (`postings_for_debit` opens
it); an error that is not a decline (a lock timeout, a database error) rolls
back every item. The API (`billing.api_batch`) calls it inside its
idempotent request transaction, which it joins: the whole batch, its items'
idempotency records and its stored answer commit together (see docs/api.md,
"Batch charges", for why).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction

from accounts.exceptions import AccountSuspended
from accounts.models import Account
from billing.core import Actor, Posting, postings_for_debit
from billing.exceptions import InvalidAmount
from billing.models import LedgerEntry
from billing.services.amounts import amount_validate, capture_amount_validate
from billing.services.charges import ZeroCharge, zero_cost_settle
from config.errors import DomainError
from pricing.models import CreditType
from pricing.services import Quote

MAX_BATCH_ITEMS = 100

BatchOutcome = LedgerEntry | ZeroCharge | DomainError


@dataclass
class BatchCharge:
    """One item of a batch: an explicit `amount`, or a `quote` priced before the batch."""

    account: Account
    credit_type: CreditType
    amount: Decimal | str | None = None
    quote: Quote | None = None
    task_id: str = ""
    route: str = ""
    description: str = ""
    metadata: dict | None = None
    idempotency_key: str = ""
    value: Decimal = field(default=Decimal(0), init=False)  # the amount to take, once checked


def _precheck(item: BatchCharge) -> BatchOutcome | None:
    """What `charge_create` checks before its lock; an outcome if the item ends here, else None (sets `value`)."""
    amount = item.amount
    if item.quote is not None:
        if item.quote.credit_type.pk != item.credit_type.pk:
            raise InvalidAmount("The quote is in another credit type.")
        if amount is not None and capture_amount_validate(amount, item.credit_type) != item.quote.amount:
            raise InvalidAmount("The amount does not match the quote.")
        amount = item.quote.amount
        if amount == 0:
            if not item.account.is_active:
                raise AccountSuspended()
            return zero_cost_settle(
                quote=item.quote,
                account=item.account,
                task_id=item.task_id,
                route=item.route,
                idempotency_key=item.idempotency_key,
            )
    item.value = amount_validate(amount, item.credit_type)
    if not item.account.is_active:
        raise AccountSuspended()
    return None


def _apply(p: Posting, item: BatchCharge, actor: Actor) -> LedgerEntry:
    p.require_available(item.value)
    p.count_daily_usage(item.value)
    entry = p.post(
        kind=LedgerEntry.Kind.CHARGE,
        amount=-item.value,
        actor=actor,
        task_id=item.task_id,
        route=item.route,
        description=item.description,
        metadata=item.metadata,
        idempotency_key=item.idempotency_key,
        pricing=item.quote.ledger_fields() if item.quote is not None else None,
        event="charge.created",
    )
    return entry


def charges_batch_apply(*, charges: Sequence[BatchCharge], actor: Actor) -> list[BatchOutcome]:
    """Apply each charge; per item (same order) its entry, its `ZeroCharge`, or the `DomainError` that declined it.

    Only domain errors are outcomes; anything else (a database error) raises
    and rolls back the whole batch.
    """
    outcomes: list[BatchOutcome | None] = [None] * len(charges)
    groups: dict[tuple[int, int], list[int]] = {}
    for index, item in enumerate(charges):
        try:
            outcomes[index] = _precheck(item)
        except DomainError as error:
            outcomes[index] = error
        if outcomes[index] is None:
            groups.setdefault((item.account.pk, item.credit_type.pk), []).append(index)
    if not groups:
        return outcomes  # type: ignore[return-value]  # every item ended before any lock
    # Every wallet locked by one statement, in a fixed order (account id, then credit type id): no two
    # batches wait on each other in a cycle.
    wallets = [(charges[indices[0]].account, charges[indices[0]].credit_type) for indices in groups.values()]
    with postings_for_debit(wallets=wallets) as opened:
        for wallet_key in sorted(groups):
            p = opened[wallet_key]
            for index in groups[wallet_key]:
                try:
                    if p.daily_limit is None:
                        outcomes[index] = _apply(p, charges[index], actor)  # a decline writes nothing
                    else:
                        with transaction.atomic():  # count_daily_usage writes, then may decline
                            outcomes[index] = _apply(p, charges[index], actor)
                except DomainError as error:
                    outcomes[index] = error
    return outcomes  # type: ignore[return-value]  # every index was filled
