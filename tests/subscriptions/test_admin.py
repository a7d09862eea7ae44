"""Plans and subscriptions in the admin, through Django's test client."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import LedgerEntry
from billing.services import Actor, grant_create
from subscriptions.models import AllowanceGrant, Subscription
from subscriptions.services import subscription_create
from tests.factories import AccountFactory, PlanFactory, UserFactory, default_credit_type

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    client.force_login(UserFactory(is_superuser=True))
    return client


def test_adding_a_subscription_in_the_admin_grants_its_first_allowance(superuser_client):
    account, plan = AccountFactory(), PlanFactory()
    response = superuser_client.post(
        "/admin/subscriptions/subscription/add/",
        {
            "account": account.pk,
            "plan": plan.pk,
            "status": "active",
            "stripe_customer_id": "cus_9",
            "stripe_subscription_id": "sub_9",
            "metadata": "{}",
            "allowance_grants-TOTAL_FORMS": "0",
            "allowance_grants-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    subscription = Subscription.objects.get(account=account)
    assert AllowanceGrant.objects.get(subscription=subscription).amount == Decimal("100.00")
    assert LedgerEntry.objects.get(account=account, kind="grant").actor_user is not None


def test_cancel_action_calls_the_service(superuser_client):
    subscription = subscription_create(account=AccountFactory(), plan=PlanFactory())
    response = superuser_client.post(
        "/admin/subscriptions/subscription/", {"action": "mark_canceled", "_selected_action": [subscription.pk]}
    )
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.status == "canceled" and subscription.canceled_at is not None


@pytest.mark.parametrize(
    "path",
    [
        "/admin/subscriptions/plan/",
        "/admin/subscriptions/subscription/",
    ],
)
def test_changelists_render(superuser_client, path):
    account = AccountFactory()
    subscription_create(account=account, plan=PlanFactory())
    grant_create(
        account=account,
        credit_type=default_credit_type(),
        amount=Decimal("1"),
        actor=Actor.system(),
        expires_at=timezone.now() + timedelta(days=1),
    )
    assert superuser_client.get(path).status_code == 200


def test_subscription_change_page_renders(superuser_client):
    subscription = subscription_create(account=AccountFactory(), plan=PlanFactory())
    assert superuser_client.get(f"/admin/subscriptions/subscription/{subscription.pk}/change/").status_code == 200


def _add_subscription(client, account, plan, status="active"):
    return client.post(
        "/admin/subscriptions/subscription/add/",
        {
            "account": account.pk,
            "plan": plan.pk,
            "status": status,
            "metadata": "{}",
            "allowance_grants-TOTAL_FORMS": "0",
            "allowance_grants-INITIAL_FORMS": "0",
        },
    )


@pytest.mark.parametrize(
    ("status", "plan_active", "existing", "message"),
    [
        ("canceled", True, False, b"must be trialing"),
        ("active", False, False, b"takes no new subscriptions"),
        ("active", True, True, b"already has a live subscription"),
    ],
)
def test_adding_a_subscription_the_service_would_refuse_is_a_form_error(
    superuser_client, status, plan_active, existing, message
):
    account, plan = AccountFactory(), PlanFactory()
    if existing:
        subscription_create(account=account, plan=PlanFactory())
    plan.is_active = plan_active
    plan.save()
    before = Subscription.objects.filter(account=account).count()
    response = _add_subscription(superuser_client, account, plan, status=status)
    assert response.status_code == 200 and message in response.content
    assert Subscription.objects.filter(account=account).count() == before


def test_renewing_says_which_accounts_got_which_allowance(superuser_client):
    account = AccountFactory()
    subscription = subscription_create(account=account, plan=PlanFactory(name="Gold"))
    Subscription.objects.filter(pk=subscription.pk).update(
        current_period_start=timezone.now() - timedelta(days=40), current_period_end=timezone.now() - timedelta(days=10)
    )
    response = superuser_client.post(
        "/admin/subscriptions/subscription/",
        {"action": "renew_due", "_selected_action": [subscription.pk]},
        follow=True,
    )
    text = " ".join(str(m) for m in response.context["messages"])
    assert f"{account.public_id}: Gold, 100.00" in text and "Renewed 1 subscription," in text
