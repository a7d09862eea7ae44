"""The schema documents, per operation, exactly the errors it can answer with (config/openapi.py).

Each view declares the DomainError classes (and codes) its selectors and
services raise; the schema class adds what it derives from the view. These
tests hold the two together: every declared code is documented under its
status, every error class of the project is answered by some operation (or
this file says why none answers it), and a read documents no write's
statuses. schemathesis (tests/hardening/test_schemathesis.py) checks the other
direction on live responses: an answered status or code the schema does not
list fails its status and body checks.
"""

from __future__ import annotations

import functools
import importlib
import re

import pytest
from django.apps import apps
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator

from accounts.permissions import IsServiceKey
from config.errors import DomainError, ErrorCode, InvalidRequest, RequestRejected, ServiceUnavailable
from config.openapi import declared_errors

# Error classes no API operation answers with, and why.
NOT_ANSWERED_BY_THE_API = {
    "not_found": "the base of every 404; bare, it is only the answer to a URL that names no operation",
    "approval_not_pending": "approvals live in the staff console",
    "approval_expired": "approvals live in the staff console",
    "approval_self_approval": "approvals live in the staff console",
    "approval_permission_required": "approvals live in the staff console",
    "invalid_approval_request": "approvals live in the staff console",
    "subscription_conflict": "subscriptions are managed in the console and by commands",
    "invalid_price_sheet": "price sheets are imported in the console and by a command",
    "anomaly_resolve_permission_required": "pricing anomalies are resolved in the staff console",
    "invalid_grant_terms": "GrantInput bounds priority and expires_at first (400 validation_error)",
    "invalid_refund_reason": "RefundCreateInput's reason is a choice field (400 validation_error)",
    "invalid_usage": "UsageField turns it into field errors (400 validation_error, not_an_integer)",
    "unknown_event_type": "the endpoint inputs' event_types are choice fields (400 validation_error)",
}
ERROR_STATUSES = {"400", "401", "402", "403", "404", "406", "409", "413", "415", "422", "429", "502", "503"}


@functools.cache
def _schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _documented(operation: dict) -> set[ErrorCode]:
    """The (status, code) pairs an operation documents: each error status's `enum` on `error.code`."""
    documented = set()
    for status, response in operation["responses"].items():
        if int(status) < 400:
            continue
        error = response["content"]["application/json"]["schema"]["properties"]["error"]
        documented |= {ErrorCode(int(status), code) for code in error["allOf"][1]["properties"]["code"]["enum"]}
    return documented


def _operations():
    """(label, view class, method, the schema's operation) for every API operation."""
    paths = _schema()["paths"]
    for path, _, method, callback in EndpointEnumerator().get_api_endpoints():
        if path in paths:
            yield f"{method} {path}", callback.cls, method, paths[path][method.lower()]


def _domain_errors() -> list[type[DomainError]]:
    for app in apps.get_app_configs():
        try:
            importlib.import_module(f"{app.name}.exceptions")
        except ModuleNotFoundError:
            continue
    found, pending = [], [DomainError]
    while pending:
        klass = pending.pop()
        found.append(klass)
        pending.extend(klass.__subclasses__())
    return [k for k in found if k.__module__.split(".")[0] != "sdk"]


def test_every_operation_documents_every_code_its_view_declares_under_its_status():
    missing = {
        label: sorted((e.status, e.code) for e in declared_errors(view, method) - _documented(operation))
        for label, view, method, operation in _operations()
    }
    assert not {label: codes for label, codes in missing.items() if codes}


def test_every_error_class_is_answered_by_some_operation_or_explained():
    documented = set().union(*(_documented(operation) for *_, operation in _operations()))
    undocumented = []
    for klass in _domain_errors():
        if klass in (DomainError, RequestRejected):  # no code of their own (a RequestRejected's is per instance)
            continue
        if ErrorCode(klass.status, klass.code) not in documented and klass.code not in NOT_ANSWERED_BY_THE_API:
            undocumented.append(f"{klass.__module__}.{klass.__name__} ({klass.status} {klass.code})")
    assert not undocumented, "declare it on the views that raise it (config.openapi.raises), or explain it here"


def test_the_explanations_name_only_errors_that_exist():
    codes = {klass.code for klass in _domain_errors()}
    assert set(NOT_ANSWERED_BY_THE_API) <= codes


