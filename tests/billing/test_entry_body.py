"""The hand-built ledger entry body of POST responses is exactly what the schema's serializer renders."""

from decimal import Decimal

import pytest

from billing.api import LedgerEntryOutput, entry_body
from billing.models import LedgerEntry
from billing.services import Actor, charge_create
from pricing.selectors import catalogue_cache_clear
from pricing.services import Usage, price_create, price_quote
from refunds.services import refund_issue
from tests.factories import default_credit_type, funded_account

pytestmark = pytest.mark.django_db


def stored(entry: LedgerEntry) -> LedgerEntry:
    return LedgerEntry.objects.select_related("account", "credit_type", "related_entry", "price_version").get(
        pk=entry.pk
    )


def test_a_plain_charge_renders_as_the_serializer_does():
    account = funded_account("10.00")
    entry = charge_create(
        account=account,
        credit_type=default_credit_type(),
        amount=Decimal("1.5"),
        task_id="t-1",
        route="/chat",
        description="ünïcode ✓",
        metadata={"nested": {"list": [1, "two", None]}},
        idempotency_key="k-1",
        actor=Actor.system(),
    )
    assert entry_body(entry) == dict(LedgerEntryOutput(stored(entry)).data)


def test_a_refund_renders_its_related_charge():
    account = funded_account("10.00")
    charge = charge_create(account=account, credit_type=default_credit_type(), amount="2", actor=Actor.system())
    refund = refund_issue(charge=charge, amount="1", reason="api_error", actor=Actor.system()).refund_entry
    body = entry_body(refund)
    assert body["related_entry"] == charge.public_id
    assert body == dict(LedgerEntryOutput(stored(refund)).data)


def test_a_priced_charge_renders_its_pricing():
    catalogue_cache_clear()
    price_create(key="acme/chat", credit_type=default_credit_type(), per_1k_input_tokens="2", per_1k_output_tokens="4")
    quote = price_quote(key="acme/chat", usage=Usage(input_tokens=1000, output_tokens=500))
    account = funded_account("10.00")
    entry = charge_create(account=account, credit_type=quote.credit_type, quote=quote, actor=Actor.system())
    body = entry_body(entry)
    assert body["pricing"]["key"] == "acme/chat" and body["pricing"]["version"] == 1
    assert body == dict(LedgerEntryOutput(stored(entry)).data)
    catalogue_cache_clear()


def _hold_rendered_by_serializer(hold) -> dict:
    from billing.api_holds import HoldOutput
    from billing.models import Hold

    stored_hold = Hold.objects.select_related("account", "credit_type", "capture_entry").get(pk=hold.pk)
    return dict(HoldOutput(stored_hold).data)


def test_holds_render_as_the_serializer_does_pending_captured_and_released():
    from billing.api_holds import hold_body
    from billing.services import hold_capture, hold_create, hold_release

    account = funded_account("10.00")
    actor = Actor.system()
    pending = hold_create(
        account=account, credit_type=default_credit_type(), amount="2", metadata={"job": "x"}, actor=actor
    )
    assert hold_body(pending) == _hold_rendered_by_serializer(pending)
    captured = hold_capture(hold=pending, amount="1.25", actor=actor)
    assert hold_body(captured)["capture_entry"] is not None
    assert hold_body(captured) == _hold_rendered_by_serializer(captured)
    other = hold_create(account=account, credit_type=default_credit_type(), amount="1", actor=actor)
    released = hold_release(hold=other, reason="job cancelled", actor=actor)
    assert hold_body(released)["resolved_at"] is not None
    assert hold_body(released) == _hold_rendered_by_serializer(released)
