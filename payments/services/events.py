"""Stripe events: stored once by their Stripe id, then processed idempotently, in any order.

The webhook receiver (and `stripe_sync`) only store the event and ask a
task to process it after commit; the sweep in `payments.tasks` picks up
events whose enqueue was lost, and retries failed ones with exponential
backoff (`retry_delay`) until FAIL_MAX_ATTEMPTS failures, then gives up
(Sentry; the admin shows it and can still reprocess it). Processing locks the event row, runs its
handler in a savepoint and records the outcome on the row. Every handler is
idempotent (a purchase is granted once, a refund follows Stripe's running
total, a subscription ignores states older than the one applied), so a
redelivery, a sync or the admin's "reprocess" is always safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial

import sentry_sdk
import stripe
from django.db import transaction
from django.utils import timezone

from payments.models import Purchase, StripeEvent, StripeObjectVersion
from payments.services import purchases
from payments.services.subscriptions import invoice_paid_apply, subscription_apply
from payments.stripe_api import stripe_client

logger = logging.getLogger(__name__)


def stripe_time(value: int | float | None) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value is not None else None


def stripe_event_store(*, payload: dict, source: str = "webhook") -> tuple[StripeEvent, bool]:
    """Store an event once by its Stripe id; (event, stored now). Processing is asked for after commit."""
    with transaction.atomic():
        event, created = StripeEvent.objects.get_or_create(
            stripe_id=payload["id"],
            defaults={
                "type": str(payload.get("type", ""))[:100],
                "stripe_created": stripe_time(payload.get("created")) or timezone.now(),
                "livemode": bool(payload.get("livemode", False)),
                "payload": payload,
                "source": source,
            },
        )
        if created:
            from payments.tasks import process_stripe_event

            transaction.on_commit(partial(process_stripe_event.delay, event.pk), robust=True)
    return event, created


class VersionClaim(StrEnum):
    OLDER = "older"  # older than the state applied: refuse it
    NEWER = "newer"  # newer (or the first seen): apply it
    TIE = "tie"  # created in the same second as the state applied: its order is unknown


def object_version_claim(*, stripe_id: str, version: datetime) -> VersionClaim:
    """How state as of `version` compares with what was applied to a Stripe object (recording it if newer).

    Takes the object's row lock (inserting it the first time), so two events
    for one object are applied one after the other, in the caller's
    transaction. Stripe's `created` is in whole seconds: two events of one
    second tie, and the caller must not trust delivery order between them.
    """
    row = StripeObjectVersion.objects.select_for_update().filter(stripe_id=stripe_id).first()
    if row is None:
        row, created = StripeObjectVersion.objects.get_or_create(stripe_id=stripe_id, defaults={"version": version})
        if created:  # ours until commit: a concurrent insert waits on the unique index, then finds it
            return VersionClaim.NEWER
        row = StripeObjectVersion.objects.select_for_update().get(pk=row.pk)
    if version < row.version:
        return VersionClaim.OLDER
    if version == row.version:
        return VersionClaim.TIE
    StripeObjectVersion.objects.filter(pk=row.pk).update(version=version, updated_at=timezone.now())
    return VersionClaim.NEWER


# --- handlers: (data.object, event) -> (status, result) -------------------------------

Outcome = tuple[str, str]
PROCESSED, IGNORED = StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED
# An event that came before the one it follows (a refund or dispute before the payment's grant, a
# dispute's close before its opening) is left `received`: the sweep retries it until its
# predecessor has been applied, at most DEFER_MAX_ATTEMPTS times, then it is `failed` (Sentry).
DEFERRED = StripeEvent.Status.RECEIVED
DEFER_MAX_ATTEMPTS = 200
# A handler that raised (Stripe unreachable, a bug) is retried by the sweep after
# 2, 4, 8, ... minutes, at most 6 hours apart; the FAIL_MAX_ATTEMPTS-th failure gives up
# (retry_at empty, Sentry). About 14.5 hours from the first failure to the last retry.
FAIL_MAX_ATTEMPTS = 10
RETRY_MAX_DELAY = timedelta(hours=6)


def retry_delay(failures: int) -> timedelta:
    """How long after its `failures`-th failure an event is retried: 2**failures minutes, at most 6 hours."""
    return min(timedelta(minutes=2 ** min(failures, 20)), RETRY_MAX_DELAY)


def _waits_for_payment(purchase: Purchase) -> Outcome | None:
    """Defer while the purchase is not granted yet; ignore for a purchase that failed; None: go ahead."""
    if purchase.grant_entry_id is not None:
        return None
    if purchase.status == Purchase.Status.FAILED:
        return IGNORED, f"Purchase {purchase.public_id} failed: nothing was granted."
    return DEFERRED, f"Waiting for purchase {purchase.public_id} to be paid and granted."


def _id(value) -> str:
    """A Stripe reference, expanded (an object) or not (its id)."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _metadata(obj: dict) -> dict:
    return obj.get("metadata") or {}


