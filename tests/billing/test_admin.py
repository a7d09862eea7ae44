"""The ledger admin, and what billing adds to the account admin (wallets, grant, adjust), via the test client."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from billing.models import LedgerEntry, Wallet
from billing.services import Actor, grant_create
from tests.factories import AccountFactory, UserFactory, default_credit_type, funded_account

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/accounts/account/"


def staff_with(*perms):
    user = UserFactory()
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def grant_via_admin(client, account, amount="12.34", apply=True):
    data = {
        "action": "grant_credits",
        "_selected_action": [account.pk],
        "credit_type": default_credit_type().code,
        "amount": amount,
        "reason": "goodwill",
    }
    if apply:
        data["apply"] = "1"
    return client.post(CHANGELIST, data)


def test_grant_action_shows_an_intermediate_form_first(client):
    user = staff_with("accounts.view_account", "accounts.change_account", "accounts.grant_credits")
    client.force_login(user)
    account = AccountFactory()
    response = grant_via_admin(client, account, apply=False)
    assert response.status_code == 200
    assert b"Grant credits" in response.content and b'name="amount"' in response.content
    assert not Wallet.objects.filter(account=account).exists()


def test_grant_action_changes_balance_by_exactly_the_amount_with_one_attributed_entry(client):
    user = staff_with("accounts.view_account", "accounts.change_account", "accounts.grant_credits")
    client.force_login(user)
    account = funded_account("1.00")
    response = grant_via_admin(client, account, amount="12.34")
    assert response.status_code == 302
    assert Wallet.objects.get(account=account).balance == Decimal("13.34")
    entries = LedgerEntry.objects.filter(account=account, actor_user=user)
    assert entries.count() == 1
    entry = entries.get()
    assert entry.kind == "grant" and entry.amount == Decimal("12.34") and entry.description == "goodwill"


def test_grant_action_is_refused_without_the_permission(client):
    user = staff_with("accounts.view_account", "accounts.change_account")
    client.force_login(user)
    account = AccountFactory()
    grant_via_admin(client, account)
    assert not LedgerEntry.objects.filter(account=account).exists()


def test_grant_with_too_many_decimals_is_shown_as_a_form_error(client):
    client.force_login(UserFactory(is_superuser=True))
    account = AccountFactory()
    response = grant_via_admin(client, account, amount="1.005")
    assert response.status_code == 200 and b"decimal places" in response.content
    assert not LedgerEntry.objects.filter(account=account).exists()


def test_adjustment_action_records_reason_and_staff(client):
    user = UserFactory(is_superuser=True)
    client.force_login(user)
    account = funded_account("10.00")
    client.post(
        CHANGELIST,
        {
            "action": "adjust_balance",
            "_selected_action": [account.pk],
            "credit_type": "credits",
            "amount": "-2.50",
            "reason": "double grant",
            "apply": "1",
        },
    )
    entry = LedgerEntry.objects.get(account=account, kind="adjustment")
    assert entry.amount == Decimal("-2.50") and entry.actor_user == user and entry.description == "double grant"


def test_ledger_is_read_only_in_the_admin(client):
    client.force_login(UserFactory(is_superuser=True))
    account = funded_account("1.00")
    entry = LedgerEntry.objects.get(account=account)
    assert client.get("/admin/billing/ledgerentry/").status_code == 200
    page = client.get(f"/admin/billing/ledgerentry/{entry.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    client.post(f"/admin/billing/ledgerentry/{entry.pk}/change/", {"amount": "999"})
    assert client.get("/admin/billing/ledgerentry/add/").status_code == 403
    assert client.get(f"/admin/billing/ledgerentry/{entry.pk}/delete/").status_code == 403
    entry.refresh_from_db()
    assert entry.amount == Decimal("1.00")


def test_ledger_search_and_filters(client):
    client.force_login(UserFactory(is_superuser=True))
    account = funded_account("1.00")
    assert client.get(f"/admin/billing/ledgerentry/?q={account.public_id}").status_code == 200
    assert client.get("/admin/billing/ledgerentry/?kind__exact=grant").status_code == 200


def test_account_search_by_external_id_shows_wallet_inline(client):
    client.force_login(UserFactory(is_superuser=True))
    account = funded_account("3.00", external_id="find-me")
    listing = client.get(f"{CHANGELIST}?q=find-me")
    assert account.public_id.encode() in listing.content
    detail = client.get(f"{CHANGELIST}{account.pk}/change/")
    assert b"3.00" in detail.content


def test_account_admin_offers_the_money_actions_before_the_status_actions(client):
    client.force_login(UserFactory(is_superuser=True))
    choices = client.get(CHANGELIST).context["action_form"].fields["action"].choices
    assert [name for name, _ in choices if name][-4:] == ["grant_credits", "adjust_balance", "suspend", "reactivate"]


@pytest.mark.parametrize(
    "path",
    [
        "/admin/billing/creditlot/",
        "/admin/billing/dailylimitoverride/",
        "/admin/billing/dailyusage/",
    ],
)
def test_lot_and_daily_limit_changelists_render(client, path):
    client.force_login(UserFactory(is_superuser=True))
    grant_create(
        account=AccountFactory(),
        credit_type=default_credit_type(),
        amount=Decimal("1"),
        actor=Actor.system(),
        expires_at=timezone.now() + timedelta(days=1),
    )
    assert client.get(path).status_code == 200
