"""The admin header's search box: any public id, an external id, an email or a key prefix, straight to the object."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from accounts.models import ApiKey
from accounts.services import api_key_create
from billing.models import LedgerEntry
from billing.services import Actor, charge_create
from refunds.services import refund_issue
from tests.factories import AccountFactory, UserFactory, default_credit_type, funded_account, hold_for

pytestmark = pytest.mark.django_db


def _goes_to(client, term: str) -> str:
    response = client.get("/admin/search/", {"q": term})
    assert response.status_code == 302
    return response["Location"]


def test_public_ids_go_to_their_object(admin_client):
    account = funded_account("100", email="Ada@example.com", external_id="cust-42")
    charge = charge_create(
        account=account, credit_type=default_credit_type(), amount=Decimal("3"), actor=Actor.system()
    )
    log = refund_issue(charge=charge, amount=Decimal("1"), reason="duplicate", actor=Actor.system())
    assert _goes_to(admin_client, account.public_id) == f"/admin/accounts/account/{account.pk}/change/"
    assert _goes_to(admin_client, f" {charge.public_id} ") == f"/admin/billing/ledgerentry/{charge.pk}/change/"
    assert _goes_to(admin_client, log.public_id) == f"/admin/refunds/refundlog/{log.pk}/change/"
    assert _goes_to(admin_client, "cust-42") == f"/admin/accounts/account/{account.pk}/change/"
    assert _goes_to(admin_client, "ada@EXAMPLE.com") == f"/admin/accounts/account/{account.pk}/change/"


def test_a_key_prefix_goes_to_the_key(admin_client):
    key = api_key_create(kind=ApiKey.Kind.ACCOUNT, account=AccountFactory(), name="ci").api_key
    assert _goes_to(admin_client, key.prefix) == f"/admin/accounts/apikey/{key.pk}/change/"
    assert _goes_to(admin_client, key.public_id) == f"/admin/accounts/apikey/{key.pk}/change/"


def test_several_matches_go_to_the_filtered_list_and_none_says_so(admin_client):
    account = funded_account("100")
    for _ in range(2):
        charge_create(
            account=account,
            credit_type=default_credit_type(),
            amount=Decimal("1"),
            task_id="job-7",
            actor=Actor.system(),
        )
    assert _goes_to(admin_client, "job-7") == "/admin/billing/ledgerentry/?q=job-7"
    response = admin_client.get("/admin/search/", {"q": "txn_nothing"}, follow=True)
    assert b"Nothing found for" in response.content


def test_only_what_the_user_may_view_is_found(client):
    charge = LedgerEntry.objects.get(account=funded_account("5"))
    staff = UserFactory()
    client.force_login(staff)
    response = client.get("/admin/search/", {"q": charge.public_id}, follow=True)
    assert b"Nothing found for" in response.content
    staff.user_permissions.add(Permission.objects.get(codename="view_ledgerentry"))
    client.force_login(type(staff).objects.get(pk=staff.pk))
    assert _goes_to(client, charge.public_id) == f"/admin/billing/ledgerentry/{charge.pk}/change/"


def test_the_search_box_is_in_the_header_for_staff_only(admin_client, client):
    assert b'id="console-search"' in admin_client.get("/admin/").content
    assert client.get("/admin/search/", {"q": "acc_x"}).status_code == 302  # to the login page
    assert "/login/" in client.get("/admin/search/", {"q": "acc_x"})["Location"]


def test_a_hold_id_goes_to_the_hold(admin_client):
    hold = hold_for(funded_account("10"), "2.00")
    assert _goes_to(admin_client, hold.public_id) == f"/admin/billing/hold/{hold.pk}/change/"
