"""The customer portal: a signed, expiring link to one account's page.

The link carries the account's public id signed with the project's
SECRET_KEY (`django.core.signing.TimestampSigner`, its own salt); it expires
after CREDITLEDGER_PORTAL_LINK_TTL_S. It shows that account only and no
staff data: balances, usage, the account's own history, refunds and
purchases, and buttons to buy the active packs through Stripe Checkout.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Account
from billing.models import LedgerEntry, Wallet
from config.errors import DomainError
from config.money import money_display
from payments.currency import price_display
from payments.selectors import (
    daily_usage_series,
    pack_get_active,
    packs_active,
    portal_history,
    purchases_for_account,
)
from payments.services.purchases import checkout_session_create

SALT = "payments.portal"


@dataclass(frozen=True)
class PortalLink:
    path: str
    expires_at: datetime


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def portal_link_create(*, account: Account) -> PortalLink:
    token = _signer().sign(account.public_id)
    expires_at = timezone.now() + timedelta(seconds=settings.CREDITLEDGER_PORTAL_LINK_TTL_S)
    return PortalLink(path=reverse("portal", args=[token]), expires_at=expires_at)


class PortalLinkRefused(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        self.status, self.title, self.message = status, title, message


def portal_account(token: str) -> Account:
    """The account a link opens, or PortalLinkRefused (410 expired, 403 tampered or unknown)."""
    try:
        public_id = _signer().unsign(token, max_age=timedelta(seconds=settings.CREDITLEDGER_PORTAL_LINK_TTL_S))
    except signing.SignatureExpired as exc:
        raise PortalLinkRefused(410, "This link has expired", "Ask the app you came from for a new link.") from exc
    except signing.BadSignature as exc:
        raise PortalLinkRefused(403, "This link is not valid", "Check the link, or ask for a new one.") from exc
    account = Account.objects.filter(public_id=public_id).first()
    if account is None:
        raise PortalLinkRefused(403, "This link is not valid", "Check the link, or ask for a new one.")
    return account


def _refused(request: HttpRequest, refusal: PortalLinkRefused) -> HttpResponse:
    return render(
        request,
        "payments/portal_refused.html",
        {"title": refusal.title, "message": refusal.message},
        status=refusal.status,
    )


def _chart(series: list[tuple], scale: int) -> dict:
    """An inline SVG bar chart of daily usage (drawn here: nothing is loaded from another host)."""
    width, height, pad = 600, 160, 20
    top = max((value for _, value in series), default=Decimal(0))
    step = (width - 2 * pad) / max(len(series), 1)
    bars = []
    for i, (day, value) in enumerate(series):
        h = float(value / top) * (height - 2 * pad) if top > 0 else 0.0
        bars.append(
            {
                "x": round(pad + i * step + 1, 1),
                "y": round(height - pad - h, 1),
                "w": round(max(step - 2, 1), 1),
                "h": round(h, 1),
                "label": f"{day:%Y-%m-%d}: {money_display(value, scale)}",
            }
        )
    return {"width": width, "height": height, "bars": bars, "max": money_display(top, scale)}


@require_GET
def portal_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        account = portal_account(token)
    except PortalLinkRefused as refusal:
        return _refused(request, refusal)
    wallets = list(Wallet.objects.filter(account=account).select_related("credit_type").order_by("credit_type__code"))
    usage = daily_usage_series(account)
    balances = [
        {
            "credit_type": w.credit_type.name,
            "code": w.credit_type.code,
            "balance": money_display(w.balance, w.credit_type),
            "available": money_display(w.available, w.credit_type),
            "chart": _chart(usage.get(w.credit_type_id, []) or _empty_series(), w.credit_type.scale),
        }
        for w in wallets
    ]
    history = [
        {
            "id": e.public_id,
            "label": label,
            "detail": detail,
            "is_refund": e.kind == LedgerEntry.Kind.REFUND,
            "amount": money_display(e.amount, e.credit_type),
            "created_at": e.created_at,
        }
        for e, label, detail in portal_history(account)
    ]
    purchases = [
        {
            "id": p.public_id,
            "credits": money_display(p.credits, p.credit_type),
            "price": price_display(p.amount_minor, p.currency),
            "status": p.get_status_display(),
            "created_at": p.created_at,
        }
        for p in purchases_for_account(account)
    ]
    packs = [
        {
            "id": pack.public_id,
            "name": pack.name,
            "credits": money_display(pack.credits, pack.credit_type),
            "price": price_display(pack.price_minor, pack.currency),
        }
        for pack in packs_active()
    ]
    context = {
        "account": account,
        "token": token,
        "balances": balances,
        "history": history,
        "purchases": purchases,
        "packs": packs,
        "nonce": uuid.uuid4().hex,
        "notice": request.GET.get("checkout", ""),
    }
    return render(request, "payments/portal.html", context)


def _empty_series() -> list[tuple]:
    today = timezone.localdate()
    return [(today - timedelta(days=29 - i), Decimal(0)) for i in range(30)]


@require_POST
def portal_checkout(request: HttpRequest, token: str) -> HttpResponse:
    """A "Buy credits" button: open a Checkout Session for the pack and send the browser to it."""
    try:
        account = portal_account(token)
    except PortalLinkRefused as refusal:
        return _refused(request, refusal)
    nonce = request.POST.get("nonce", "")
    if not (0 < len(nonce) <= 64 and nonce.isalnum()):
        nonce = uuid.uuid4().hex
    back = request.build_absolute_uri(reverse("portal", args=[token]))
    try:
        pack = pack_get_active(request.POST.get("pack", ""))
        with transaction.atomic():
            purchase = checkout_session_create(
                account=account,
                pack=pack,
                success_url=f"{back}?checkout=success",
                cancel_url=f"{back}?checkout=cancel",
                idempotency_key=f"portal-{nonce}-{pack.public_id}",  # one page, several packs
            )
    except DomainError as error:
        return _refused(request, PortalLinkRefused(error.status, "Checkout is not available", error.message))
    return HttpResponseRedirect(purchase.checkout_url)
