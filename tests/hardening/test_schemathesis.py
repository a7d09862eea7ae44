"""Property-based API testing against our own OpenAPI schema (schemathesis, every check: `--checks all`).

For every operation in `/api/schema/`, generated requests, schema-valid
(positive) and schema-invalid (negative), are sent in-process to the WSGI
app with a live service API key, half of them aimed at a real funded account
and at real holds and charges of it. Every check schemathesis has runs on
every response: no 5xx, a documented status, content type, headers and body;
schema-valid data accepted and schema-invalid data refused; required headers
enforced; unsupported methods answered 405; authentication not ignored; and
the rest.

A few rules depend on data rather than shape, which no schema can say; for
schema-valid requests the test supplies them, as a client would:
* `account` is required with a service key (the key's kind decides, so the
  schema documents it in the description): positive bodies name the real account;
* an amount's decimal places are bounded by its credit type's scale
  (`credits`: 2), so positive amounts are cut to 2 places;
* a grant's `expires_at` must be in the future, so positive ones are;
* a cursor is valid only as issued, so generated ones are dropped;
* metadata keys may not hold NUL (OpenAPI 3.0 has no `propertyNames`), and
  metadata is at most 8 KiB of JSON (no schema keyword bounds a size in bytes);
* capturing by `usage` needs a hold with a price key, so such captures get one
  (in the stateful run, a capture by usage of a hold without one captures an amount);
* a batch's items follow these rules as charges, and two items of one
  account carry different `idempotency_key`s.
Schema-valid requests may still be business declines: 402 (insufficient
credits) and 422 (no price for the key) are expected answers to them.
"""

from __future__ import annotations

import functools
import json
import os
import re
import uuid
from decimal import Decimal

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from schemathesis.checks import is_check_class
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi import checks as openapi_checks

from billing.models import Hold
from billing.services import Actor, charge_create, grant_create, hold_create
from config.wsgi import application
from tests.factories import PriceFactory, default_credit_type, funded_account, service_key

# Every check schemathesis registers (the CLI's `--checks all`). The OpenAPI checks (status, content type,
# headers, body, ...) register when their module is imported: imported above, or this list would hold
# `not_a_server_error` alone (test_every_openapi_check_runs).
CHECKS = [check for check in REGISTERED_CHECKS.get_all() if not is_check_class(check)]
EXAMPLES_PER_OPERATION = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))
# Answers a schema-valid request may get: success, or a decline that depends on state, not shape.
POSITIVE_EXPECTED = ["2xx", "401", "402", "403", "404", "409", "422", "429"]
# Operations whose body names the account (required with a service key).
ACCOUNT_BODIES = ("/api/v1/charges", "/api/v1/grants", "/api/v1/holds", "/api/v1/checkout-sessions")
BATCH = "/api/v1/charges/batch"
PRICE_KEY = "schemathesis/model"


@functools.cache
def _schema():
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    schema.config.checks.positive_data_acceptance.expected_statuses = POSITIVE_EXPECTED
    return schema


def _as_a_client_would(case, path: str, account_id: str) -> None:
    """Supply, for a schema-valid request, what depends on data rather than shape (see the module doc)."""
    if isinstance(case.body, dict):
        _body_as_a_client_would(case.body, path, account_id)
        if path == BATCH and isinstance(case.body.get("items"), list):
            # Each item is a charge's body; two items of one account may not share an idempotency_key.
            keys: set[str] = set()
            for index, item in enumerate(case.body["items"]):
                if isinstance(item, dict):
                    _body_as_a_client_would(item, "/api/v1/charges", account_id)
                    key = item.get("idempotency_key")
                    if isinstance(key, str) and key in keys:
                        item["idempotency_key"] = f"{key[:240]}-{index}"
                    keys.add(item.get("idempotency_key"))
    if case.query:
        # An issued cursor only; and no empty filter (`?task_id=` is 400): a value the state machine took from an
        # earlier response (a hold's empty task_id) is not sent empty, as a client would not send it.
        for name in [n for n, value in case.query.items() if n == "cursor" or value == ""]:
            del case.query[name]


def _without_nul_keys(value):
    if isinstance(value, dict):
        return {k.replace("\x00", ""): _without_nul_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul_keys(v) for v in value]
    return value


