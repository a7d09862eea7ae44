"""POST /api/v1/charges/{id}/refunds, GET /accounts/{id}/refunds and /refunds/stats."""

from decimal import Decimal

import pytest

from billing.models import Wallet
from refunds.models import RefundLog
from tests.factories import account_key, funded_account, service_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(api_client):
    _, secret = service_key()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api_client


def charge(client, account, amount="1.00", route="/api/tarot/chat") -> dict:
    response = client.post(
        "/api/v1/charges", {"account": account.public_id, "amount": amount, "route": route}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()


def refund(client, charge_id, **payload):
    return client.post(f"/api/v1/charges/{charge_id}/refunds", payload, format="json")


def test_seed_003_flow_timeout_refunded_success_not_and_history_and_stats_show_it(service):
    account = funded_account("10.00")
    failed = charge(service, account)  # the AI backend then timed out
    charge(service, account)  # this call succeeded: no refund
    response = refund(
        service,
        failed["id"],
        reason="timeout",
        api_route="/api/tarot/chat",
        error_message="Backend timed out after 60s",
        metadata={"errorType": "TimeoutError"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("rfd_") and body["object"] == "refund"
    assert (body["amount"], body["reason"], body["charge"], body["charge_refundable"]) == (
        "1.00",
        "timeout",
        failed["id"],
        "0.00",
    )
    assert body["refund_entry"]["kind"] == "refund" and body["refund_entry"]["related_entry"] == failed["id"]
    assert Wallet.objects.get(account=account).balance == Decimal("9.00")

    history = service.get(f"/api/v1/accounts/{account.public_id}/refunds").json()["data"]
    assert [(r["charge"], r["reason"], r["error_message"]) for r in history] == [
        (failed["id"], "timeout", "Backend timed out after 60s")
    ]
    stats = service.get("/api/v1/refunds/stats", {"api_route": "/api/tarot/chat"}).json()
    assert stats["count"] == 1
    assert stats["by_credit_type"] == [{"credit_type": "credits", "count": 1, "total_amount": "1.00"}]
    assert stats["by_reason"] == [{"reason": "timeout", "credit_type": "credits", "count": 1, "total_amount": "1.00"}]


def test_partial_refunds_past_the_charge_refuse_the_last_with_409(service):
    account = funded_account("10.00")
    entry = charge(service, account, "3.00")
    assert refund(service, entry["id"], amount="2.00", reason="api_error").json()["charge_refundable"] == "1.00"
    response = refund(service, entry["id"], amount="1.01", reason="api_error")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "refund_exceeds_charge"
    assert response.json()["error"]["refundable"] == "1.00"
    assert refund(service, entry["id"], reason="api_error").json()["amount"] == "1.00"
    response = refund(service, entry["id"], reason="api_error")
    assert response.status_code == 409 and response.json()["error"]["code"] == "charge_fully_refunded"


def test_refund_is_idempotent_by_key(service):
    account = funded_account("10.00")
    entry = charge(service, account, "3.00")
    url = f"/api/v1/charges/{entry['id']}/refunds"
    first = service.post(url, {"amount": "1.00", "reason": "duplicate"}, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    second = service.post(url, {"amount": "1.00", "reason": "duplicate"}, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    assert first.status_code == second.status_code == 201 and first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert RefundLog.objects.count() == 1
    other = service.post(url, {"amount": "2.00", "reason": "duplicate"}, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"


def test_refusing_a_grant_answers_not_a_charge(service):
    account = funded_account("10.00")
    grant = service.get(f"/api/v1/accounts/{account.public_id}/transactions").json()["data"][0]
    response = refund(service, grant["id"], reason="other")
    assert response.status_code == 422 and response.json()["error"]["code"] == "not_a_charge"


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({}, "reason"),
        ({"reason": "because"}, "reason"),
        ({"reason": "other", "amount": 1}, "amount"),
        ({"reason": "other", "amount": "0.001"}, "amount"),
    ],
)
def test_bad_refund_input_is_400(service, payload, param):
    entry = charge(service, funded_account("10.00"))
    response = refund(service, entry["id"], **payload)
    assert response.status_code == 400 and response.json()["error"]["param"] == param


def test_unknown_charge_is_404(service):
    response = refund(service, "txn_missing", reason="other")
    assert response.status_code == 404 and response.json()["error"]["code"] == "charge_not_found"


def test_account_keys_cannot_refund_and_see_only_their_own_history(api_client):
    mine, other = funded_account("10.00"), funded_account("10.00")
    _, secret = account_key(mine)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    own = charge(api_client, mine)
    assert refund(api_client, own["id"], reason="timeout").status_code == 403
    assert api_client.get(f"/api/v1/accounts/{mine.public_id}/refunds").status_code == 200
    assert api_client.get(f"/api/v1/accounts/{other.public_id}/refunds").status_code == 404


def test_stats_filter_by_period_and_split_by_reason(service):
    account = funded_account("10.00")
    for reason in ["timeout", "timeout", "parsing_error"]:
        refund(service, charge(service, account, "1.00", route="/api/x")["id"], reason=reason, api_route="/api/x")
    stats = service.get("/api/v1/refunds/stats").json()
    assert stats["count"] == 3
    assert {(r["reason"], r["count"], r["total_amount"]) for r in stats["by_reason"]} == {
        ("parsing_error", 1, "1.00"),
        ("timeout", 2, "2.00"),
    }
    assert stats["by_route"] == [{"api_route": "/api/x", "credit_type": "credits", "count": 3, "total_amount": "3.00"}]
    future = service.get("/api/v1/refunds/stats", {"since": "2999-01-01T00:00:00Z"}).json()
    assert future["count"] == 0
    assert service.get("/api/v1/refunds/stats", {"since": "yesterday"}).status_code == 400
