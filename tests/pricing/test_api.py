"""POST /api/v1/charges priced by key, POST /api/v1/quotes, GET /api/v1/prices."""

from decimal import Decimal

import pytest

from billing.models import LedgerEntry, Wallet
from pricing.models import PricingAnomaly
from tests.factories import PriceFactory, alias_for, funded_account, service_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(api_client):
    _, secret = service_key()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api_client


def charge(client, account, **body):
    return client.post("/api/v1/charges", {"account": account.public_id, **body}, format="json")


def test_priced_charge_records_key_version_and_usage(service):
    account = funded_account("100.00")
    price = PriceFactory(key="openai/gpt-4o")
    response = charge(service, account, key="openai/gpt-4o", usage={"input_tokens": 1000, "output_tokens": 500})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["amount"] == "-7.50" and body["balance_after"] == "92.50"
    assert body["pricing"] == {
        "key": "openai/gpt-4o",
        "resolved_key": "openai/gpt-4o",
        "price_version": price.public_id,
        "version": 1,
        "source": "database",
        "unit_prices": {
            # Unit prices are rates, not amounts: exact, without trailing zeros (docs/api.md).
            "per_request": "0",
            "per_1k_input_tokens": "2.5",
            "per_1k_output_tokens": "10",
            "per_unit": "0",
            "unit_name": "",
        },
        "usage": {"input_tokens": 1000, "output_tokens": 500, "units": 0, "requests": 0},
    }
    assert LedgerEntry.objects.get(public_id=body["id"]).price_version == price


def test_an_amount_charge_has_no_pricing(service):
    account = funded_account("10.00")
    response = charge(service, account, amount="1.00")
    assert response.status_code == 201 and response.json()["pricing"] is None


def test_missing_price_for_a_high_value_model_is_422_and_writes_nothing(service):
    account = funded_account("100.00")
    response = charge(service, account, key="anthropic/claude-3-opus", usage={"input_tokens": 1000})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "price_not_configured"
    assert LedgerEntry.objects.filter(account=account, kind="charge").count() == 0
    assert Wallet.objects.get(account=account).balance == Decimal("100.00")


def test_free_suffix_on_a_paid_model_charges_the_base_price(service):
    account = funded_account("100.00")
    PriceFactory(key="anthropic/claude-3-opus", per_1k_input_tokens=Decimal("15"), per_1k_output_tokens=Decimal("75"))
    response = charge(service, account, key="anthropic/claude-3-opus:free", usage={"input_tokens": 1000})
    assert response.status_code == 201
    assert response.json()["amount"] == "-15.00"
    assert response.json()["pricing"]["resolved_key"] == "anthropic/claude-3-opus"


def test_an_alias_is_charged_at_its_target_price(service):
    account = funded_account("100.00")
    PriceFactory(key="openai/gpt-4o-2024-08-06")
    alias_for("gpt-4o", "openai/gpt-4o-2024-08-06")
    response = charge(service, account, key="gpt-4o", usage={"output_tokens": 1000})
    assert response.status_code == 201 and response.json()["amount"] == "-10.00"
    assert response.json()["pricing"]["key"] == "gpt-4o"


def test_an_out_of_bounds_price_is_422_pricing_anomaly_at_charge(service, settings):
    account = funded_account("100.00")
    PriceFactory(key="openai/gpt-4o")
    settings.PRICING_BOUNDS = {**settings.PRICING_BOUNDS, "per_1k_output_tokens": (Decimal("0.001"), Decimal("5"))}
    response = charge(service, account, key="openai/gpt-4o", usage={"input_tokens": 10})
    assert response.status_code == 422 and response.json()["error"]["code"] == "pricing_anomaly"
    assert LedgerEntry.objects.filter(account=account, kind="charge").count() == 0


def test_a_key_without_usage_is_one_request(service, settings):
    settings.CREDIT_COSTS = {"AUDIO_UPLOAD": Decimal("2")}
    account = funded_account("10.00")
    response = charge(service, account, key="audio_upload")
    assert response.status_code == 201
    assert response.json()["amount"] == "-2.00"
    assert response.json()["pricing"]["source"] == "environment"
    assert response.json()["pricing"]["usage"]["requests"] == 1


def test_zero_usage_of_a_paid_key_is_recorded_as_an_anomaly_not_passed_silently(
    service, sentry_events, django_capture_on_commit_callbacks
):
    account = funded_account("10.00")
    PriceFactory(key="openai/gpt-4o")
    with django_capture_on_commit_callbacks(execute=True):
        response = charge(service, account, key="openai/gpt-4o", usage={"input_tokens": 0}, task_id="stream-1")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "zero_charge" and body["amount"] == "0.00" and body["anomaly"] == "zero_cost"
    record = PricingAnomaly.objects.get(public_id=body["id"])
    assert record.kind == "zero_cost" and record.account == account and record.task_id == "stream-1"
    assert LedgerEntry.objects.filter(account=account, kind="charge").count() == 0
    assert any(e.get("tags", {}).get("pricing_anomaly") == "zero_cost" for e in sentry_events)


def test_a_free_key_settles_at_zero_without_an_anomaly(service):
    account = funded_account("10.00")
    PriceFactory(key="meta-llama/llama-3-8b:free", is_free=True, per_1k_input_tokens=0, per_1k_output_tokens=0)
    response = charge(service, account, key="meta-llama/llama-3-8b:free", usage={"input_tokens": 5000})
    assert response.status_code == 200
    assert response.json()["anomaly"] is None and response.json()["is_free"] is True
    assert not PricingAnomaly.objects.exists()


