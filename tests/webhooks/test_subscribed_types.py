"""Which event types some endpoint receives: a per-process cache, reloaded before a charge locks its wallet."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.core import Actor
from billing.models import OutboxMessage
from billing.services import charge_create
from tests.factories import default_credit_type, funded_account
from webhooks.selectors import subscribed_event_types_forget
from webhooks.services import FANOUT_TOPIC, endpoint_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def cached_types(settings):
    settings.CREDITLEDGER_WEBHOOK_ENDPOINTS_CACHE_S = 60
    settings.CREDITLEDGER_WEBHOOK_ALLOW_PRIVATE = True
    subscribed_event_types_forget()
    yield
    subscribed_event_types_forget()


def _charge(account):
    with CaptureQueriesContext(connection) as captured:
        charge_create(account=account, credit_type=default_credit_type(), amount="1", actor=Actor.system())
    return [query["sql"] for query in captured.captured_queries]


def test_a_stale_list_of_subscribed_types_is_reloaded_before_the_wallet_lock_not_under_it(cached_types):
    account = funded_account("10")
    subscribed_event_types_forget()  # stale, as 60 s later
    sql = _charge(account)
    endpoint_reads = [i for i, text in enumerate(sql) if "webhooks_webhookendpoint" in text]
    lock = next(i for i, text in enumerate(sql) if "FOR NO KEY UPDATE" in text)
    assert endpoint_reads and all(i < lock for i in endpoint_reads)


def test_a_fresh_list_costs_a_charge_no_query(cached_types):
    account = funded_account("10")
    _charge(account)
    sql = _charge(account)
    assert not any("webhooks_webhookendpoint" in text for text in sql)


def test_an_endpoint_created_in_this_process_receives_the_next_charge_at_once(
    cached_types, django_capture_on_commit_callbacks
):
    account = funded_account("10")
    _charge(account)  # the cached list: nobody subscribes
    with django_capture_on_commit_callbacks(execute=True):
        endpoint_create(url="https://example.com/hook", event_types=["charge.created"])
    _charge(account)
    assert OutboxMessage.objects.filter(topic=FANOUT_TOPIC).count() == 1


def test_the_charge_event_and_its_fan_out_message_travel_in_the_statement_that_writes_the_entry(
    cached_types, django_capture_on_commit_callbacks
):
    account = funded_account("10")
    _charge(account)
    without_endpoint = _charge(account)
    with django_capture_on_commit_callbacks(execute=True):
        endpoint_create(url="https://example.com/hook", event_types=["charge.created"])
    _charge(account)
    with_endpoint = _charge(account)
    assert len(with_endpoint) == len(without_endpoint)
    posting = next(text for text in with_endpoint if 'INSERT INTO "billing_ledgerentry"' in text)
    # The event is the entry's event_type column; the fan-out message is the statement's one other row.
    assert "'charge.created'" in posting and 'INSERT INTO "billing_outboxmessage"' in posting
    assert 'INSERT INTO "events_event"' not in posting
    assert OutboxMessage.objects.filter(topic=FANOUT_TOPIC).count() == 2
