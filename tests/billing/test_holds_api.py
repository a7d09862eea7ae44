"""POST /api/v1/holds, /holds/{id}/capture and /release; GET /accounts/{id}/holds."""

from decimal import Decimal

import pytest

from billing.models import Hold, LedgerEntry, Wallet
from tests.factories import AccountFactory, PriceFactory, account_key, funded_account, service_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(api_client):
    _, secret = service_key()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api_client


def open_hold(client, account, amount="10.00", **extra):
    response = client.post("/api/v1/holds", {"account": account.public_id, "amount": amount, **extra}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def balance(client, account) -> dict:
    return client.get(f"/api/v1/accounts/{account.public_id}/balance?refresh=true").json()["balances"][0]


def test_create_hold_reserves_and_shows_held_and_available(service):
    account = funded_account("100.00")
    body = open_hold(service, account, "30.00", task_id="job-1", route="/api/chat", on_expiry="capture", expires_in=120)
    assert body["id"].startswith("hold_") and body["object"] == "hold" and body["status"] == "pending"
    assert (body["amount"], body["captured_amount"], body["on_expiry"]) == ("30.00", "0.00", "capture")
    shown = balance(service, account)
    assert (shown["balance"], shown["held"], shown["available"]) == ("100.00", "30.00", "70.00")


def test_hold_beyond_available_answers_402(service):
    account = funded_account("5.00")
    response = service.post("/api/v1/holds", {"account": account.public_id, "amount": "5.01"}, format="json")
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "insufficient_credits"


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({}, "amount"),
        ({"amount": 5}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"amount": "1", "expires_in": 0}, "expires_in"),
        ({"amount": "1", "on_expiry": "keep"}, "on_expiry"),
    ],
)
def test_bad_hold_input_is_400_with_the_field(service, payload, param):
    account = funded_account("5.00")
    response = service.post("/api/v1/holds", {"account": account.public_id, **payload}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_expires_in_above_the_maximum_is_refused(service, settings):
    settings.CREDITLEDGER_HOLD_MAX_EXPIRES_IN_S = 60
    account = funded_account("5.00")
    response = service.post(
        "/api/v1/holds", {"account": account.public_id, "amount": "1", "expires_in": 61}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_expires_in"


def test_capture_charges_the_final_amount_and_frees_the_rest(service):
    account = funded_account("100.00")
    hold = open_hold(service, account, "30.00")
    response = service.post(f"/api/v1/holds/{hold['id']}/capture", {"amount": "12.50"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["captured_amount"]) == ("captured", "12.50")
    entry = LedgerEntry.objects.get(public_id=body["capture_entry"])
    assert entry.kind == "charge" and entry.amount == Decimal("-12.50")
    assert balance(service, account)["available"] == "87.50"


def test_capture_zero_is_allowed(service):
    account = funded_account("10.00")
    hold = open_hold(service, account, "3.00")
    response = service.post(f"/api/v1/holds/{hold['id']}/capture", {"amount": "0"}, format="json")
    assert response.status_code == 200 and response.json()["capture_entry"] is None


def test_capture_needs_amount_or_usage(service):
    account = funded_account("10.00")
    hold = open_hold(service, account, "3.00")
    response = service.post(f"/api/v1/holds/{hold['id']}/capture", {}, format="json")
    assert response.status_code == 400


def test_release_then_capture_is_409_hold_not_pending(service):
    account = funded_account("10.00")
    hold = open_hold(service, account, "3.00")
    response = service.post(f"/api/v1/holds/{hold['id']}/release", {"reason": "backend down"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "released"
    response = service.post(f"/api/v1/holds/{hold['id']}/capture", {"amount": "1.00"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "hold_not_pending"
    assert response.json()["error"]["hold_status"] == "released"


def test_capture_with_the_same_idempotency_key_replays_and_charges_once(service):
    account = funded_account("10.00")
    hold = open_hold(service, account, "3.00")
    first = service.post(
        f"/api/v1/holds/{hold['id']}/capture", {"amount": "2.00"}, format="json", HTTP_IDEMPOTENCY_KEY="cap-1"
    )
    second = service.post(
        f"/api/v1/holds/{hold['id']}/capture", {"amount": "2.00"}, format="json", HTTP_IDEMPOTENCY_KEY="cap-1"
    )
    assert first.status_code == second.status_code == 200
    assert second["Idempotent-Replayed"] == "true" and first.json() == second.json()
    assert Wallet.objects.get(account=account).balance == Decimal("8.00")


def test_create_with_the_same_idempotency_key_holds_once(service):
    account = funded_account("10.00")
    for _ in range(2):
        service.post(
            "/api/v1/holds", {"account": account.public_id, "amount": "4"}, format="json", HTTP_IDEMPOTENCY_KEY="h-1"
        )
    assert Hold.objects.filter(account=account).count() == 1
    assert Wallet.objects.get(account=account).held == Decimal("4.00")


def test_account_holds_lists_newest_first_and_filters_by_status(service):
    account = funded_account("10.00")
    first = open_hold(service, account, "1.00")
    second = open_hold(service, account, "2.00")
    service.post(f"/api/v1/holds/{first['id']}/release", {}, format="json")
    listed = service.get(f"/api/v1/accounts/{account.public_id}/holds").json()["data"]
    assert [h["id"] for h in listed] == [second["id"], first["id"]]
    pending = service.get(f"/api/v1/accounts/{account.public_id}/holds?status=pending").json()["data"]
    assert [h["id"] for h in pending] == [second["id"]]


def test_an_account_key_sees_and_resolves_only_its_own_holds(api_client):
    mine, other = funded_account("10.00"), funded_account("10.00")
    _, secret = account_key(mine)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    own = api_client.post("/api/v1/holds", {"amount": "1.00"}, format="json")
    assert own.status_code == 201 and own.json()["account"] == mine.public_id
    from billing.services import Actor, hold_create
    from tests.factories import default_credit_type

    foreign = hold_create(account=other, credit_type=default_credit_type(), amount="1", actor=Actor.system())
    assert api_client.post(f"/api/v1/holds/{foreign.public_id}/release", {}, format="json").status_code == 404
    assert api_client.get(f"/api/v1/accounts/{other.public_id}/holds").status_code == 404


def test_unknown_hold_is_404(service):
    AccountFactory()
    response = service.post("/api/v1/holds/hold_nope/capture", {"amount": "1"}, format="json")
    assert response.status_code == 404 and response.json()["error"]["code"] == "hold_not_found"


@pytest.mark.parametrize(
    ("field", "usage", "param", "code"),
    [
        ("estimated_usage", {"tokens": 1}, "estimated_usage.tokens", "unknown_field"),
        ("estimated_usage", {"input_tokens": -1}, "estimated_usage.input_tokens", "negative"),
        ("estimated_usage", [1], "estimated_usage", "not_an_object"),
        ("usage", {"units": "2"}, "usage.units", "not_an_integer"),
    ],
)
def test_bad_usage_is_a_field_error_before_anything_is_held(service, field, usage, param, code):
    PriceFactory(key="acme/chat")
    account = funded_account("10.00")
    if field == "usage":
        hold = open_hold(service, account, "1.00", price_key="acme/chat")
        response = service.post(f"/api/v1/holds/{hold['id']}/capture", {"usage": usage}, format="json")
    else:
        response = service.post(
            "/api/v1/holds", {"account": account.public_id, "price_key": "acme/chat", field: usage}, format="json"
        )
    assert response.status_code == 400
    error = response.json()["error"]
    # An unknown name is a contract error: the error's own code is the field's.
    assert (
        error["code"] == (code if code in {"unknown_field", "not_an_integer"} else "validation_error")
        and error["param"] == param
    )
    assert error["fields"][param][0]["code"] == code


def test_a_hold_shows_its_usage_as_the_client_sent_it(service):
    PriceFactory(key="acme/chat")
    account = funded_account("10.00")
    hold = service.post(
        "/api/v1/holds",
        {"account": account.public_id, "price_key": "acme/chat", "estimated_usage": {"input_tokens": 10}},
        format="json",
    ).json()
    assert hold["estimated_usage"] == {"input_tokens": 10}
    captured = service.post(f"/api/v1/holds/{hold['id']}/capture", {"usage": {"output_tokens": 0}}, format="json")
    assert captured.json()["capture_usage"] == {"output_tokens": 0}


# --- a hold belongs to whoever opened it -------------------------------------------------


def keyed_client(secret: str):
    from tests.client import KeyedAPIClient

    client = KeyedAPIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.mark.parametrize("action", ["release", "capture"])
def test_an_account_key_cannot_resolve_a_hold_the_service_opened(service, action):
    account = funded_account("20.00")
    hold = open_hold(service, account, "10.00")
    _, secret = account_key(account)
    body = {"amount": "0"} if action == "capture" else {}
    response = keyed_client(secret).post(f"/api/v1/holds/{hold['id']}/{action}", body, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "hold_owned_by_service"
    assert Hold.objects.get(public_id=hold["id"]).status == Hold.Status.PENDING
    # The service's own capture still charges the usage.
    captured = service.post(f"/api/v1/holds/{hold['id']}/capture", {"amount": "4.00"}, format="json")
    assert captured.status_code == 200 and captured.json()["captured_amount"] == "4.00"


def test_an_account_key_cannot_resolve_a_hold_staff_or_a_job_opened(service):
    from tests.factories import hold_for

    account = funded_account("20.00")
    hold = hold_for(account, "5.00")  # Actor.system(): no API key
    _, secret = account_key(account)
    response = keyed_client(secret).post(f"/api/v1/holds/{hold.public_id}/release", {}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "hold_owned_by_service"


@pytest.mark.parametrize("action", ["release", "capture"])
def test_an_account_key_resolves_the_holds_it_opened(action):
    account = funded_account("20.00")
    _, secret = account_key(account)
    client = keyed_client(secret)
    hold = open_hold(client, account, "10.00")
    body = {"amount": "3.00"} if action == "capture" else {}
    response = client.post(f"/api/v1/holds/{hold['id']}/{action}", body, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == ("captured" if action == "capture" else "released")


def test_a_service_key_resolves_a_hold_an_account_key_opened(service):
    account = funded_account("20.00")
    _, secret = account_key(account)
    hold = open_hold(keyed_client(secret), account, "10.00")
    response = service.post(f"/api/v1/holds/{hold['id']}/release", {}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "released"


def test_another_key_of_the_same_account_cannot_resolve_the_hold(service):
    account = funded_account("20.00")
    _, first = account_key(account)
    _, second = account_key(account)
    hold = open_hold(keyed_client(first), account, "10.00")
    response = keyed_client(second).post(f"/api/v1/holds/{hold['id']}/release", {}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "hold_owned_by_another_key"


def test_another_accounts_hold_is_still_404(service):
    account, other = funded_account("20.00"), funded_account("20.00")
    hold = open_hold(service, other, "10.00")
    _, secret = account_key(account)
    response = keyed_client(secret).post(f"/api/v1/holds/{hold['id']}/release", {}, format="json")
    assert response.status_code == 404 and response.json()["error"]["code"] == "hold_not_found"
    # Reading follows the account: the owner's account key may still see the service's hold.
    _, owner = account_key(other)
    assert keyed_client(owner).get(f"/api/v1/holds/{hold['id']}").status_code == 200
