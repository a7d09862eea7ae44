"""Plans and subscriptions: periods, renewals and the allowance granted once per period.

The allowance itself is an ordinary grant (billing's public `grant_create`),
so it goes through the ledger core like every other credit.
"""

from __future__ import annotations

import calendar
from copy import copy
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account
from billing.core import Actor, sweep
from billing.services import grant_create
from config.audit import audit_update
from config.errors import InvalidRequest
from events.services import event_record
from subscriptions.exceptions import SubscriptionConflict
from subscriptions.models import AllowanceGrant, Plan, Subscription


def period_add_month(start: datetime) -> datetime:
    """One calendar month later, clamped to the month's last day (Jan 31 -> Feb 28)."""
    month = start.month % 12 + 1
    year = start.year + (1 if start.month == 12 else 0)
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def _allowance_grant(*, subscription: Subscription, actor: Actor) -> AllowanceGrant | None:
    """Grant the subscription's current period allowance, unless that period already had it.

    The AllowanceGrant row is inserted first: its unique constraint on
    (subscription, period_start) makes a second grant for the same period
    fail (or wait for the first and then fail) before any credit moves.
    """
    amount = subscription.allowance
    record = AllowanceGrant(
        subscription=subscription,
        period_start=subscription.current_period_start,
        period_end=subscription.current_period_end,
        amount=amount,
    )
    try:
        with transaction.atomic():  # a savepoint: a duplicate leaves the caller's transaction usable
            record.save(force_insert=True)
    except IntegrityError:
        return None
    if amount > 0:
        plan = subscription.plan
        entry = grant_create(
            account=subscription.account,
            credit_type=plan.credit_type,
            amount=amount,
            actor=actor,
            reason=f"{'Trial' if subscription.is_trial else 'Monthly'} allowance: {plan.code}",
            metadata={"subscription": subscription.pk, "period_start": subscription.current_period_start.isoformat()},
            expires_at=subscription.current_period_end if plan.allowance_expires else None,
        )
        AllowanceGrant.objects.filter(pk=record.pk).update(entry=entry)
        record.entry = entry
    return record


def subscription_create(
    *,
    account: Account,
    plan: Plan,
    status: str = Subscription.Status.ACTIVE,
    actor: Actor | None = None,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    trial_end: datetime | None = None,
    stripe_customer_id: str = "",
    stripe_subscription_id: str = "",
    metadata: dict | None = None,
) -> Subscription:
    """Start a subscription and grant its first period's allowance (trial or paid, by status).

    The first period runs from `period_start` (default now) to `period_end`
    (default one calendar month later; e.g. a 14-day trial passes its end);
    later periods are calendar months from there.
    """
    if status not in Subscription.LIVE_STATUSES:
        raise InvalidRequest("A new subscription must be trialing, active or past_due.")
    if not plan.is_active:
        raise InvalidRequest("This plan takes no new subscriptions.")
    start = period_start or timezone.now()
    end = period_end or period_add_month(start)
    if end <= start:
        raise InvalidRequest("period_end must be after period_start.")
    subscription = Subscription(
        account=account,
        plan=plan,
        status=status,
        current_period_start=start,
        current_period_end=end,
        trial_end=trial_end,
        stripe_customer_id=stripe_customer_id,
        stripe_subscription_id=stripe_subscription_id,
        metadata=metadata or {},
    )
    with transaction.atomic():
        try:
            with transaction.atomic():
                subscription.save(force_insert=True)
        except IntegrityError as exc:
            raise SubscriptionConflict() from exc
        if status in Subscription.RENEWING_STATUSES:
            _allowance_grant(subscription=subscription, actor=actor or Actor.system())
    return subscription


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _subscription_event_record(subscription: Subscription) -> None:
    """`subscription.updated` (a new period, a status change), in the transaction of the change."""
    event_record(
        type="subscription.updated",
        account=subscription.account,
        data={
            "object": "subscription",
            "account": subscription.account.public_id,
            "plan": subscription.plan.code,
            "status": str(subscription.status),
            "current_period_start": _time(subscription.current_period_start),
            "current_period_end": _time(subscription.current_period_end),
            "trial_end": _time(subscription.trial_end),
            "canceled_at": _time(subscription.canceled_at),
        },
    )