def test_an_account_read_documents_no_write_status():
    operation = _schema()["paths"]["/api/v1/accounts/{account_id}"]["get"]
    assert set(operation["responses"]) == {"200", "400", "401", "404", "406", "503"}
    assert _documented(operation) == {
        ErrorCode(400, "bad_request"),
        ErrorCode(400, "unknown_field"),
        ErrorCode(400, "duplicate_key"),
        ErrorCode(400, "validation_error"),
        ErrorCode(401, "authentication_failed"),
        ErrorCode(401, "not_authenticated"),
        ErrorCode(404, "account_not_found"),
        ErrorCode(406, "not_acceptable"),
        ErrorCode(503, "service_unavailable"),
    }


@pytest.mark.parametrize("status", ["402", "409", "413", "415", "422"])
def test_no_read_documents_a_status_only_a_write_can_answer(status):
    reads = [
        label for label, _, method, operation in _operations() if method == "GET" and status in operation["responses"]
    ]
    assert not reads


def test_no_operation_documents_a_500_or_a_405():
    documented = {
        (label, status)
        for label, *_, operation in _operations()
        for status in operation["responses"]
        if status in ("405", "500")
    }
    assert not documented


def test_every_error_status_is_one_the_api_knows_and_describes_its_codes():
    for label, *_, operation in _operations():
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            assert status in ERROR_STATUSES, (label, status)
            codes = response["content"]["application/json"]["schema"]["properties"]["error"]["allOf"][1]
            for code in codes["properties"]["code"]["enum"]:
                assert f"`{code}`" in response["description"], (label, status, code)


def test_permission_denied_is_documented_exactly_where_a_service_key_is_required():
    for label, view, method, operation in _operations():
        needs_service_key = any(isinstance(p, IsServiceKey) for p in _permissions(view, method))
        assert (ErrorCode(403, "permission_denied") in _documented(operation)) == needs_service_key, label


def test_every_money_post_documents_the_idempotency_key_errors():
    money = [(label, op) for label, *_, op in _operations() if "Idempotency-Key" in _headers(op)]
    assert len(money) == 8  # grants, charges, the batch, holds, capture, release, refunds, checkout sessions
    for label, operation in money:
        assert {
            ErrorCode(400, "idempotency_key_required"),
            ErrorCode(400, "invalid_idempotency_key"),
            ErrorCode(409, "idempotency_key_reused"),
            ErrorCode(409, "idempotency_key_in_use"),
        } <= _documented(operation), label


def test_only_operations_with_a_body_document_the_parser_errors():
    for label, *_, operation in _operations():
        parser_errors = {ErrorCode(415, "unsupported_media_type"), ErrorCode(400, "parse_error")}
        has_body = "requestBody" in operation
        assert (parser_errors <= _documented(operation)) == has_body, label
        assert ("413" in operation["responses"]) == has_body, label


def test_every_operation_documents_authentication_and_the_database():
    for label, *_, operation in _operations():
        assert {
            ErrorCode(401, "not_authenticated"),
            ErrorCode(401, "authentication_failed"),
            ErrorCode(ServiceUnavailable.status, ServiceUnavailable.code),
        } <= _documented(operation), label


def test_a_validation_error_is_documented_wherever_input_is_validated():
    for label, *_, operation in _operations():
        if "requestBody" in operation or any(p["in"] == "query" for p in operation.get("parameters", [])):
            assert ErrorCode(InvalidRequest.status, InvalidRequest.code) in _documented(operation), label


def _permissions(view, method: str):
    instance = view()
    instance.request = type("Request", (), {"method": method})()
    return instance.get_permissions()


def _headers(operation: dict) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}


# The codes docs/api.md's "Errors per operation" gives by group rather than per row.
_GROUPED = {
    "bad_request",
    "authentication_failed",
    "not_authenticated",
    "not_acceptable",
    "service_unavailable",
    "unknown_field",
    "duplicate_key",
    "validation_error",
    "invalid_cursor",
    "parse_error",
    "number_out_of_range",
    "nesting_too_deep",
    "invalid_encoding",
    "not_a_string",
    "not_an_integer",
    "request_too_large",
    "unsupported_media_type",
    "unsupported_charset",
    "idempotency_key_required",
    "invalid_idempotency_key",
    "idempotency_key_reused",
    "idempotency_key_in_use",
}


def test_the_api_reference_lists_each_operations_own_codes_as_the_schema_does():
    from pathlib import Path

    text = Path(__file__).resolve().parents[2].joinpath("docs", "api.md").read_text()
    section = text.split("### Errors per operation", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `(GET|POST|PUT|PATCH|DELETE) (/\S+)` \| [^|]* \| (.*) \|$", line)
        if match:
            rows[f"{match[1]} /api/v1{match[2]}"] = set(re.findall(r"`([a-z_]+)`", match[3]))
    schema = {label: {e.code for e in _documented(op)} - _GROUPED for label, *_, op in _operations()}
    assert rows == schema
