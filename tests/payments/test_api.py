"""Packs and Checkout Sessions through the API, against localstripe."""

from __future__ import annotations

import pytest
from django.db import transaction

from payments.models import Purchase
from payments.services.purchases import checkout_session_create
from tests.factories import AccountFactory, CreditPackFactory, account_key, service_key

pytestmark = pytest.mark.django_db


def _service_client(api_client):
    _, secret = service_key()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api_client


def test_packs_lists_the_active_packs_cheapest_first(api_client):
    CreditPackFactory(name="Big", price_minor=5000, credits="600.00")
    CreditPackFactory(name="Small", price_minor=500, credits="50.00")
    CreditPackFactory(name="Old", is_active=False)
    body = _service_client(api_client).get("/api/v1/packs").json()
    assert [(p["name"], p["credits"], p["price"], p["currency"]) for p in body["data"]] == [
        ("Small", "50.00", 500, "usd"),
        ("Big", "600.00", 5000, "usd"),
    ]


def test_a_checkout_session_is_created_with_the_purchase_in_its_metadata(api_client, stripe_on):
    account = AccountFactory()
    pack = CreditPackFactory()
    response = _service_client(api_client).post(
        "/api/v1/checkout-sessions",
        {"account": account.public_id, "pack": pack.public_id, "success_url": "https://app.test/ok",
         "cancel_url": "https://app.test/no"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    purchase = Purchase.objects.get(public_id=body["id"])
    assert purchase.status == "pending" and purchase.stripe_checkout_session_id.startswith("cs_test_")
    assert body["checkout_url"].startswith(stripe_on) and body["status"] == "pending" and body["credits"] == "100.00"


def test_a_retried_checkout_replays_the_first_answer_and_opens_one_session(api_client, stripe_on):
    account = AccountFactory()
    _, secret = account_key(account)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    pack = CreditPackFactory()
    data = {"pack": pack.public_id, "success_url": "https://app.test/ok", "cancel_url": "https://app.test/no"}
    first = api_client.post("/api/v1/checkout-sessions", data, format="json", idempotency_key="k-1")
    again = api_client.post("/api/v1/checkout-sessions", data, format="json", idempotency_key="k-1")
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    assert Purchase.objects.count() == 1


def test_checkout_needs_an_idempotency_key(api_client, stripe_on):
    pack = CreditPackFactory()
    response = _service_client(api_client).post(
        "/api/v1/checkout-sessions",
        {"account": AccountFactory().public_id, "pack": pack.public_id, "success_url": "https://a.test/",
         "cancel_url": "https://a.test/"},
        format="json",
        idempotency_key=None,
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"


def test_an_unknown_or_inactive_pack_is_404(api_client, stripe_on):
    pack = CreditPackFactory(is_active=False)
    response = _service_client(api_client).post(
        "/api/v1/checkout-sessions",
        {"account": AccountFactory().public_id, "pack": pack.public_id, "success_url": "https://a.test/",
         "cancel_url": "https://a.test/"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "pack_not_found"


def test_without_stripe_configured_checkout_is_503_and_stores_nothing(api_client, settings):
    settings.STRIPE_SECRET_KEY = ""
    pack = CreditPackFactory()
    response = _service_client(api_client).post(
        "/api/v1/checkout-sessions",
        {"account": AccountFactory().public_id, "pack": pack.public_id, "success_url": "https://a.test/",
         "cancel_url": "https://a.test/"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "payments_not_configured"
    assert not Purchase.objects.exists()


def test_another_accounts_key_cannot_buy_for_it(api_client, stripe_on):
    mine, other = AccountFactory(), AccountFactory()
    _, secret = account_key(mine)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = api_client.post(
        "/api/v1/checkout-sessions",
        {"account": other.public_id, "pack": CreditPackFactory().public_id, "success_url": "https://a.test/",
         "cancel_url": "https://a.test/"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 404


def test_auto_recharge_is_set_and_read_per_credit_type(api_client):
    account = AccountFactory()
    pack = CreditPackFactory()
    client = _service_client(api_client)
    url = f"/api/v1/accounts/{account.public_id}/auto-recharge"
    body = {"pack": pack.public_id, "threshold": "20.00", "target": "150.00", "monthly_cap": 5000,
            "stripe_customer": "cus_abc", "stripe_payment_method": "pm_abc"}  # fmt: skip
    response = client.put(url, body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["target"] == "150.00" and response.json()["amount"] is None
    listed = client.get(url).json()["data"]
    assert [(c["credit_type"], c["threshold"], c["enabled"]) for c in listed] == [("credits", "20.00", True)]


def test_auto_recharge_needs_amount_or_target_not_both(api_client):
    account = AccountFactory()
    body = {"pack": CreditPackFactory().public_id, "threshold": "20.00", "amount": "10.00", "target": "150.00",
            "monthly_cap": 5000, "stripe_customer": "cus_abc", "stripe_payment_method": "pm_abc"}  # fmt: skip
    response = _service_client(api_client).put(
        f"/api/v1/accounts/{account.public_id}/auto-recharge", body, format="json"
    )
    assert response.status_code == 400


def test_a_portal_session_is_a_signed_link_to_the_accounts_page(api_client):
    account = AccountFactory()
    response = _service_client(api_client).post(f"/api/v1/accounts/{account.public_id}/portal-sessions")
    assert response.status_code == 201
    body = response.json()
    assert body["url"].startswith("http://testserver/portal/") and body["account"] == account.public_id
    assert api_client.get(body["url"]).status_code == 200


def test_an_account_key_cannot_open_another_accounts_portal(api_client):
    mine, other = AccountFactory(), AccountFactory()
    _, secret = account_key(mine)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api_client.post(f"/api/v1/accounts/{other.public_id}/portal-sessions").status_code == 404


def test_a_checkout_retried_after_our_transaction_rolled_back_gets_stripes_first_session(stripe_on):
    # Stripe (and the stand-in) answer a repeated idempotency key only for the very same parameters:
    # the retry must send the same purchase id, so it is derived from the account and the client's key.
    account, pack = AccountFactory(), CreditPackFactory()
    urls = {"success_url": "https://app.test/ok", "cancel_url": "https://app.test/no"}
    with transaction.atomic():
        first = checkout_session_create(account=account, pack=pack, idempotency_key="k-rolled-back", **urls)
        transaction.set_rollback(True)
    assert not Purchase.objects.exists()
    retried = checkout_session_create(account=account, pack=pack, idempotency_key="k-rolled-back", **urls)
    assert retried.public_id == first.public_id
    assert retried.stripe_checkout_session_id == first.stripe_checkout_session_id


def test_a_repeated_checkout_after_ours_committed_returns_the_same_purchase(stripe_on):
    account, pack = AccountFactory(), CreditPackFactory()
    urls = {"success_url": "https://app.test/ok", "cancel_url": "https://app.test/no"}
    first = checkout_session_create(account=account, pack=pack, idempotency_key="k-twice", **urls)
    again = checkout_session_create(account=account, pack=pack, idempotency_key="k-twice", **urls)
    assert again.pk == first.pk and Purchase.objects.count() == 1


def test_the_same_client_key_on_two_accounts_makes_two_purchases(stripe_on):
    pack = CreditPackFactory()
    urls = {"success_url": "https://app.test/ok", "cancel_url": "https://app.test/no"}
    one = checkout_session_create(account=AccountFactory(), pack=pack, idempotency_key="k-shared", **urls)
    two = checkout_session_create(account=AccountFactory(), pack=pack, idempotency_key="k-shared", **urls)
    assert one.public_id != two.public_id
    assert one.stripe_checkout_session_id != two.stripe_checkout_session_id
