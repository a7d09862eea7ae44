"""Prices in minor units are shown with their currency's own digits (Babel's CLDR data, Stripe's where it differs)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from payments.currency import STRIPE_TWO_DIGITS, minor_to_major, minor_unit_digits, price_display
from payments.portal import portal_link_create
from tests.factories import AutoRechargeFactory, CreditPackFactory, PurchaseFactory, funded_account

# https://docs.stripe.com/currencies#zero-decimal and #three-decimal
STRIPE_ZERO_DECIMAL = "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()
STRIPE_THREE_DECIMAL = "BHD JOD KWD OMR TND".split()


def test_usd_has_two_digits_and_shows_dollars_and_cents():
    assert minor_unit_digits("usd") == 2
    assert minor_to_major(1050, "usd") == Decimal("10.50")
    assert price_display(1050, "usd") == "$10.50"


def test_jpy_has_no_minor_digits_so_1050_is_1050_yen():
    assert minor_unit_digits("jpy") == 0
    assert minor_to_major(1050, "jpy") == Decimal(1050)
    assert price_display(1050, "jpy") == "¥1,050"


def test_kwd_has_three_digits_so_1050_fils_is_1_050_dinars():
    assert minor_unit_digits("kwd") == 3
    assert minor_to_major(1050, "kwd") == Decimal("1.050")
    assert "1.050" in price_display(1050, "kwd") and "KWD" in price_display(1050, "kwd")


def test_where_stripe_counts_hundredths_but_cldr_shows_none_stripe_wins():
    assert minor_unit_digits("huf") == 2  # CLDR says 0; Stripe takes HUF amounts in hundredths
    assert price_display(100000, "huf").endswith("1,000.00")


@pytest.mark.parametrize("code", STRIPE_ZERO_DECIMAL)
def test_stripes_zero_decimal_currencies_have_no_minor_digits(code):
    assert minor_unit_digits(code) == 0


@pytest.mark.parametrize("code", STRIPE_THREE_DECIMAL)
def test_stripes_three_decimal_currencies_have_three_minor_digits(code):
    assert minor_unit_digits(code) == 3


def test_the_stripe_overrides_name_no_zero_or_three_decimal_currency():
    assert not STRIPE_TWO_DIGITS & {*STRIPE_ZERO_DECIMAL, *STRIPE_THREE_DECIMAL}


@pytest.mark.django_db
def test_the_portal_shows_a_yen_pack_and_purchase_in_yen(client):
    account = funded_account("10.00")
    pack = CreditPackFactory(name="Yen pack", price_minor=1200, currency="jpy")
    PurchaseFactory(account=account, pack=pack, currency="jpy")
    page = client.get(portal_link_create(account=account).path).content.decode()
    assert page.count("¥1,200") == 2 and "12.00" not in page


@pytest.mark.django_db
def test_the_admin_shows_prices_caps_and_the_account_panel_in_the_currencys_digits(admin_client):
    pack = CreditPackFactory(price_minor=1200, currency="jpy")
    purchase = PurchaseFactory(pack=pack, currency="jpy")
    AutoRechargeFactory(pack=CreditPackFactory(price_minor=1050, currency="kwd"), monthly_cap_minor=5000)
    packs = admin_client.get(reverse("admin:payments_creditpack_changelist")).content.decode()
    purchases = admin_client.get(reverse("admin:payments_purchase_changelist")).content.decode()
    recharges = admin_client.get(reverse("admin:payments_autorecharge_changelist")).content.decode()
    account = admin_client.get(reverse("admin:accounts_account_change", args=[purchase.account.pk])).content.decode()
    assert "¥1,200" in packs and "¥1,200" in purchases and "¥1,200" in account
    assert "5.000" in recharges and "KWD" in recharges
