"""Domain errors and the one place they become HTTP responses.

Services raise subclasses of `DomainError`; they never raise DRF exceptions.
Each class carries a stable machine-readable `code` and an HTTP status. The
DRF exception handler below renders every error, ours or the framework's, as
`{"error": {"code": ..., "message": ..., ...}}`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """Base of every error a service may raise on purpose."""

    code = "error"
    status = 400
    message = "The request could not be completed."
    # A replayable error is a business decline (e.g. insufficient credits):
    # it is stored with its Idempotency-Key and replayed on retry, so a failed
    # charge stays failed. Validation and configuration errors store nothing.
    replayable = False

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.message
        self.details = details
        super().__init__(self.message)

    def as_body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        error.update(self.details)
        return {"error": error}


@dataclass(frozen=True)
class ErrorCode:
    """An error an operation may answer with, named by status and code (config.openapi documents them).

    For errors whose code is not a `DomainError` class's: a `RequestRejected`, DRF's own.
    """

    status: int
    code: str


class NotFound(DomainError):
    code = "not_found"
    status = 404
    message = "Not found."


class InvalidRequest(DomainError):
    code = "validation_error"
    status = 400


class RequestRejected(DomainError):
    """A request refused before any view logic: malformed body, bad query, bad cursor.

    Its code is per instance (`duplicate_key`, `invalid_cursor`, ...); `param`
    names the offending field or query parameter when there is one.
    """

    def __init__(self, code: str, message: str, *, status: int = 400, **details: Any) -> None:
        self.code = code
        self.status = status
        super().__init__(message, **details)


class ServiceUnavailable(DomainError):
    code = "service_unavailable"
    status = 503
    message = "A backing service is unavailable; nothing was changed. Retry with the same Idempotency-Key."


class LockTimeout(ServiceUnavailable):
    code = "lock_timeout"
    message = "The account is busy with other changes; nothing was changed. Retry with the same Idempotency-Key."


LOCK_NOT_AVAILABLE = "55P03"


def is_lock_timeout(exc: BaseException) -> bool:
    """A statement that waited for a lock past `lock_timeout` (PostgreSQL 55P03): rolled back, safe to retry."""
    return isinstance(exc, OperationalError) and getattr(exc.__cause__, "sqlstate", None) == LOCK_NOT_AVAILABLE


# DRF's own exceptions get stable codes of ours.
_DRF_CODES: dict[type, str] = {
    drf_exceptions.ParseError: "parse_error",
    drf_exceptions.AuthenticationFailed: "authentication_failed",
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.PermissionDenied: "permission_denied",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.NotAcceptable: "not_acceptable",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.Throttled: "rate_limited",
}


def _flatten_validation(detail: Any, prefix: str = "") -> dict[str, list[dict]]:
    """Turn DRF's nested ValidationError detail into {"field": [{"code", "message"}]}."""
    fields: dict[str, list[dict]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors":
                name = prefix or "non_field_errors"
            for k, v in _flatten_validation(value, name).items():
                fields.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            if isinstance(item, dict | list) and not isinstance(item, drf_exceptions.ErrorDetail):
                name = f"{prefix}[{index}]" if prefix else str(index)
                for k, v in _flatten_validation(item, name).items():
                    fields.setdefault(k, []).extend(v)
            else:
                fields.setdefault(prefix or "non_field_errors", []).append(
                    {"code": getattr(item, "code", "invalid"), "message": str(item)}
                )
    else:
        fields.setdefault(prefix or "non_field_errors", []).append(
            {"code": getattr(detail, "code", "invalid"), "message": str(detail)}
        )
    return fields


# Field codes that say the request broke the contract's shape rather than
# gave a bad value: the error's own code is the field's (a client can switch
# on `unknown_field` without digging into `fields`).
CONTRACT_CODES = frozenset({"unknown_field", "not_a_string", "not_an_integer"})


def validation_error_body(detail: Any) -> dict:
    fields = _flatten_validation(detail)
    first_field, first_errors = next(iter(fields.items()))
    first = first_errors[0]
    return {
        "error": {
            "code": first["code"] if first["code"] in CONTRACT_CODES else "validation_error",
            "message": f"{first_field}: {first['message']}",
            "param": first_field,
            "fields": fields,
        }
    }


def error_response(code: str, message: str, status: int, **extra: Any) -> dict:
    body = {"code": code, "message": message}
    body.update(extra)
    return {"error": body}


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF EXCEPTION_HANDLER: every error as {"error": {"code", "message"}}, always rendered as JSON.

    A view may offer other formats (the schema view: YAML); its errors are
    JSON still, and a 406 is never rendered in a format the client refused.
    """
    response = _error_response(exc)
    request = context.get("request")
    if response is not None and request is not None:
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = "application/json"
    return response


def _error_response(exc: Exception) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(exc.as_body(), status=exc.status)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    if isinstance(exc, drf_exceptions.ValidationError):
        return Response(validation_error_body(exc.detail), status=400)
    if isinstance(exc, drf_exceptions.APIException):
        code = _DRF_CODES.get(type(exc))
        if code is None:
            code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), None)
        code = code or (exc.default_code if isinstance(exc.default_code, str) else "error")
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return Response(error_response(code, detail, exc.status_code), status=exc.status_code, headers=headers)
    if is_lock_timeout(exc):
        # A lock wait ran past its timeout (a very hot wallet): rolled back, retry.
        logger.warning("lock timeout: %s", exc)
        busy = LockTimeout()
        return Response(busy.as_body(), status=busy.status, headers={"Retry-After": "1"})
    if isinstance(exc, OperationalError | InterfaceError):
        # The database went away or timed out: the transaction was rolled
        # back, so nothing is half-written. Tell the client to retry.
        logger.warning("database unavailable: %s", type(exc).__name__)
        unavailable = ServiceUnavailable()
        return Response(unavailable.as_body(), status=503, headers={"Retry-After": "1"})
    if isinstance(exc, DatabaseError):
        logger.exception("unexpected database error")
        return Response(error_response("internal_error", "Internal error; nothing was changed.", 500), status=500)
    return None


def json_not_found(request, exception=None) -> JsonResponse:
    return JsonResponse(error_response("not_found", "Not found.", 404), status=404)


def json_server_error(request) -> JsonResponse:
    return JsonResponse(error_response("internal_error", "Internal error.", 500), status=500)


def json_bad_request(request, exception=None) -> JsonResponse:
    return JsonResponse(error_response("bad_request", "Bad request.", 400), status=400)
