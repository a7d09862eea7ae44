"""Shared OpenAPI pieces: the error envelope, documented on every operation.

Every error the API returns, ours or the framework's, has the shape
`{"error": {"code": ..., "message": ..., ...}}` (see `config.errors`). The
schema class below adds that response to each operation for the statuses it
can answer with, unless the view already declares one for that status, so
clients (and schemathesis) can rely on every status being documented.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers


class ErrorBody(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable error code, e.g. insufficient_credits.")
    message = serializers.CharField(help_text="Human-readable explanation; do not parse it.")
    param = serializers.CharField(required=False, help_text="The first offending field, for validation errors.")
    fields = serializers.DictField(
        required=False,
        child=serializers.ListField(child=serializers.DictField()),
        help_text='Validation errors per field: {"field": [{"code", "message"}]}.',
    )


class ErrorResponse(serializers.Serializer):
    """The error envelope. Error-specific details (e.g. `available`) may sit beside code and message."""

    error = ErrorBody()


# Statuses any operation may answer with, and those only writes may.
COMMON_ERRORS = {
    400: "Invalid input (code validation_error or a more specific one); nothing was changed.",
    401: "Missing or unknown API key (authentication_failed, not_authenticated).",
    403: "This API key may not do this (permission_denied).",
    404: "No such object, or not visible to this API key.",
    405: "Method not allowed.",
    406: "Only application/json responses are available.",
    429: "Rate limited; retry after the Retry-After header.",
    500: "Internal error; nothing was changed.",
    503: "A backing service (the database) is unavailable; nothing was changed. Retry with the same Idempotency-Key.",
}
WRITE_ERRORS = {
    402: "Business decline, e.g. insufficient_credits (replayed for the same Idempotency-Key).",
    409: "Idempotency-Key conflict (idempotency_key_reused, idempotency_key_in_use) or a state conflict.",
    413: "Request body larger than CREDITLEDGER_MAX_BODY_BYTES (request_too_large).",
    415: "Request bodies must be application/json.",
    422: "The request is well-formed but cannot be applied (e.g. amount_too_large).",
}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema plus the documented error responses."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = dict(COMMON_ERRORS)
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            errors.update(WRITE_ERRORS)
        for status, description in sorted(errors.items()):
            if str(status) in responses:
                continue
            response = self._get_response_for_code(ErrorResponse, str(status), direction=direction)
            response["description"] = description
            responses[str(status)] = response
        return responses
