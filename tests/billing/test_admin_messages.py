"""The admin's success messages say what happened, in money at scale, with links."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from tests.billing.test_admin import grant_via_admin
from tests.factories import UserFactory, funded_account

pytestmark = pytest.mark.django_db


def test_a_grant_says_how_much_to_whom_and_links_the_account_and_the_entry(client):
    client.force_login(UserFactory(is_superuser=True))
    account = funded_account("1000.00", name="Alice")
    response = grant_via_admin(client, account, amount="1234.5")
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith("Granted 1,234.50 credits to <a href=")
    assert f"/admin/accounts/account/{account.pk}/change/" in message and account.public_id in message
    assert "balance 2,234.50" in message and "/admin/billing/ledgerentry/" in message
    assert "done for" not in message
