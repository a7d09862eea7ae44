"""Payments in the admin: pages render, events reprocess idempotently, the account page shows unrecovered credits."""

from __future__ import annotations

import pytest
from django.urls import reverse

from billing.models import LedgerEntry
from payments.models import StripeEvent
from tests.factories import AutoRechargeFactory, CreditPackFactory, CreditTypeFactory, PurchaseFactory
from tests.payments.helpers import charge_refunded, checkout_completed, deliver, paid_purchase, spend

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["creditpack", "purchase", "stripeevent", "autorecharge"])
def test_the_changelists_render(admin_client, model):
    PurchaseFactory()
    assert admin_client.get(reverse(f"admin:payments_{model}_changelist")).status_code == 200


def test_a_purchase_page_links_its_stripe_objects_to_the_dashboard(admin_client):
    purchase = paid_purchase()
    page = admin_client.get(reverse("admin:payments_purchase_change", args=[purchase.pk])).content.decode()
    assert f"https://dashboard.stripe.com/payments/{purchase.stripe_payment_intent_id}" in page


def test_an_event_page_shows_its_payload_and_result(admin_client):
    stored = deliver(checkout_completed(PurchaseFactory()))
    page = admin_client.get(reverse("admin:payments_stripeevent_change", args=[stored.pk])).content.decode()
    assert "checkout.session.completed" in page and "Granted: purchase" in page and "payment_status" in page


def test_reprocess_runs_the_event_again_without_a_second_grant(admin_client):
    purchase = PurchaseFactory()
    stored = deliver(checkout_completed(purchase))
    response = admin_client.post(
        reverse("admin:payments_stripeevent_changelist"),
        {"action": "reprocess", "_selected_action": [stored.pk]},
        follow=True,
    )
    assert "1 event(s) reprocessed" in response.content.decode()
    assert StripeEvent.objects.get().attempts == 2
    assert LedgerEntry.objects.filter(account=purchase.account).count() == 1


def test_the_account_page_shows_unrecovered_credits(admin_client):
    purchase = paid_purchase()
    spend(purchase, "50.00")
    deliver(charge_refunded(purchase, amount_refunded=purchase.amount_minor))
    page = admin_client.get(reverse("admin:accounts_account_change", args=[purchase.account.pk])).content.decode()
    assert "Unrecovered" in page and purchase.public_id in page and "50.00" in page


def test_a_pack_can_be_added_in_the_admin(admin_client):
    from pricing.models import CreditType

    credit_type = CreditType.objects.get(code="credits")
    response = admin_client.post(
        reverse("admin:payments_creditpack_add"),
        {"name": "Starter", "credit_type": credit_type.pk, "credits": "250.00", "price_minor": 2500,
         "currency": "usd", "stripe_price_id": "", "is_active": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    assert CreditPackFactory._meta.model.objects.get(name="Starter").price_minor == 2500


def _auto_recharge_form(config, **overrides) -> dict:
    data = {
        "wallet": config.wallet_id, "pack": config.pack_id, "enabled": "on", "threshold": "20.00",
        "amount": "100.00", "target": "", "monthly_cap_minor": 5000, "stripe_customer_id": "cus_test",
        "stripe_payment_method_id": "pm_test",
    }  # fmt: skip
    data.update(overrides)
    return data


def test_turning_auto_recharge_back_on_in_the_admin_starts_from_no_failures(admin_client):
    config = AutoRechargeFactory(enabled=False, consecutive_failures=3, disabled_reason="3 failed payments in a row")
    url = reverse("admin:payments_autorecharge_change", args=[config.pk])
    response = admin_client.post(url, _auto_recharge_form(config))
    assert response.status_code == 302, response.content.decode()[:3000]
    config.refresh_from_db()
    assert config.enabled and config.consecutive_failures == 0 and config.disabled_reason == ""


def test_the_admin_refuses_a_pack_of_another_credit_type_than_the_wallets(admin_client):
    config = AutoRechargeFactory()
    other = CreditPackFactory(credit_type=CreditTypeFactory())
    url = reverse("admin:payments_autorecharge_change", args=[config.pk])
    response = admin_client.post(url, _auto_recharge_form(config, pack=other.pk))
    assert response.status_code == 200 and "another credit type" in response.content.decode()
    config.refresh_from_db()
    assert config.pack_id != other.pk


def _dashboard_url_at_start_up(**env: str) -> str:
    """STRIPE_DASHBOARD_URL as a fresh process loads it from these environment variables."""
    import os
    import subprocess
    import sys

    from django.conf import settings

    variables = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
         "print(settings.STRIPE_DASHBOARD_URL)"],
        env={**variables, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true", **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=settings.BASE_DIR,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_test_mode_key_links_to_the_dashboards_test_pages():
    assert _dashboard_url_at_start_up(STRIPE_SECRET_KEY="sk_test_123") == "https://dashboard.stripe.com/test"
    assert _dashboard_url_at_start_up(STRIPE_SECRET_KEY="rk_test_123") == "https://dashboard.stripe.com/test"


def test_a_live_key_links_to_the_dashboards_root_and_the_setting_wins():
    assert _dashboard_url_at_start_up(STRIPE_SECRET_KEY="sk_live_123") == "https://dashboard.stripe.com"
    assert (
        _dashboard_url_at_start_up(STRIPE_SECRET_KEY="sk_test_123", STRIPE_DASHBOARD_URL="https://stripe.example")
        == "https://stripe.example"
    )
