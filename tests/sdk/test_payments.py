"""The client's payments methods against the live server (Stripe itself is not needed for these)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_packs_portal_link_and_auto_recharge_settings(client, account):
    assert client.payments.packs()["data"] == []
    link = client.payments.portal_link(account.id)
    assert "/portal/" in link["url"] and link["account"] == account.id
    assert client.payments.auto_recharge(account.id)["data"] == []
