"""Named staff users for the approval tests, and the threshold they run under."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.models import Permission

from tests.factories import UserFactory

REQUESTER_PERMS = [
    "accounts.view_account",
    "accounts.change_account",
    "accounts.grant_credits",
    "billing.adjust_balance",
    "billing.view_ledgerentry",
    "billing.refund_charge",
    "refunds.view_refundlog",
]


def staff_with(*perms: str, **kwargs):
    user = UserFactory(**kwargs)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def requester(**kwargs):
    """Makes grants, adjustments and refunds; may not approve."""
    return staff_with(*REQUESTER_PERMS, **kwargs)


def approver(**kwargs):
    """May approve or reject (and make requests of their own)."""
    return staff_with(*REQUESTER_PERMS, "approvals.approve_request", **kwargs)


def threshold(settings, **amounts: str) -> None:
    settings.CREDITLEDGER_APPROVAL_THRESHOLD = {code: Decimal(value) for code, value in amounts.items()}
