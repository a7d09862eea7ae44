"""Staff tools on accounts and API keys in the admin, through Django's test client.

The wallets inline and the grant and adjustment actions that billing adds to
the account admin are tested in tests/billing/test_admin.py.
"""

import pytest

from accounts.models import ApiKey
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_creating_an_api_key_shows_the_secret_once(client):
    user = UserFactory(is_superuser=True)
    client.force_login(user)
    response = client.post("/admin/accounts/apikey/add/", {"name": "gateway", "kind": "service"})
    assert response.status_code == 200
    secret = response.context["secret"]
    api_key = ApiKey.objects.get(name="gateway")
    assert secret.startswith(api_key.prefix) and api_key.created_by == user
    detail = client.get(f"/admin/accounts/apikey/{api_key.pk}/change/")
    assert secret.encode() not in detail.content


def test_revoke_action(client):
    client.force_login(UserFactory(is_superuser=True))
    from tests.factories import service_key

    api_key, _ = service_key()
    client.post("/admin/accounts/apikey/", {"action": "revoke", "_selected_action": [api_key.pk]})
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
