"""POST /api/v1/charges/batch and `billing.services.charges_batch_apply`."""

from decimal import Decimal

import pytest

from billing.models import LedgerEntry, Wallet
from billing.services import Actor, BatchCharge, charges_batch_apply
from tests.client import KeyedAPIClient as APIClient
from tests.concurrency import run_concurrently
from tests.factories import default_credit_type, funded_account, service_key

KEY = "acme/batch-model"
URL = "/api/v1/charges/batch"


def client_for(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def service():
    _, secret = service_key()
    return client_for(secret)


@pytest.fixture
def price():
    from pricing.selectors import catalogue_cache_clear
    from pricing.services import price_create

    catalogue_cache_clear()
    # 2.50 per 1K input tokens, 10 per 1K output tokens.
    made = price_create(
        key=KEY, credit_type=default_credit_type(), per_1k_input_tokens="2.5", per_1k_output_tokens="10"
    )
    yield made
    catalogue_cache_clear()


def batch(client, items, key="batch-1"):
    return client.post(URL, {"items": items}, format="json", HTTP_IDEMPOTENCY_KEY=key)


def balance(account) -> Decimal:
    return Wallet.objects.get(account=account).balance


@pytest.mark.django_db
def test_mixed_priced_and_fixed_items_are_answered_like_single_charges(service, price):
    account = funded_account("100.00")
    response = batch(
        service,
        [
            {"account": account.public_id, "amount": "1.50", "idempotency_key": "i-1", "task_id": "t-1"},
            {"account": account.public_id, "key": KEY, "usage": {"input_tokens": 2000}, "idempotency_key": "i-2"},
        ],
    )
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "charge_batch"
    first, second = body["data"]
    assert (first["status"], first["idempotency_key"], first["replayed"]) == (201, "i-1", False)
    assert first["body"]["amount"] == "-1.50" and first["body"]["task_id"] == "t-1"
    assert first["body"]["idempotency_key"] == "i-1"
    assert second["status"] == 201 and second["body"]["amount"] == "-5.00"
    assert second["body"]["pricing"]["key"] == KEY
    assert second["body"]["balance_after"] == "93.50"
    assert balance(account) == Decimal("93.50")


@pytest.mark.django_db
def test_a_declined_item_does_not_stop_the_others(service):
    poor, rich = funded_account("1.00"), funded_account("10.00")
    response = batch(
        service,
        [
            {"account": poor.public_id, "amount": "5.00", "idempotency_key": "a"},
            {"account": rich.public_id, "amount": "2.00", "idempotency_key": "b"},
        ],
    )
    assert response.status_code == 200
    declined, charged = response.json()["data"]
    assert declined["status"] == 402 and declined["body"]["error"]["code"] == "insufficient_credits"
    assert declined["body"]["error"]["available"] == "1.00"
    assert charged["status"] == 201
    assert (balance(poor), balance(rich)) == (Decimal("1.00"), Decimal("8.00"))


@pytest.mark.django_db
def test_items_on_one_wallet_are_applied_in_request_order(service):
    account = funded_account("2.00")
    items = [{"account": account.public_id, "amount": "1.00", "idempotency_key": f"k{i}"} for i in range(3)]
    data = batch(service, items).json()["data"]
    assert [item["status"] for item in data] == [201, 201, 402]
    assert [item["body"].get("balance_after") for item in data[:2]] == ["1.00", "0.00"]
    assert balance(account) == 0


@pytest.mark.django_db
def test_a_batch_written_in_bulk_leaves_a_ledger_that_reconciles_clean(service):
    from billing.reconciliation import reconciliation_run

    accounts = [funded_account("10.00") for _ in range(3)]
    items = [{"account": accounts[n % 3].public_id, "amount": "0.75", "idempotency_key": f"k-{n}"} for n in range(10)]
    response = batch(service, items)
    assert response.status_code == 200 and {item["status"] for item in response.json()["data"]} == {201}
    # Each wallet's entries chain in request order, balance_after runs on, the wallet ends where they say.
    for account in accounts:
        entries = list(LedgerEntry.objects.filter(account=account, kind="charge").order_by("id"))
        assert [e.balance_after for e in entries] == [
            Decimal("10.00") - Decimal("0.75") * (n + 1) for n in range(len(entries))
        ]
        assert balance(account) == entries[-1].balance_after
    assert reconciliation_run().status == "clean"


@pytest.mark.django_db
def test_a_field_too_long_for_its_column_is_refused_in_bulk_as_it_is_alone_never_cut_short():
    from django.db import DataError, transaction

    account = funded_account("10.00")
    items = [
        BatchCharge(account=account, credit_type=default_credit_type(), amount="1.00", task_id="t" * 300),
    ]
    with pytest.raises(DataError), transaction.atomic():
        charges_batch_apply(charges=items, actor=Actor.system())
    assert balance(account) == Decimal("10.00")
    assert not LedgerEntry.objects.filter(account=account, kind="charge").exists()


@pytest.mark.django_db
def test_a_daily_limit_decline_in_a_group_keeps_the_others_and_counts_nothing():
    from billing.models import DailyLimitOverride, DailyUsage

    account = funded_account("100.00")
    DailyLimitOverride.objects.create(account=account, credit_type=default_credit_type(), daily_limit=Decimal("3"))
    charges = [
        BatchCharge(account=account, credit_type=default_credit_type(), amount=amount) for amount in ("2", "2", "1")
    ]
    outcomes = charges_batch_apply(charges=charges, actor=Actor.system())
    assert isinstance(outcomes[0], LedgerEntry) and isinstance(outcomes[2], LedgerEntry)
    assert outcomes[1].code == "daily_limit_exceeded"
    assert DailyUsage.objects.get(account=account).used == Decimal("3")
    assert balance(account) == Decimal("97.00")


@pytest.mark.django_db
def test_a_replayed_batch_is_byte_identical_and_charges_nothing(service):
    account = funded_account("10.00")
    items = [{"account": account.public_id, "amount": "1.00", "idempotency_key": f"k{i}"} for i in range(3)]
    first = batch(service, items, key="same")
    again = batch(service, items, key="same")
    assert again.status_code == first.status_code == 200
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert balance(account) == Decimal("7.00")
    assert LedgerEntry.objects.filter(account=account, kind="charge").count() == 3


@pytest.mark.django_db
def test_an_item_key_used_by_an_earlier_batch_replays_that_item(service):
    account = funded_account("10.00")
    item = {"account": account.public_id, "amount": "1.00", "idempotency_key": "once"}
    first = batch(service, [item], key="b1").json()["data"][0]
    later = batch(service, [item, {**item, "idempotency_key": "new"}], key="b2").json()["data"]
    assert later[0]["replayed"] is True and later[0]["body"] == first["body"] and later[0]["status"] == 201
    assert later[1]["replayed"] is False and later[1]["status"] == 201
    assert balance(account) == Decimal("8.00")


@pytest.mark.django_db
def test_a_single_retry_of_an_item_replays_its_answer(service):
    account = funded_account("10.00")
    body = {"account": account.public_id, "amount": "1.00"}
    first = batch(service, [{**body, "idempotency_key": "item-key"}]).json()["data"][0]
    single = service.post("/api/v1/charges", body, format="json", HTTP_IDEMPOTENCY_KEY="item-key")
    assert single.status_code == 201 and single.json() == first["body"]
    assert balance(account) == Decimal("9.00")


@pytest.mark.django_db
def test_an_item_key_reused_with_another_body_is_that_items_409(service):
    account = funded_account("10.00")
    batch(service, [{"account": account.public_id, "amount": "1.00", "idempotency_key": "k"}], key="b1")
    data = batch(service, [{"account": account.public_id, "amount": "2.00", "idempotency_key": "k"}], key="b2")
    item = data.json()["data"][0]
    assert item["status"] == 409 and item["body"]["error"]["code"] == "idempotency_key_reused"
    assert balance(account) == Decimal("9.00")


@pytest.mark.django_db
def test_a_declined_item_replays_its_decline(service):
    account = funded_account("1.00")
    item = {"account": account.public_id, "amount": "5.00", "idempotency_key": "k"}
    batch(service, [item], key="b1")
    from billing.services import grant_create

    grant_create(account=account, credit_type=default_credit_type(), amount=Decimal("10"), actor=Actor.system())
    # The decline was stored: a retry stays declined even once funded, as on POST /charges.
    again = batch(service, [item], key="b2").json()["data"]
    assert again[0]["status"] == 402 and again[0]["replayed"] is True
    assert balance(account) == Decimal("11.00")


@pytest.mark.django_db
def test_an_unknown_price_key_stores_nothing_for_that_item(service, price):
    account = funded_account("10.00")
    item = {"account": account.public_id, "key": "nobody/unknown", "idempotency_key": "k"}
    data = batch(service, [item], key="b1").json()["data"][0]
    assert data["status"] >= 400 and "error" in data["body"]
    from billing.models import IdempotencyRecord

    assert not IdempotencyRecord.objects.filter(key="k").exists()


@pytest.mark.django_db
def test_more_than_100_items_is_400_too_many_items(service):
    account = funded_account("10.00")
    items = [{"account": account.public_id, "amount": "0.01", "idempotency_key": f"k{i}"} for i in range(101)]
    response = batch(service, items)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many_items"
    assert balance(account) == Decimal("10.00")


@pytest.mark.django_db
def test_an_unknown_item_field_is_400_naming_it(service):
    account = funded_account("10.00")
    response = batch(
        service,
        [
            {"account": account.public_id, "amount": "1.00", "idempotency_key": "a"},
            {"account": account.public_id, "amout": "1.00", "idempotency_key": "b"},
        ],
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unknown_field" and error["param"] == "items[1].amout"
    assert balance(account) == Decimal("10.00")


@pytest.mark.django_db
@pytest.mark.parametrize("second", [None, "x", 5, []])
def test_an_item_that_is_not_an_object_is_400_at_its_index(service, second):
    account = funded_account("10.00")
    response = batch(service, [{"account": account.public_id, "amount": "1.00", "idempotency_key": "a"}, second])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["param"] == "items[1]"
    assert balance(account) == Decimal("10.00")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("items", "code"),
    [
        ([], "validation_error"),
        ([{"amount": "1.00", "idempotency_key": "a"}], "validation_error"),  # a service key names the account
        ("nope", "validation_error"),
    ],
)
def test_bad_batches_are_400(service, items, code):
    response = batch(service, items)
    assert response.status_code == 400 and response.json()["error"]["code"] == code


@pytest.mark.django_db
def test_an_item_needs_its_own_key_and_keys_are_unique(service):
    account = funded_account("10.00")
    missing = batch(service, [{"account": account.public_id, "amount": "1.00"}])
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "items[0].idempotency_key"
    twice = batch(service, [{"account": account.public_id, "amount": "1.00", "idempotency_key": "a"}] * 2)
    assert twice.status_code == 400 and twice.json()["error"]["code"] == "duplicate_idempotency_key"


@pytest.mark.django_db
def test_the_batch_needs_its_header_key(service):
    account = funded_account("10.00")
    response = service.post(
        URL,
        {"items": [{"account": account.public_id, "amount": "1", "idempotency_key": "a"}]},
        format="json",
        idempotency_key=None,
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "idempotency_key_required"


@pytest.mark.django_db(transaction=True)
def test_two_batches_naming_two_wallets_in_opposite_orders_do_not_deadlock():
    _, secret = service_key()
    a, b = funded_account("1000.00"), funded_account("1000.00")
    rounds = 10

    def run(i: int):
        first, second = (a, b) if i == 0 else (b, a)
        client = client_for(secret)
        statuses = []
        for r in range(rounds):
            items = [
                {"account": acct.public_id, "amount": "1.00", "idempotency_key": f"t{i}-r{r}-{n}"}
                for n, acct in enumerate([first, second, first, second])
            ]
            response = batch(client, items, key=f"batch-{i}-{r}")
            statuses.append(response.status_code)
        return statuses

    results = run_concurrently(run, 2)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert all(status == 200 for statuses in results for status in statuses), results
    assert balance(a) == balance(b) == Decimal("1000.00") - 2 * rounds * 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_batches_charge_once():
    _, secret = service_key()
    account = funded_account("100.00")
    items = [{"account": account.public_id, "amount": "1.00", "idempotency_key": f"k{i}"} for i in range(5)]

    def run(i: int):
        response = batch(client_for(secret), items, key="dup")
        return response.status_code, response.content

    results = run_concurrently(run, 4)
    assert not [r for r in results if isinstance(r, Exception)], results
    ok = [content for status, content in results if status == 200]
    assert ok and all(content == ok[0] for content in ok)
    assert all(status in (200, 409) for status, _ in results)
    assert balance(account) == Decimal("95.00")


@pytest.mark.django_db
def test_an_account_key_batches_its_own_account_and_cannot_name_another():
    from tests.factories import account_key

    own, other = funded_account("10.00"), funded_account("10.00")
    _, secret = account_key(own)
    client = client_for(secret)
    ok = batch(client, [{"amount": "1.00", "idempotency_key": "a"}, {"amount": "2.00", "idempotency_key": "b"}])
    assert ok.status_code == 200 and [i["status"] for i in ok.json()["data"]] == [201, 201]
    assert balance(own) == Decimal("7.00")
    refused = batch(client, [{"account": other.public_id, "amount": "1.00", "idempotency_key": "c"}], key="b2")
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "account_not_found"
    assert balance(other) == Decimal("10.00")


def test_the_schema_documents_each_item_as_a_charge_and_the_batch_bounds():
    from drf_spectacular.generators import SchemaGenerator

    from billing.services import MAX_BATCH_ITEMS

    schemas = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    items = schemas["ChargeBatchInputRequest"]["properties"]["items"]
    assert (items["minItems"], items["maxItems"]) == (1, MAX_BATCH_ITEMS)
    item = schemas[items["items"]["$ref"].rsplit("/", 1)[-1]]
    assert item["oneOf"] == schemas["ChargeInputRequest"]["oneOf"]
    assert "idempotency_key" in item["required"]
    assert set(item["properties"]) == set(schemas["ChargeInputRequest"]["properties"]) | {"idempotency_key"}
