"""/metrics, /healthz and Sentry scrubbing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sentry_sdk
from celery import shared_task
from django.test import Client, override_settings
from prometheus_client import REGISTRY

from billing.services import Actor, hold_create, hold_release
from config.sentry import REDACTED, scrub_event
from tests.client import KeyedAPIClient as APIClient
from tests.factories import default_credit_type, funded_account, hold_for, service_key
from tests.sentry_capture import sentry_events  # noqa: F401 - fixture


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def service() -> APIClient:
    _, secret = service_key()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


# --- /metrics ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _metrics_open(settings):
    """The tests below scrape /metrics: open it (it is closed by default)."""
    settings.CREDITLEDGER_METRICS_PUBLIC = True


@pytest.mark.django_db(transaction=True)
def test_a_committed_charge_is_counted(service):
    account = funded_account("10.00")
    before = sample("creditledger_charges_total", credit_type="credits")
    amount_before = sample("creditledger_charged_minor_units_total", credit_type="credits")
    response = service.post("/api/v1/charges", {"account": account.public_id, "amount": "2.50"}, format="json")
    assert response.status_code == 201
    assert sample("creditledger_charges_total", credit_type="credits") == before + 1
    assert sample("creditledger_charged_minor_units_total", credit_type="credits") == amount_before + 250


@pytest.mark.django_db(transaction=True)
def test_a_refused_charge_is_counted_and_not_as_a_charge(service):
    account = funded_account("1.00")
    charges = sample("creditledger_charges_total", credit_type="credits")
    refusals = sample("creditledger_insufficient_credits_total")
    response = service.post("/api/v1/charges", {"account": account.public_id, "amount": "5.00"}, format="json")
    assert response.status_code == 402
    assert sample("creditledger_insufficient_credits_total") == refusals + 1
    assert sample("creditledger_charges_total", credit_type="credits") == charges


@pytest.mark.django_db
def test_an_idempotent_replay_is_counted(service):
    account = funded_account("10.00")
    endpoint = "POST /api/v1/charges"
    before = sample("creditledger_idempotent_replays_total", endpoint=endpoint)
    for _ in range(2):
        response = service.post(
            "/api/v1/charges",
            {"account": account.public_id, "amount": "1.00"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="replay-me",
        )
        assert response.status_code == 201
    assert sample("creditledger_idempotent_replays_total", endpoint=endpoint) == before + 1


@pytest.mark.django_db
def test_a_replay_is_labelled_by_its_url_route_never_by_an_object_id(service):
    hold = hold_for(funded_account("10.00"), "2.00")
    route = "POST /api/v1/holds/<str:hold_id>/release"
    before = sample("creditledger_idempotent_replays_total", endpoint=route)
    for _ in range(2):
        response = service.post(f"/api/v1/holds/{hold.public_id}/release", {}, format="json", HTTP_IDEMPOTENCY_KEY="r1")
        assert response.status_code == 200
    assert sample("creditledger_idempotent_replays_total", endpoint=route) == before + 1
    assert hold.public_id not in Client().get("/metrics").content.decode()


@pytest.mark.django_db
def test_request_latency_is_recorded_by_route(service):
    account = funded_account("10.00")
    labels = {"method": "GET", "route": "api/v1/accounts/<str:account_id>/balance", "status": "200"}
    before = sample("creditledger_http_request_duration_seconds_count", **labels)
    service.get(f"/api/v1/accounts/{account.public_id}/balance")
    assert sample("creditledger_http_request_duration_seconds_count", **labels) == before + 1


@pytest.mark.django_db
def test_metrics_endpoint_exposes_the_ledger_counters(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    for name in (
        "creditledger_charges_total",
        "creditledger_refunds_total",
        "creditledger_holds_total",
        "creditledger_insufficient_credits_total",
        "creditledger_idempotent_replays_total",
        "creditledger_http_request_duration_seconds",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name


@pytest.mark.django_db
@override_settings(CREDITLEDGER_METRICS_PUBLIC=False)
def test_metrics_are_closed_by_default(client):
    response = client.get("/metrics")
    assert response.status_code == 404
    assert b"CREDITLEDGER_METRICS_TOKEN" in response.content
    assert b"creditledger_" not in response.content


def test_metrics_are_closed_unless_the_environment_opens_them():
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDITLEDGER_METRICS_")}
    code = "import config.settings as s; print(s.CREDITLEDGER_METRICS_PUBLIC, repr(s.CREDITLEDGER_METRICS_TOKEN))"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["False", "''"], result.stderr


def test_a_token_and_public_metrics_together_fail_at_start_up():
    env = {**os.environ, "CREDITLEDGER_METRICS_TOKEN": "t", "CREDITLEDGER_METRICS_PUBLIC": "true"}
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "not both" in result.stderr


@pytest.mark.django_db
@override_settings(CREDITLEDGER_METRICS_TOKEN="scrape-secret", CREDITLEDGER_METRICS_PUBLIC=False)
def test_metrics_token_is_required_when_configured(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200


# --- /healthz ------------------------------------------------------------------


@pytest.mark.django_db
def test_healthz_ok_when_database_and_redis_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert sample("creditledger_dependency_up", dependency="redis") == 1


@pytest.mark.django_db
def test_healthz_with_redis_down_is_degraded_not_down(client):
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = client.get("/healthz")
        strict = client.get("/healthz", {"strict": "1"})
    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "checks": {"database": "ok", "redis": "unavailable"}}
    assert strict.status_code == 503
    assert sample("creditledger_dependency_up", dependency="redis") == 0


# --- Sentry ----------------------------------------------------------------------


def test_scrubber_removes_api_keys_and_exact_balances():
    event = {
        "message": "key clk_ab12cd_s3cr3tvalue failed",
        "request": {
            "headers": {"Authorization": "Bearer clk_ab12cd_s3cr3tvalue", "Content-Type": "application/json"},
            "data": {"amount": "2.50", "balance": "12.345678"},
        },
        "extra": {"wallet": {"held": "1.00", "available": "11.345678"}},
        "exception": {
            "values": [
                {"stacktrace": {"frames": [{"vars": {"new_balance": "Decimal('12.345678')", "kind": "charge"}}]}}
            ]
        },
    }
    scrubbed = scrub_event(event)
    assert "s3cr3t" not in str(scrubbed) and "12.345678" not in str(scrubbed) and "11.345678" not in str(scrubbed)
    assert scrubbed["request"]["headers"]["Authorization"] == REDACTED
    assert scrubbed["request"]["data"] == {"amount": "2.50", "balance": REDACTED}
    assert scrubbed["exception"]["values"][0]["stacktrace"]["frames"][0]["vars"] == {
        "new_balance": REDACTED,
        "kind": "charge",
    }


def test_events_sent_to_sentry_are_scrubbed(sentry_events):  # noqa: F811
    with sentry_sdk.new_scope() as scope:
        scope.set_extra("balance", "98.765432")
        sentry_sdk.capture_message("charge failed for clk_ab12cd_s3cr3tvalue")
    event = sentry_events[-1]
    assert "s3cr3t" not in str(event) and "98.765432" not in str(event)


@pytest.mark.django_db(transaction=True)
def test_hold_events_are_counted():
    account = funded_account("10.00")
    created = sample("creditledger_holds_total", event="created")
    released = sample("creditledger_holds_total", event="released")
    hold = hold_create(account=account, credit_type=default_credit_type(), amount="2.00", actor=Actor.system())
    hold_release(hold=hold, actor=Actor.system())
    assert sample("creditledger_holds_total", event="created") == created + 1
    assert sample("creditledger_holds_total", event="released") == released + 1


@shared_task(name="tests.config.failing_scheduled_task")
def failing_scheduled_task():
    raise RuntimeError("the scheduled job broke")


def test_a_failing_scheduled_task_is_reported_to_sentry(sentry_events):  # noqa: F811
    failing_scheduled_task.apply()
    values = [v.get("value") for event in sentry_events for v in event.get("exception", {}).get("values", [])]
    assert "the scheduled job broke" in values


@pytest.mark.django_db
def test_no_label_value_is_ever_an_id_or_a_client_chosen_string(service):
    account = funded_account("10.00")
    hold = hold_for(account, "2.00")
    for _ in range(2):  # the second is a replay
        service.post(
            f"/api/v1/holds/{hold.public_id}/capture", {"amount": "1.00"}, format="json", HTTP_IDEMPOTENCY_KEY="c1"
        )
    service.get(f"/api/v1/accounts/{account.public_id}/transactions")
    service.get(f"/api/v1/holds/{hold.public_id}")
    service.get("/api/v1/no/such/path/acc_123")
    service.generic("FROBNICATE", f"/api/v1/accounts/{account.public_id}")
    values = {
        value
        for metric in REGISTRY.collect()
        if metric.name.startswith("creditledger_")
        for sample in metric.samples
        for value in sample.labels.values()
    }
    ids = (account.public_id, hold.public_id, "acc_123", "FROBNICATE")
    assert not [v for v in values if any(part in v for part in ids)], values
    assert "other" in values  # the unknown method's label