def _on_checkout_completed(obj: dict, event: StripeEvent) -> Outcome:
    if obj.get("mode", "payment") != "payment":
        return IGNORED, "Not a payment-mode session."
    if obj.get("payment_status") not in ("paid", "no_payment_required"):
        return IGNORED, f"Session not paid ({obj.get('payment_status')}); payment_intent.succeeded will follow."
    purchase = purchases.purchase_find(
        public_id=_metadata(obj).get("purchase") or obj.get("client_reference_id") or "",
        checkout_session_id=obj.get("id", ""),
        payment_intent_id=obj.get("payment_intent") or "",
    )
    if purchase is None:
        return IGNORED, "No purchase matches this session."
    purchase, granted = purchases.purchase_fulfil(
        purchase=purchase, payment_intent_id=obj.get("payment_intent") or "", customer_id=obj.get("customer") or ""
    )
    return PROCESSED, f"{'Granted' if granted else 'Already granted'}: purchase {purchase.public_id}."


def _on_checkout_expired(obj: dict, event: StripeEvent) -> Outcome:
    """An abandoned checkout: its pending purchase fails (a paid one is never un-paid)."""
    purchase = purchases.purchase_find(
        public_id=_metadata(obj).get("purchase") or obj.get("client_reference_id") or "",
        checkout_session_id=obj.get("id", ""),
    )
    if purchase is None:
        return IGNORED, "No purchase matches this session."
    purchase = purchases.purchase_fail(purchase=purchase, reason="The checkout session expired unpaid.")
    return PROCESSED, f"Purchase {purchase.public_id} is {purchase.status}."


def _on_payment_intent_succeeded(obj: dict, event: StripeEvent) -> Outcome:
    purchase = purchases.purchase_find(public_id=_metadata(obj).get("purchase", ""), payment_intent_id=obj["id"])
    if purchase is None:
        return IGNORED, "No purchase matches this payment intent."
    purchase, granted = purchases.purchase_fulfil(
        purchase=purchase,
        payment_intent_id=obj["id"],
        charge_id=_id(obj.get("latest_charge")),
        customer_id=_id(obj.get("customer")),
    )
    return PROCESSED, f"{'Granted' if granted else 'Already granted'}: purchase {purchase.public_id}."


def _on_payment_intent_failed(obj: dict, event: StripeEvent) -> Outcome:
    purchase = purchases.purchase_find(public_id=_metadata(obj).get("purchase", ""), payment_intent_id=obj["id"])
    if purchase is None:
        return IGNORED, "No purchase matches this payment intent."
    error = (obj.get("last_payment_error") or {}).get("message") or "payment failed"
    if purchase.kind == Purchase.Kind.AUTO_RECHARGE:
        from payments.services.auto_recharge import auto_recharge_failed

        auto_recharge_failed(purchase=purchase, reason=error)
    else:
        purchases.purchase_fail(purchase=purchase, reason=error)
    return PROCESSED, f"Purchase {purchase.public_id} failed: {error}"


