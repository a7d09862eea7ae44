"""Balance alerts: `balance.low` and `balance.depleted`, decided under the wallet lock.

`balance_alerts_observe` is a balance observer (`billing.core.balance_observer_register`):
it runs inside every posting that moves a wallet's available balance, with
the exact before/after values, so concurrent charges are decided one after
another and a crossing is seen exactly once.

* `balance.low` fires when available goes to or below the wallet's
  threshold (equality included) while the wallet is *armed*; firing disarms
  it, and it re-arms only when available rises above the threshold again.
  The flag is a column of the wallet (`low_balance_armed`), read by the lock
  and written under it, only when it changes. The threshold is the wallet's
  own (`low_balance`, set by `wallet_alerts_set`) or the credit type's
  default (`CREDITLEDGER_LOW_BALANCE_DEFAULTS`); none, no alert.
* `balance.depleted` fires when available reaches zero from above.

A new wallet starts disarmed (it starts at zero); its first credit above the
threshold arms it.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from accounts.models import Account
from billing.core import Posting, posting
from billing.models import Wallet
from billing.services.amounts import capture_amount_validate
from config.rows import row_update
from events.services import event_record
from pricing.models import CreditType


def low_balance_threshold(wallet: Wallet, credit_type: CreditType) -> Decimal | None:
    if wallet.low_balance is not None:
        return wallet.low_balance
    return settings.CREDITLEDGER_LOW_BALANCE_DEFAULTS.get(credit_type.code)


def _body(p: Posting, before: Decimal, after: Decimal, threshold: Decimal | None) -> dict:
    """The wallet as GET /accounts/{id}/balance shows it, with the threshold and the change that crossed it."""
    ct = p.credit_type

    def text(value: Decimal) -> str:
        return format(value.quantize(ct.quantum), "f")

    return {
        "object": "balance",
        "account": p.account.public_id,
        "credit_type": ct.code,
        "balance": text(p.wallet.balance),
        "held": text(p.wallet.held),
        "available": text(after),
        "available_before": text(before),
        "low_balance": None if threshold is None else text(threshold),
    }


def balance_alerts_observe(p: Posting, available_before: Decimal, available_after: Decimal) -> None:
    """The balance observer: arm, disarm and fire under the wallet lock (see the module docstring)."""
    wallet = p.wallet
    threshold = low_balance_threshold(wallet, p.credit_type)
    if threshold is not None:
        if available_after > threshold:
            if not wallet.low_balance_armed:
                row_update(Wallet, wallet.pk, low_balance_armed=True)
                wallet.low_balance_armed = True
        elif wallet.low_balance_armed:
            row_update(Wallet, wallet.pk, low_balance_armed=False)
            wallet.low_balance_armed = False
            body = _body(p, available_before, available_after, threshold)
            event_record(type="balance.low", account=p.account, data=body)
    if available_after <= 0 < available_before:
        body = _body(p, available_before, available_after, threshold)
        event_record(type="balance.depleted", account=p.account, data=body)


def wallet_alerts_set(*, account: Account, credit_type: CreditType, low_balance: Decimal | str | None) -> Wallet:
    """Set (or, with None, reset to the default) a wallet's low-balance threshold, under its lock.

    The wallet is created if missing. It is armed at once if its available
    balance is above the new threshold, disarmed otherwise (no alert fires
    for a balance that was already low when the threshold was set).
    """
    # Zero is a threshold too: balance.low together with balance.depleted.
    value = None if low_balance is None else capture_amount_validate(low_balance, credit_type)
    with posting(account=account, credit_type=credit_type, create=True) as p:
        wallet = p.wallet
        threshold = value if value is not None else settings.CREDITLEDGER_LOW_BALANCE_DEFAULTS.get(credit_type.code)
        armed = threshold is not None and wallet.available > threshold
        row_update(Wallet, wallet.pk, low_balance=value, low_balance_armed=armed)
        wallet.low_balance, wallet.low_balance_armed = value, armed
        return wallet
