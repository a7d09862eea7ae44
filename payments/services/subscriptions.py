"""Stripe subscriptions mirrored into the subscriptions app: status and period follow Stripe's.

Trial or paid comes from the Stripe subscription's own `status` only
(seed 002: a trial guessed from indicators served paying customers for
free). The caller (events) has already refused states older than the one
applied, per subscription.
"""

from __future__ import annotations

from datetime import UTC, datetime

from accounts.models import Account
from subscriptions.models import Plan, Subscription
from subscriptions.services import subscription_create, subscription_provider_sync

# Stripe's statuses onto ours: whatever does not grant service is past_due or canceled.
STATUS_MAP = {
    "trialing": Subscription.Status.TRIALING,
    "active": Subscription.Status.ACTIVE,
    "past_due": Subscription.Status.PAST_DUE,
    "unpaid": Subscription.Status.PAST_DUE,
    "incomplete": Subscription.Status.PAST_DUE,
    "paused": Subscription.Status.PAST_DUE,
    "canceled": Subscription.Status.CANCELED,
    "incomplete_expired": Subscription.Status.CANCELED,
}


def _time(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _period(obj: dict) -> tuple[datetime | None, datetime | None]:
    """The current period: on the subscription (older API versions) or on its first item (newer ones)."""
    start, end = obj.get("current_period_start"), obj.get("current_period_end")
    if not start:
        items = (obj.get("items") or {}).get("data") or [{}]
        start, end = items[0].get("current_period_start"), items[0].get("current_period_end")
    return _time(start), _time(end)


def _plan_for(obj: dict) -> Plan | None:
    code = (obj.get("metadata") or {}).get("plan")
    if not code:
        items = (obj.get("items") or {}).get("data") or [{}]
        price = items[0].get("price") or items[0].get("plan") or {}
        code = price.get("lookup_key") or (price.get("metadata") or {}).get("plan")
    return Plan.objects.filter(code=code).first() if code else None


def subscription_apply(obj: dict, *, deleted: bool = False) -> tuple[str, str]:
    """Create or update the local subscription from a Stripe subscription object; (status, result)."""
    status = Subscription.Status.CANCELED if deleted else STATUS_MAP.get(obj.get("status", ""))
    if status is None:
        return "ignored", f"Unknown Stripe status {obj.get('status')!r}."
    start, end = _period(obj)
    if start is None or end is None or end <= start:
        return "ignored", "No current period on the subscription."
    local = Subscription.objects.filter(stripe_subscription_id=obj["id"]).first()
    if local is None:
        if status == Subscription.Status.CANCELED:
            return "ignored", "Canceled before it was ever mirrored."
        account = Account.objects.filter(public_id=(obj.get("metadata") or {}).get("account", "")).first()
        plan = _plan_for(obj)
        if account is None or plan is None:
            return "ignored", "The subscription names no known account or plan (metadata account, plan)."
        local = subscription_create(
            account=account,
            plan=plan,
            status=status,
            period_start=start,
            period_end=end,
            trial_end=_time(obj.get("trial_end")),
            stripe_customer_id=obj.get("customer") or "",
            stripe_subscription_id=obj["id"],
        )
        return "processed", f"Subscription {local.pk} created ({status})."
    local = subscription_provider_sync(
        subscription=local,
        status=status,
        period_start=start,
        period_end=end,
        trial_end=_time(obj.get("trial_end")),
        canceled_at=_time(obj.get("canceled_at")),
    )
    return "processed", f"Subscription {local.pk} is {local.status} until {local.current_period_end:%Y-%m-%d}."


def invoice_paid_apply(obj: dict) -> tuple[str, str]:
    """A paid subscription invoice: its period becomes current (never backwards), its allowance granted once."""
    subscription_id = obj.get("subscription") or ((obj.get("parent") or {}).get("subscription_details") or {}).get(
        "subscription"
    )
    local = Subscription.objects.filter(stripe_subscription_id=subscription_id or "-").first()
    if local is None:
        return "ignored", "No local subscription for this invoice."
    lines = (obj.get("lines") or {}).get("data") or [{}]
    period = lines[0].get("period") or {}
    start, end = _time(period.get("start")), _time(period.get("end"))
    if start is None or end is None or end <= start:
        return "ignored", "The invoice has no period."
    if start < local.current_period_start:
        return "ignored", "An invoice for a period older than the current one."
    local = subscription_provider_sync(
        subscription=local, status=local.status, period_start=start, period_end=end, trial_end=local.trial_end
    )
    return "processed", f"Subscription {local.pk}: period from {start:%Y-%m-%d} granted once."