def _purchase_by_payment_intent(payment_intent_id: str) -> Purchase | None:
    """The purchase a PaymentIntent names in its metadata, asked of Stripe.

    A charge or a dispute does not carry our metadata, and its payment intent
    id is stored on the purchase only when the payment is reported; a refund
    or dispute arriving before that would find nothing and lose its clawback.
    So ask Stripe for the PaymentIntent (it carries `purchase`, see
    `checkout_session_create` and auto-recharge). No such metadata: not ours.
    A Stripe error propagates: the event fails and is retried later. Only the
    event's row is locked here (no purchase, no wallet).
    """
    if not payment_intent_id:
        return None
    intent = stripe_client().v1.payment_intents.retrieve(payment_intent_id).to_dict()
    public_id = str((intent.get("metadata") or {}).get("purchase") or "")
    return purchases.purchase_find(public_id=public_id) if public_id else None


def _charge_purchase(obj: dict) -> Purchase | None:
    payment_intent_id = _id(obj.get("payment_intent"))
    return (
        purchases.purchase_find(public_id=_metadata(obj).get("purchase", ""), payment_intent_id=payment_intent_id)
        or Purchase.objects.filter(stripe_charge_id=obj.get("id") or "-").first()
        or _purchase_by_payment_intent(payment_intent_id)
    )


def _on_charge_refunded(obj: dict, event: StripeEvent) -> Outcome:
    purchase = _charge_purchase(obj)
    if purchase is None:
        return IGNORED, "No purchase matches this charge."
    if (waiting := _waits_for_payment(purchase)) is not None:
        return waiting
    purchase = purchases.purchase_refund_sync(purchase=purchase, amount_refunded_minor=int(obj["amount_refunded"]))
    return PROCESSED, (
        f"Purchase {purchase.public_id}: refunded {purchase.refunded_minor} minor units, "
        f"clawed back {purchase.clawed_back}, unrecovered {purchase.unrecovered}."
    )


def _dispute_purchase(obj: dict) -> Purchase | None:
    payment_intent_id = _id(obj.get("payment_intent"))
    return (
        purchases.purchase_find(payment_intent_id=payment_intent_id)
        or Purchase.objects.filter(stripe_charge_id=_id(obj.get("charge")) or "-").first()
        or _purchase_by_payment_intent(payment_intent_id)
    )


def _on_dispute_created(obj: dict, event: StripeEvent) -> Outcome:
    purchase = _dispute_purchase(obj)
    if purchase is None:
        return IGNORED, "No purchase matches this dispute."
    if (waiting := _waits_for_payment(purchase)) is not None:
        return waiting
    purchase = purchases.purchase_dispute_open(purchase=purchase, dispute_id=obj["id"])
    return PROCESSED, f"Purchase {purchase.public_id} disputed; hold {purchase.dispute_hold_id or 'none'}."


def _on_dispute_closed(obj: dict, event: StripeEvent) -> Outcome:
    purchase = _dispute_purchase(obj)
    if purchase is None:
        return IGNORED, "No purchase matches this dispute."
    opened = StripeEvent.objects.filter(
        type="charge.dispute.created", status=PROCESSED, payload__data__object__id=obj["id"]
    ).exists()
    if not opened:
        return DEFERRED, f"Waiting for dispute {obj['id']} to be opened first."
    won = obj.get("status") in ("won", "warning_closed")
    purchase = purchases.purchase_dispute_close(
        purchase=purchase, dispute_id=obj["id"], won=won, amount_minor=int(obj.get("amount") or 0)
    )
    return (
        PROCESSED,
        f"Dispute {obj['id']} {'won' if won else 'lost'}; purchase {purchase.public_id} {purchase.status}.",
    )


def _subscription_now(subscription_id: str) -> dict | None:
    """The subscription as Stripe has it now; None if Stripe no longer knows it (404, resource_missing)."""
    try:
        return stripe_client().v1.subscriptions.retrieve(subscription_id).to_dict(for_json=True)
    except stripe.InvalidRequestError as exc:
        if exc.code == "resource_missing" or exc.http_status == 404:
            return None
        raise


