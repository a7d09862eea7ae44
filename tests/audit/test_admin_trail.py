"""The staff audit trail of changes made through the admin (Django's test client, real PostgreSQL).

Personas: `root` (a superuser) makes the changes; `clerk` is staff without
the audit trail's view permission.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from accounts.models import Account, ApiKey
from pricing.models import Price
from tests.factories import AccountFactory, PriceFactory, UserFactory, service_key

pytestmark = pytest.mark.django_db

AUDIT_LIST = "/admin/auditlog/logentry/"


@pytest.fixture
def root():
    return UserFactory(username="root", is_superuser=True)


@pytest.fixture
def root_client(client, root):
    client.force_login(root)
    return client


def entries_for(obj) -> list[LogEntry]:
    return list(LogEntry.objects.get_for_object(obj).order_by("timestamp", "id"))


def price_change_form(price: Price, **overrides) -> dict:
    data = {
        "key": price.key,
        "credit_type": price.credit_type_id,
        "effective_from_0": price.effective_from.strftime("%Y-%m-%d"),
        "effective_from_1": price.effective_from.strftime("%H:%M:%S"),
        "per_request": "0",
        "per_1k_input_tokens": "2.5",
        "per_1k_output_tokens": "10",
        "per_unit": "0",
        "unit_name": "",
        "note": "",
    }
    data.update(overrides)
    return data


def every_text_of(entry: LogEntry) -> str:
    """Everything an audit row stores, as one string."""
    return " ".join(
        str(value)
        for value in (
            entry.changes,
            entry.changes_text,
            entry.serialized_data,
            entry.additional_data,
            entry.object_repr,
            entry.object_pk,
        )
    )


# --- a price change ------------------------------------------------------------


def test_a_price_change_through_the_admin_records_who_when_and_before_after(root_client, root):
    first = PriceFactory(key="openai/gpt-4o", per_1k_input_tokens=Decimal("2.5"))
    before = timezone.now()

    response = root_client.post(
        f"/admin/pricing/price/{first.pk}/change/",
        price_change_form(first, per_1k_input_tokens="3", note="provider price rise"),
    )

    assert response.status_code == 302
    second = Price.objects.get(key="openai/gpt-4o", version=2)
    [entry] = entries_for(second)
    assert entry.actor == root
    assert before <= entry.timestamp <= timezone.now()
    assert entry.action == LogEntry.Action.CREATE
    assert [Decimal(v) for v in entry.changes["per_1k_input_tokens"]] == [Decimal("2.5"), Decimal("3")]
    assert entry.changes["version"] == [1, 2]
    assert entry.changes["note"] == ["", "provider price rise"]
    assert "per_1k_output_tokens" not in entry.changes  # unchanged from version 1
    assert entry.additional_data == {"supersedes": first.public_id}


def test_a_price_version_history_page_shows_its_trail(root_client):
    first = PriceFactory(key="openai/gpt-4o")
    root_client.post(f"/admin/pricing/price/{first.pk}/change/", price_change_form(first, per_1k_input_tokens="3"))
    second = Price.objects.get(key="openai/gpt-4o", version=2)

    page = root_client.get(f"/admin/pricing/price/{second.pk}/history/").content.decode()

    assert 'id="audit-trail"' in page
    assert "Per 1k input tokens" in page and "2.5" in page and "3" in page
    assert f"supersedes {first.public_id}" in page
    assert "root" in page


# --- an API key revocation -------------------------------------------------------


def test_an_api_key_revocation_through_the_admin_records_who_when_and_before_after(root_client, root):
    api_key, secret = service_key()
    before = timezone.now()

    root_client.post("/admin/accounts/apikey/", {"action": "revoke", "_selected_action": [api_key.pk]})

    api_key.refresh_from_db()
    [entry] = [e for e in entries_for(api_key) if e.action == LogEntry.Action.UPDATE]
    assert entry.actor == root
    assert before <= entry.timestamp <= timezone.now()
    assert entry.changes == {"revoked_at": [None, str(api_key.revoked_at.replace(tzinfo=None))]}
    for row in entries_for(api_key):
        assert secret not in every_text_of(row) and api_key.secret_hash not in every_text_of(row)


def test_revoking_a_revoked_key_adds_nothing_to_the_trail(root_client):
    api_key, _ = service_key()
    root_client.post("/admin/accounts/apikey/", {"action": "revoke", "_selected_action": [api_key.pk]})
    updates = LogEntry.objects.get_for_object(api_key).filter(action=LogEntry.Action.UPDATE)
    assert updates.count() == 1

    from accounts.services import api_key_revoke

    api_key_revoke(api_key=api_key)
    assert updates.count() == 1


def test_an_api_key_created_in_the_admin_is_audited_without_its_secret_or_hash(root_client, root):
    response = root_client.post("/admin/accounts/apikey/add/", {"name": "gateway", "kind": "service"})
    secret = response.context["secret"]
    api_key = ApiKey.objects.get(name="gateway")

    [entry] = entries_for(api_key)

    assert entry.actor == root and entry.action == LogEntry.Action.CREATE
    assert entry.changes["name"] == [None, "gateway"] and entry.changes["prefix"] == [None, api_key.prefix]
    assert "secret_hash" not in entry.changes and "last_used_at" not in entry.changes
    assert secret not in every_text_of(entry) and api_key.secret_hash not in every_text_of(entry)


def test_the_audit_pages_never_show_a_key_secret_or_hash(root_client):
    response = root_client.post("/admin/accounts/apikey/add/", {"name": "gateway", "kind": "service"})
    secret = response.context["secret"]
    api_key = ApiKey.objects.get(name="gateway")
    root_client.post("/admin/accounts/apikey/", {"action": "revoke", "_selected_action": [api_key.pk]})
    entry = LogEntry.objects.get_for_object(api_key).first()

    pages = [
        root_client.get(AUDIT_LIST).content.decode(),
        root_client.get(f"{AUDIT_LIST}{entry.pk}/change/").content.decode(),
        root_client.get(f"/admin/accounts/apikey/{api_key.pk}/history/").content.decode(),
    ]

    assert api_key.prefix in pages[0]  # the rows are there
    for page in pages:
        assert secret not in page and api_key.secret_hash not in page and "Secret hash" not in page


# --- other changes made through services the admin calls -------------------------------


def test_suspending_an_account_through_the_admin_action_is_attributed_to_the_staff_user(root_client, root):
    account = AccountFactory()
    root_client.post("/admin/accounts/account/", {"action": "suspend", "_selected_action": [account.pk]})

    [entry] = LogEntry.objects.get_for_object(account).filter(action=LogEntry.Action.UPDATE)
    assert entry.actor == root and entry.changes == {"status": ["active", "suspended"]}


def test_a_change_with_no_staff_user_is_recorded_as_system():
    account = AccountFactory()
    account.name = "renamed by a task"
    account.save()

    [entry] = LogEntry.objects.get_for_object(account).filter(action=LogEntry.Action.UPDATE)
    assert entry.actor is None


# --- the audit list ---------------------------------------------------------------------


def test_the_audit_list_filters_by_model_actor_object_and_date(root_client, root):
    account = AccountFactory()
    other = AccountFactory()
    root_client.post("/admin/accounts/account/", {"action": "suspend", "_selected_action": [account.pk]})
    price = PriceFactory()  # by no staff user
    account_type = ContentType.objects.get_for_model(Account)
    price_type = ContentType.objects.get_for_model(Price)

    def rows(query: str) -> set[tuple[int, str]]:
        response = root_client.get(f"{AUDIT_LIST}?{query}")
        assert response.status_code == 200
        return {(e.content_type_id, e.object_pk) for e in response.context["cl"].result_list}

    assert rows(f"model={price_type.pk}") == {(price_type.pk, str(price.pk))}
    assert rows(f"actor={root.pk}") == {(account_type.pk, str(account.pk))}
    assert (account_type.pk, str(other.pk)) in rows("actor=system")
    assert rows(f"object={account_type.pk}:{account.pk}") == {(account_type.pk, str(account.pk))}
    today = timezone.localdate()
    assert len(rows(f"timestamp__year={today.year}&timestamp__month={today.month}&timestamp__day={today.day}")) >= 3
    assert rows(f"timestamp__year={today.year - 1}") == set()


def test_the_audit_list_shows_who_when_and_each_fields_before_and_after(root_client):
    account = AccountFactory()
    root_client.post("/admin/accounts/account/", {"action": "suspend", "_selected_action": [account.pk]})

    page = root_client.get(f"{AUDIT_LIST}?object={ContentType.objects.get_for_model(Account).pk}:{account.pk}")

    html = page.content.decode()
    assert '<div class="audit-change"><b>Status</b>: Active → Suspended</div>' in html
    assert '<td class="field-actor_display">root</td>' in html
    assert timezone.localtime().strftime("%Y-%m-%d") in html


def test_an_audit_row_page_shows_the_before_and_after(root_client):
    account = AccountFactory()
    root_client.post("/admin/accounts/account/", {"action": "suspend", "_selected_action": [account.pk]})
    entry = LogEntry.objects.get_for_object(account).get(action=LogEntry.Action.UPDATE)

    page = root_client.get(f"{AUDIT_LIST}{entry.pk}/change/").content.decode()

    assert "<td>Status</td><td>Active</td><td>Suspended</td>" in page and "root" in page


def test_no_one_adds_changes_or_deletes_audit_rows_through_the_admin(root_client):
    account = AccountFactory()
    entry = LogEntry.objects.get_for_object(account).get()

    assert root_client.get(f"{AUDIT_LIST}add/").status_code == 403
    assert root_client.post(f"{AUDIT_LIST}{entry.pk}/change/", {"object_repr": "forged"}).status_code == 403
    assert root_client.post(f"{AUDIT_LIST}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert 'name="action"' not in root_client.get(AUDIT_LIST).content.decode()  # no actions, not even delete
    entry.refresh_from_db()
    assert entry.object_repr == str(account)


# --- the permission boundary -------------------------------------------------------


def test_staff_without_the_view_permission_cannot_see_the_audit_list(client):
    clerk = UserFactory(username="clerk", is_staff=True)
    clerk.user_permissions.add(*Permission.objects.filter(codename__in=["view_account", "change_account"]))
    client.force_login(clerk)
    account = AccountFactory()

    assert client.get(AUDIT_LIST).status_code == 403
    entry = LogEntry.objects.get_for_object(account).get()
    assert client.get(f"{AUDIT_LIST}{entry.pk}/change/").status_code == 403
    history = client.get(f"/admin/accounts/account/{account.pk}/history/")
    assert history.status_code == 200 and 'id="audit-trail"' not in history.content.decode()


def test_staff_with_the_view_permission_can_see_the_audit_list(client):
    auditor = UserFactory(username="auditor", is_staff=True)
    auditor.user_permissions.add(Permission.objects.get(codename="view_logentry", content_type__app_label="auditlog"))
    client.force_login(auditor)
    AccountFactory()

    assert client.get(AUDIT_LIST).status_code == 200


def test_a_non_staff_user_is_sent_to_the_login_page(client):
    client.force_login(UserFactory(username="customer", is_staff=False, is_superuser=False))
    response = client.get(AUDIT_LIST)
    assert response.status_code == 302 and "/login/" in response["Location"]