def _body_as_a_client_would(body: dict, path: str, account_id: str) -> None:
    if path in ACCOUNT_BODIES and "account" not in body:
        body["account"] = account_id
    for name in ("amount", "threshold", "target", "low_balance"):  # at the credit type's scale
        value = body.get(name)
        if isinstance(value, str) and re.fullmatch(r"[0-9]+\.[0-9]+", value):
            whole, places = value.split(".")
            cut = f"{whole}.{places[:2]}"
            zero_allowed = name == "low_balance" or path.endswith("/capture")
            body[name] = cut if Decimal(cut) or zero_allowed else "0.01"
    if isinstance(body.get("metadata"), dict):
        metadata = _without_nul_keys(body["metadata"])
        body["metadata"] = metadata if len(json.dumps(metadata, ensure_ascii=False).encode()) <= 8 * 1024 else {}
    if isinstance(body.get("expires_at"), str):
        body["expires_at"] = "2999-01-01T00:00:00Z"


def _operations() -> list[str]:
    return sorted(f"{op.method.upper()} {op.path}" for op in (r.ok() for r in _schema().get_all_operations()))


def test_every_openapi_check_runs():
    names = {check.__name__ for check in CHECKS}
    assert {
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "missing_required_header",
        "unsupported_method",
        "ignored_auth",
        "use_after_free",
        "ensure_resource_availability",
    } <= names, sorted(names)
    assert openapi_checks.response_schema_conformance in CHECKS


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
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
@pytest.mark.parametrize("label", _operations())
def test_operation_never_errors_and_matches_its_schema(label, mode):
    method, path = label.split(" ", 1)
    operation = _schema()[path][method]
    _, secret = service_key()
    account = funded_account("100.00")
    # Real objects for the path parameters, so hold and refund operations get
    # past their 404 and are exercised for real (the pool is refreshed when a
    # generated call uses one up: a hold captured, a charge fully refunded).
    credits = default_credit_type()
    PriceFactory(key=PRICE_KEY)  # 2.5 / 10 credits per 1K input / output tokens

    def funded(make):
        # Generated captures may take everything available: top up first.
        grant_create(account=account, credit_type=credits, amount="1000.00", actor=Actor.system())
        return make().public_id

    real = {
        "account_id": lambda: account.public_id,
        "hold_id": lambda: funded(
            lambda: hold_create(account=account, credit_type=credits, amount="1.00", actor=Actor.system())
        ),
        "priced_hold_id": lambda: funded(
            lambda: hold_create(
                account=account,
                credit_type=credits,
                price_key=PRICE_KEY,
                estimated_usage={"input_tokens": 1000},
                actor=Actor.system(),
            )
        ),
        "charge_id": lambda: funded(
            lambda: charge_create(account=account, credit_type=credits, amount="1.00", actor=Actor.system())
        ),
    }
    headers = {"Authorization": f"Bearer {secret}"}

    @given(case=operation.as_strategy(generation_mode=mode), aim_at_real_account=st.booleans())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case, aim_at_real_account: bool) -> None:
        # A component generated schema-invalid keeps its fault: replacing it with a real id would send a valid
        # request that the negative check then expects refused.
        if aim_at_real_account and not case.meta.is_negative_at(ParameterLocation.PATH):
            for name in list(case.path_parameters or {}):
                if name in real:
                    by_usage = name == "hold_id" and isinstance(case.body, dict) and "usage" in case.body
                    case.path_parameters[name] = real["priced_hold_id" if by_usage else name]()
        if aim_at_real_account and not case.meta.is_negative_at(ParameterLocation.BODY):
            if isinstance(case.body, dict) and "account" in case.body:
                case.body["account"] = account.public_id
        if mode == GenerationMode.POSITIVE:
            _as_a_client_would(case, path, account.public_id)
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()


