"""Webhook endpoints through the API: the secret shown once, stored encrypted; the SSRF rule at creation."""

import pytest

from tests.factories import account_key, funded_account, service_key
from webhooks.models import WebhookEndpoint
from webhooks.secrets import secret_decrypt
from webhooks.services import endpoint_create, endpoint_signing_secrets

pytestmark = pytest.mark.django_db

URL = "https://hooks.example.com/creditledger"


@pytest.fixture
def service(api_client):
    _, secret = service_key()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api_client


@pytest.fixture
def private_disallowed(settings):
    settings.CREDITLEDGER_WEBHOOK_ALLOW_PRIVATE = False


def create(client, **fields):
    return client.post("/api/v1/webhook-endpoints", {"url": URL, **fields}, format="json")


def test_creating_an_endpoint_shows_its_secret_once(service):
    response = create(service, description="app", event_types=["balance.low", "charge.created"])
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("we_") and body["secret"].startswith("whsec_")
    assert body["event_types"] == ["balance.low", "charge.created"] and body["enabled"] is True
    again = service.get(f"/api/v1/webhook-endpoints/{body['id']}").json()
    assert "secret" not in again
    assert all("secret" not in e for e in service.get("/api/v1/webhook-endpoints").json()["data"])


def test_the_secret_is_stored_encrypted_and_still_signs(service):
    body = create(service).json()
    endpoint = WebhookEndpoint.objects.get(public_id=body["id"])
    assert body["secret"] not in endpoint.secret_encrypted
    assert secret_decrypt(endpoint.secret_encrypted) == body["secret"]
    assert endpoint_signing_secrets(endpoint) == [body["secret"]]


def test_an_unknown_event_type_is_refused(service):
    response = create(service, event_types=["charge.created", "nope"])
    assert response.status_code == 400


def test_an_endpoint_is_updated_and_deleted(service):
    endpoint_id = create(service).json()["id"]
    patched = service.patch(
        f"/api/v1/webhook-endpoints/{endpoint_id}", {"enabled": False, "event_types": ["hold.created"]}, format="json"
    )
    assert patched.status_code == 200
    assert patched.json()["enabled"] is False and patched.json()["event_types"] == ["hold.created"]
    assert service.delete(f"/api/v1/webhook-endpoints/{endpoint_id}").status_code == 204
    assert service.get(f"/api/v1/webhook-endpoints/{endpoint_id}").status_code == 404


def test_rotation_returns_a_new_secret_and_keeps_the_old_one_signing_for_the_grace_period(service):
    created = create(service).json()
    rotated = service.post(f"/api/v1/webhook-endpoints/{created['id']}/rotate-secret", {}, format="json")
    assert rotated.status_code == 200
    body = rotated.json()
    assert body["secret"] != created["secret"] and body["secret_rotated_grace_until"] is not None
    endpoint = WebhookEndpoint.objects.get(public_id=created["id"])
    assert endpoint_signing_secrets(endpoint) == [body["secret"], created["secret"]]


def test_rotation_without_grace_drops_the_old_secret_at_once(service):
    created = create(service).json()
    body = service.post(
        f"/api/v1/webhook-endpoints/{created['id']}/rotate-secret", {"grace_hours": 0}, format="json"
    ).json()
    assert endpoint_signing_secrets(WebhookEndpoint.objects.get(public_id=created["id"])) == [body["secret"]]


def test_an_account_key_may_not_manage_endpoints(api_client):
    _, secret = account_key(funded_account("1.00"))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert create(api_client).status_code == 403
    assert api_client.get("/api/v1/webhook-endpoints").status_code == 403


# --- the SSRF rule at creation -------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost:8443/hook",  # a name resolving to 127.0.0.1
        "https://169.254.169.254/latest/meta-data/",  # the cloud metadata service
        "https://10.0.0.5/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
    ],
)
def test_a_url_resolving_to_a_non_public_address_is_refused_at_creation(service, private_disallowed, url):
    response = create(service, url=url)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "webhook_url_refused"
    assert not WebhookEndpoint.objects.exists()


def test_plain_http_is_refused_unless_private_addresses_are_allowed(service, private_disallowed):
    response = create(service, url="http://hooks.example.com/x")
    assert response.status_code == 422 and response.json()["error"]["code"] == "webhook_url_refused"


def test_a_url_that_is_not_http_is_refused(service):
    response = create(service, url="ftp://hooks.example.com/x")
    assert response.status_code == 422 and response.json()["error"]["code"] == "webhook_url_refused"


def test_with_private_allowed_a_local_http_receiver_is_accepted():
    endpoint, _ = endpoint_create(url="http://127.0.0.1:8999/hook")
    assert endpoint.enabled
