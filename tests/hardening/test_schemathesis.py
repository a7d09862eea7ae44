"""Property-based API testing against our own OpenAPI schema (schemathesis).

For every operation in `/api/schema/`, generated requests (valid and
invalid) are sent in-process to the WSGI app with a live service API key,
half of them aimed at a real funded account and at real holds and charges
of it. Every response must be a non-5xx,
have a documented status code and content type, and match the documented
body schema.
"""

from __future__ import annotations

import functools
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from billing.services import Actor, charge_create, grant_create, hold_create
from config.wsgi import application
from tests.factories import default_credit_type, funded_account, service_key

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))


@functools.cache
def _schema():
    return schemathesis.openapi.from_wsgi("/api/schema/", application)


def _operations() -> list[str]:
    return sorted(f"{op.method.upper()} {op.path}" for op in (r.ok() for r in _schema().get_all_operations()))


@pytest.fixture
def wsgi_keeps_the_test_connection():
    """Calls straight into the WSGI app must not close the test's connection.

    Django's handler closes old connections at the start and end of every
    request; its own test client turns that off, and so must we.
    """
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
@pytest.mark.timeout(120)
@pytest.mark.usefixtures("wsgi_keeps_the_test_connection")
@pytest.mark.parametrize("label", _operations())
def test_operation_never_errors_and_matches_its_schema(label):
    method, path = label.split(" ", 1)
    operation = _schema()[path][method]
    _, secret = service_key()
    account = funded_account("100.00")
    # Real objects for the path parameters, so hold and refund operations get
    # past their 404 and are exercised for real (the pool is refreshed when a
    # generated call uses one up: a hold captured, a charge fully refunded).
    credits = default_credit_type()

    def funded(make):
        # Generated captures may take everything available: top up first.
        grant_create(account=account, credit_type=credits, amount="1000.00", actor=Actor.system())
        return make().public_id

    real = {
        "account_id": lambda: account.public_id,
        "hold_id": lambda: funded(
            lambda: hold_create(account=account, credit_type=credits, amount="1.00", actor=Actor.system())
        ),
        "charge_id": lambda: funded(
            lambda: charge_create(account=account, credit_type=credits, amount="1.00", actor=Actor.system())
        ),
    }
    headers = {"Authorization": f"Bearer {secret}"}

    @given(case=operation.as_strategy(), aim_at_real_account=st.booleans())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case, aim_at_real_account: bool) -> None:
        if aim_at_real_account:
            for name in list(case.path_parameters or {}):
                if name in real:
                    case.path_parameters[name] = real[name]()
            if isinstance(case.body, dict) and "account" in case.body:
                case.body["account"] = account.public_id
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()
