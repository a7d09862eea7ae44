"""Every amount on the console's pages is shown at exactly its credit type's scale.

One account per credit type (scale 0, 2 and 6), with a grant, charges, a
partial refund and a pending hold: the account, wallet, entry, hold and
refund pages, the lists and the refund form must show each amount (every
`<span class="money">`, which the money columns and the `money` filter
write) with thousands separators and exactly `scale` places, and nothing
like a stored nine-place tail or "0E-9" anywhere on the page.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from billing.models import Hold, Wallet
from billing.services import Actor
from refunds.models import RefundLog
from refunds.services import refund_issue
from tests.factories import CreditTypeFactory, UserFactory, charge_for, funded_account, hold_for

pytestmark = pytest.mark.django_db

MONEY = re.compile(r'<span class="money">([^<]*)</span>')
RAW_TAIL = re.compile(r"\d\.\d{7,9}(?!\d)|\dE-\d|-0\.0+\b")


def amount_pattern(scale: int) -> re.Pattern:
    places = rf"\.\d{{{scale}}}" if scale else ""
    return re.compile(rf"^-?\d{{1,3}}(,\d{{3}})*{places}$")


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_superuser=True))
    return client


def pages_for(scale: int) -> list[str]:
    credit_type = CreditTypeFactory(code=f"scale{scale}", scale=scale)
    one = Decimal(1).scaleb(-scale)
    account = funded_account(Decimal("12345.678901").quantize(one), credit_type=credit_type)
    charge = charge_for(account, Decimal("1234.5").quantize(one), credit_type=credit_type, route="/api/x")
    charge_for(account, Decimal("7").quantize(one), credit_type=credit_type)
    refund = refund_issue(
        charge=charge, amount=Decimal("4.25").quantize(one) or one, reason="timeout", actor=Actor.system()
    )
    hold = hold_for(account, Decimal("10.5").quantize(one), credit_type=credit_type)
    wallet = Wallet.objects.get(account=account, credit_type=credit_type)
    urls = [
        f"/admin/accounts/account/{account.pk}/change/",
        f"/admin/billing/wallet/{wallet.pk}/change/",
        f"/admin/billing/wallet/?credit_type__id__exact={credit_type.pk}",
        f"/admin/billing/ledgerentry/?credit_type__id__exact={credit_type.pk}",
        f"/admin/billing/ledgerentry/{charge.pk}/change/",
        f"/admin/billing/ledgerentry/{charge.pk}/refund/",
        f"/admin/billing/ledgerentry/{refund.refund_entry_id}/change/",
        f"/admin/billing/hold/?credit_type__id__exact={credit_type.pk}",
        f"/admin/billing/hold/{hold.pk}/change/",
        f"/admin/refunds/refundlog/?credit_type__id__exact={credit_type.pk}",
        f"/admin/refunds/refundlog/{RefundLog.objects.get(pk=refund.pk).pk}/change/",
    ]
    assert Hold.objects.filter(pk=hold.pk, status=Hold.Status.PENDING).exists()
    return urls


@pytest.mark.parametrize("scale", [0, 2, 6])
def test_every_amount_on_the_pages_has_its_credit_types_scale(admin_client, scale):
    urls = pages_for(scale)
    pattern = amount_pattern(scale)
    for url in urls:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        amounts = MONEY.findall(page)
        assert amounts, f"no amounts on {url}"
        wrong = [amount for amount in amounts if not pattern.match(amount)]
        assert wrong == [], f"{url}: {wrong} not at scale {scale}"
        tails = [page[max(0, m.start() - 80) : m.end() + 20] for m in RAW_TAIL.finditer(page)]
        assert tails == [], url


def test_thousands_are_separated_on_the_ledger_list(admin_client):
    urls = pages_for(2)
    page = admin_client.get(urls[3]).content.decode()
    assert {"12,345.68", "-1,234.50", "11,111.18"} <= set(MONEY.findall(page))