def test_a_priced_charge_is_idempotent(service):
    account = funded_account("100.00")
    PriceFactory(key="openai/gpt-4o")
    body = {"account": account.public_id, "key": "openai/gpt-4o", "usage": {"input_tokens": 1000}}
    first = service.post("/api/v1/charges", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = service.post("/api/v1/charges", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert LedgerEntry.objects.filter(account=account, kind="charge").count() == 1


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"amount": "1.00", "key": "openai/gpt-4o"}, "amount", "amount_and_key"),
        ({}, "amount", "required"),
        ({"amount": "1.00", "usage": {"input_tokens": 1}}, "usage", "usage_without_key"),
        ({"key": "openai/gpt-4o", "usage": {"input_tokens": -1}}, "usage.input_tokens", "negative"),
        ({"key": "openai/gpt-4o", "usage": {"input_tokens": 1.5}}, "usage.input_tokens", "not_an_integer"),
        ({"key": "openai/gpt-4o", "usage": {"input_tokens": "10"}}, "usage.input_tokens", "not_an_integer"),
        ({"key": "openai/gpt-4o", "usage": {"units": True}}, "usage.units", "not_an_integer"),
        ({"key": "openai/gpt-4o", "usage": {"input_tokens": 10**15}}, "usage.input_tokens", "too_large"),
        ({"key": "openai/gpt-4o", "usage": {"tokens": 10}}, "usage.tokens", "unknown_field"),
        ({"key": "openai/gpt-4o", "usage": [1, 2]}, "usage", "not_an_object"),
        ({"key": "bad key!", "usage": {}}, "key", "invalid_key"),
        ({"key": 12, "usage": {}}, "key", "not_a_string"),
    ],
)
def test_bad_priced_charge_input_is_a_400_with_a_code(service, body, param, code):
    account = funded_account("10.00")
    PriceFactory(key="openai/gpt-4o")
    response = charge(service, account, **body)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    # Contract errors (an unknown name, a number for text) carry the field's code as their own.
    assert error["code"] == (
        code if code in {"unknown_field", "not_a_string", "not_an_integer"} else "validation_error"
    )
    assert error["param"] == param
    assert error["fields"][param][0]["code"] == code


def test_quote_returns_amount_and_version_and_charges_nothing(service):
    account = funded_account("10.00")
    price = PriceFactory(key="openai/gpt-4o")
    response = service.post(
        "/api/v1/quotes",
        {"account": account.public_id, "key": "openai/gpt-4o", "usage": {"input_tokens": 1000, "output_tokens": 500}},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "quote" and body["amount"] == "7.50"
    assert body["price_version"] == price.public_id and body["version"] == 1 and body["source"] == "database"
    assert LedgerEntry.objects.filter(account=account, kind="charge").count() == 0


def test_quote_for_a_missing_price_is_422(service):
    response = service.post("/api/v1/quotes", {"key": "openai/gpt-5", "usage": {}}, format="json")
    assert response.status_code == 422 and response.json()["error"]["code"] == "price_not_configured"


def test_quote_needs_a_key(service):
    response = service.post("/api/v1/quotes", {"usage": {"input_tokens": 1}}, format="json")
    assert response.status_code == 400 and response.json()["error"]["param"] == "key"


def test_price_list_shows_the_current_versions_their_source_and_aliases(service, settings):
    settings.CREDIT_COSTS = {"AUDIO_UPLOAD": Decimal("2")}
    PriceFactory(key="openai/gpt-4o")
    from pricing.services import price_create
    from tests.factories import default_credit_type

    newer = price_create(key="openai/gpt-4o", credit_type=default_credit_type(), per_1k_input_tokens="5")
    alias_for("gpt-4o", "openai/gpt-4o")
    response = service.get("/api/v1/prices")
    assert response.status_code == 200
    rows = {row["key"]: row for row in response.json()["data"]}
    assert rows["openai/gpt-4o"]["price_version"] == newer.public_id and rows["openai/gpt-4o"]["version"] == 2
    assert rows["openai/gpt-4o"]["per_1k_input_tokens"] == "5" and rows["openai/gpt-4o"]["source"] == "database"
    assert rows["audio.upload"]["source"] == "environment"
    assert rows["audio.upload"]["env_variable"] == "CREDIT_COST_AUDIO_UPLOAD"
    assert rows["audio.upload"]["per_request"] == "2"
    assert response.json()["aliases"] == {"gpt-4o": "openai/gpt-4o"}


def test_prices_need_an_api_key(api_client):
    assert api_client.get("/api/v1/prices").status_code == 401


def test_price_list_filters_by_credit_type(service):
    from tests.factories import CreditTypeFactory

    usd = CreditTypeFactory(code="usd", scale=6)
    PriceFactory(key="openai/gpt-4o")
    PriceFactory(key="openai/gpt-4o-usd", credit_type=usd)
    rows = service.get("/api/v1/prices?credit_type=usd").json()["data"]
    assert [row["key"] for row in rows] == ["openai/gpt-4o-usd"]


def test_price_list_with_an_unknown_credit_type_is_404(service):
    response = service.get("/api/v1/prices?credit_type=nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "credit_type_not_found"