def _on_subscription(obj: dict, event: StripeEvent) -> Outcome:
    claim = object_version_claim(stripe_id=obj["id"], version=event.stripe_created)
    if claim == VersionClaim.OLDER:
        return IGNORED, "Older than the subscription state already applied."
    note = ""
    if claim == VersionClaim.TIE:
        # Same second as the state applied: either may be the newer, so apply Stripe's current
        # state instead of this payload. Asked under the object's row lock on purpose: a second
        # event of that second waits for this one and then asks again (ties are rare; the lock
        # is on this subscription's version row only, no wallet or purchase). A Stripe error
        # fails the event, to be retried. Gone from Stripe (404): only the payload is left.
        current = _subscription_now(obj["id"])
        obj, note = (current, " (Stripe's current state: an event of the same second)") if current else (obj, "")
    status, result = subscription_apply(obj, deleted=event.type == "customer.subscription.deleted")
    return status, result + note


def _on_invoice_paid(obj: dict, event: StripeEvent) -> Outcome:
    return invoice_paid_apply(obj)


HANDLERS: dict[str, Callable[[dict, StripeEvent], Outcome]] = {
    "checkout.session.completed": _on_checkout_completed,
    "checkout.session.async_payment_succeeded": _on_checkout_completed,
    "checkout.session.expired": _on_checkout_expired,
    "payment_intent.succeeded": _on_payment_intent_succeeded,
    "payment_intent.payment_failed": _on_payment_intent_failed,
    "charge.refunded": _on_charge_refunded,
    "charge.dispute.created": _on_dispute_created,
    "charge.dispute.closed": _on_dispute_closed,
    "customer.subscription.created": _on_subscription,
    "customer.subscription.updated": _on_subscription,
    "customer.subscription.deleted": _on_subscription,
    "invoice.paid": _on_invoice_paid,
}


def stripe_event_process(*, event_id: int, force: bool = False, only_if_due: bool = False) -> StripeEvent:
    """Apply a stored event, unless it already was (`force`: again, e.g. the admin's reprocess; still idempotent).

    A handler's failure is recorded on the event (status `failed`, the
    error as result) and reported to Sentry; nothing it did is kept. A
    failure schedules a retry (`retry_at`, see `retry_delay`) until the
    FAIL_MAX_ATTEMPTS-th; an event that waited too long (DEFER_MAX_ATTEMPTS)
    fails without one, since retrying later would only wait again.
    """
    with transaction.atomic():
        event = StripeEvent.objects.select_for_update().get(pk=event_id)
        if event.status in (StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED) and not force:
            return event
        if only_if_due and event.status == StripeEvent.Status.FAILED and not _retry_due(event):
            return event  # the sweep's retry, already run by another worker (now scheduled later, or given up)
        handler = HANDLERS.get(event.type)
        event.attempts += 1
        if handler is None:
            status, result = IGNORED, "No handler for this event type."
        else:
            try:
                with transaction.atomic():
                    status, result = handler(event.payload["data"]["object"], event)
            except Exception as exc:
                logger.exception("Stripe event %s (%s) failed", event.stripe_id, event.type)
                sentry_sdk.capture_exception(exc)
                status, result = StripeEvent.Status.FAILED, f"{type(exc).__name__}: {exc}"
                event.failures += 1
        now = timezone.now()
        event.retry_at = None
        if status == DEFERRED and event.attempts >= DEFER_MAX_ATTEMPTS:
            status, result = StripeEvent.Status.FAILED, f"Gave up after {event.attempts} attempts: {result}"
            _report_given_up(event, result)
        elif status == StripeEvent.Status.FAILED and event.failures >= FAIL_MAX_ATTEMPTS:
            result = f"Gave up after {event.failures} failures: {result}"
            _report_given_up(event, result)
        elif status == StripeEvent.Status.FAILED:
            event.retry_at = now + retry_delay(event.failures)
        event.status, event.result = status, result[:5000]
        event.processed_at = now
        event.save(update_fields=["status", "result", "attempts", "failures", "retry_at", "processed_at"])
        return event


def _retry_due(event: StripeEvent) -> bool:
    return event.retry_at is not None and event.retry_at <= timezone.now()


def _report_given_up(event: StripeEvent, result: str) -> None:
    message = f"Stripe event {event.stripe_id} ({event.type}): {result}"
    transaction.on_commit(partial(sentry_sdk.capture_message, message, level="error"), robust=True)