@pytest.mark.django_db
@pytest.mark.timeout(180)
@pytest.mark.usefixtures("wsgi_keeps_the_test_connection")
def test_stateful_links_create_then_capture_release_and_refund():
    """schemathesis's state machine follows the schema's links, every check on every step.

    accounts → their reads; holds → retrieve, capture, release; charges → refunds;
    a capture → a refund of its charge. Bodies naming an account name the
    funded one (a service key must name one), as a client would.
    """
    _, secret = service_key()
    account = funded_account(FUNDED)  # generated holds and charges go up to 10^12
    credits = default_credit_type()
    PriceFactory(key=PRICE_KEY)
    schema = _schema()
    _task_id_is_not_a_reference(schema)
    base = schema.as_state_machine()

    class Workflow(base):
        def before_call(self, case) -> None:
            if case.meta is not None and case.meta.generation.mode != GenerationMode.POSITIVE:
                return
            _as_a_client_would(case, case.path, account.public_id)
            if isinstance(case.body, dict) and "account" in case.body:
                case.body["account"] = account.public_id
                case.body["credit_type"] = "credits"  # the funded wallet, so holds and charges go through
                if case.path in ("/api/v1/charges", "/api/v1/holds"):
                    # Generated amounts go up to 10^12: topped up before each, so a charge is created (and
                    # its link to refunds followed) however much the earlier steps spent.
                    _top_up(account, credits, FUNDED)
                for name in ("key", "price_key"):
                    if name in case.body:
                        case.body[name] = PRICE_KEY  # a configured price, so the chain goes on to capture
                if isinstance(case.body.get("estimated_usage"), dict):
                    # A client estimates a paid job above zero (an estimate priced at zero holds nothing: 400).
                    case.body["estimated_usage"]["input_tokens"] = 1000
            if case.path.endswith("/capture") and isinstance(case.body, dict) and "usage" in case.body:
                # Usage is priced with the hold's price key: a client captures by usage only a hold that has one.
                hold = Hold.objects.filter(public_id=(case.path_parameters or {}).get("hold_id")).first()
                if hold is not None and not hold.price_key:
                    del case.body["usage"]
                    case.body["amount"] = "1.00"
            if case.path == "/api/v1/accounts" and isinstance(case.body, dict):
                # A new user each time: a generated id seen in an earlier example would answer 409 now,
                # and a step that depends on what earlier examples left is not reproducible.
                case.body["external_id"] = f"{str(case.body.get('external_id', ''))[:200]}-{uuid.uuid4().hex}"

        def get_call_kwargs(self, case) -> dict:
            return {"headers": {"Authorization": f"Bearer {secret}"}}

        def validate_response(self, response, case, **kwargs) -> None:
            steps.append(case.operation.label)
            try:
                case.validate_response(response, checks=CHECKS, headers={"Authorization": f"Bearer {secret}"})
            except Exception as failure:
                failures.append(failure)
                raise

    steps: list[str] = []
    failures: list[Exception] = []
    try:
        _run_workflow(Workflow)
    except Flaky:
        # The steps change a live database, so hypothesis's replay of a run is not the same run and
        # it may call its own data generation inconsistent. As schemathesis's own engine does
        # (`--checks all` from the CLI), that is not a failure of the API: only a failed check is.
        if failures:
            raise failures[0] from None
    assert not failures, failures[0]
    assert len(steps) >= 25, steps  # the machine really ran
    # A charge was created and the link to its refunds followed.
    assert {"POST /api/v1/charges", "POST /api/v1/charges/{charge_id}/refunds"} <= set(steps), sorted(set(steps))


FUNDED = "999999999999.00"


def _task_id_is_not_a_reference(schema) -> None:
    """`task_id` is the client's own job id, not a reference to an object of this API.

    schemathesis infers references from field names and takes it for a
    `Task` that no operation creates; an operation needing such a reference is
    never an entry point of its state machine, so no workflow ever started
    from POST /charges (nor reached its refunds). Dropped from its inferred
    inputs.
    """
    for node in schema.analysis.dependency_graph.operations.values():
        node.inputs[:] = [slot for slot in node.inputs if slot.resource.name != "Task"]


def _top_up(account, credit_type, to: str) -> None:
    """Grant what the account's wallet lacks of `to` available (holds included)."""
    from billing.models import Wallet

    wallet = Wallet.objects.get(account=account, credit_type=credit_type)
    missing = Decimal(to) - wallet.available
    if missing > 0:
        grant_create(account=account, credit_type=credit_type, amount=missing, actor=Actor.system(), reason="top up")


def _run_workflow(workflow) -> None:
    workflow.run(
        settings=settings(
            max_examples=int(os.environ.get("SCHEMATHESIS_STATEFUL_EXAMPLES", "40")),
            stateful_step_count=10,
            phases=[Phase.generate],  # no replay to shrink: a replay on a changed database is another run
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