def subscription_renew(
    *, subscription: Subscription, now: datetime | None = None, actor: Actor | None = None
) -> AllowanceGrant | None:
    """If the period has ended, move to the period containing `now` and grant its allowance once.

    Periods missed while renewals were not running are skipped, not granted
    retroactively. The move is claimed with a conditional update on the old
    period end, so of two concurrent renewals only one advances and grants;
    the AllowanceGrant constraint backs that up.
    """
    now = now or timezone.now()
    subscription = Subscription.objects.select_related("plan__credit_type", "account").get(pk=subscription.pk)
    if subscription.status not in Subscription.RENEWING_STATUSES or subscription.current_period_end > now:
        return None
    start, end = subscription.current_period_start, subscription.current_period_end
    while end <= now:
        start, end = end, period_add_month(end)
    with transaction.atomic():
        claimed = Subscription.objects.filter(
            pk=subscription.pk,
            status=subscription.status,
            current_period_end=subscription.current_period_end,
        ).update(current_period_start=start, current_period_end=end, updated_at=now)
        if claimed != 1:
            return None
        before = copy(subscription)
        subscription.current_period_start, subscription.current_period_end = start, end
        audit_update(before=before, after=subscription, fields=["current_period_start", "current_period_end"])
        _subscription_event_record(subscription)
        return _allowance_grant(subscription=subscription, actor=actor or Actor.system())


def subscriptions_renew_due(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Renew every subscription whose period has ended; how many allowances this call granted."""
    now = now or timezone.now()
    due = Subscription.objects.filter(status__in=Subscription.RENEWING_STATUSES, current_period_end__lte=now).only("pk")
    return sweep(
        due, lambda subscription: subscription_renew(subscription=subscription, now=now), batch_size=batch_size
    )


def subscription_status_set(
    *, subscription: Subscription, status: str, now: datetime | None = None, actor: Actor | None = None
) -> Subscription:
    """Change a subscription's status (e.g. from a payment-provider webhook or the admin).

    A trial that converts to active starts a new, paid period at once and
    gets the paid allowance; canceling stops renewals (credits already
    granted stay until they expire).
    """
    if status not in Subscription.Status.values:
        raise InvalidRequest("Unknown subscription status.")
    now = now or timezone.now()
    with transaction.atomic():
        current = (
            Subscription.objects.select_for_update()
            .select_related("plan__credit_type", "account")
            .get(pk=subscription.pk)
        )
        if current.status == status:
            return current
        if current.status == Subscription.Status.CANCELED:
            raise InvalidRequest("A canceled subscription cannot be resumed; start a new one.")
        converting = current.is_trial and status == Subscription.Status.ACTIVE
        current.status = status
        fields = ["status", "updated_at"]
        if status == Subscription.Status.CANCELED:
            current.canceled_at = now
            fields.append("canceled_at")
        if converting:
            current.current_period_start, current.current_period_end = now, period_add_month(now)
            fields += ["current_period_start", "current_period_end"]
        current.save(update_fields=fields)
        _subscription_event_record(current)
        if converting:
            _allowance_grant(subscription=current, actor=actor or Actor.system())
    return current


def subscription_provider_sync(
    *,
    subscription: Subscription,
    status: str,
    period_start: datetime,
    period_end: datetime,
    trial_end: datetime | None = None,
    canceled_at: datetime | None = None,
    actor: Actor | None = None,
) -> Subscription:
    """Mirror the payment provider's state: its status and period, as given; the period's allowance once.

    The caller has decided the state is not older than what was applied
    (payments orders Stripe's events). A canceled subscription stays
    canceled. Trial or paid follows the status alone. A period never moves
    backwards; a new period (or a trial converting to active) is granted its
    allowance once, by the unique AllowanceGrant per period.
    """
    if status not in Subscription.Status.values:
        raise InvalidRequest("Unknown subscription status.")
    if period_end <= period_start:
        raise InvalidRequest("period_end must be after period_start.")
    with transaction.atomic():
        current = (
            Subscription.objects.select_for_update()
            .select_related("plan__credit_type", "account")
            .get(pk=subscription.pk)
        )
        if current.status == Subscription.Status.CANCELED:
            return current
        current.status = status
        current.trial_end = trial_end
        if status == Subscription.Status.CANCELED:
            current.canceled_at = canceled_at or timezone.now()
        if period_start >= current.current_period_start:
            current.current_period_start, current.current_period_end = period_start, period_end
        current.save(
            update_fields=[
                "status",
                "trial_end",
                "canceled_at",
                "current_period_start",
                "current_period_end",
                "updated_at",
            ]
        )
        if status in Subscription.RENEWING_STATUSES:
            _allowance_grant(subscription=current, actor=actor or Actor.system())
    return current
