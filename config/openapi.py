"""Shared OpenAPI pieces: the error envelope and the exact errors of each operation.

Every error the API returns, ours or the framework's, has the shape
`{"error": {"code": ..., "message": ..., ...}}` (see `config.errors`). The
schema class below documents, per operation, exactly the statuses it can
answer with and the codes under each: what it derives from the view (its
authentication, permissions, request body) plus what the view declares
(`api_errors` on the class, `@raises(...)` on a handler: the DomainError
classes its selectors and services raise). A status no operation can answer
(a 500 is a bug, never an answer to what a client sends) is documented nowhere.

`postprocess` (a SPECTACULAR_SETTINGS postprocessing hook) then adds what the
serializers alone cannot say: closed inputs, the `oneOf` rules, amount,
price-key and NUL-free patterns, query bounds, the `200 zero_charge` of
`POST /charges`, and the links the stateful tests follow
(`tests/hardening/test_schemathesis.py` runs every schemathesis check on it).
"""

from __future__ import annotations

from collections.abc import Iterable

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import force_instance
from rest_framework import serializers

from config.errors import DomainError, ErrorCode


class ErrorBody(serializers.Serializer):
    """The `error` of the envelope. Error-specific details (e.g. `available`) may sit beside code and message."""

    code = serializers.CharField(help_text="Stable, machine-readable error code, e.g. insufficient_credits.")
    message = serializers.CharField(help_text="Human-readable explanation; do not parse it.")
    param = serializers.CharField(required=False, help_text="The first offending field, for validation errors.")
    fields = serializers.DictField(
        required=False,
        child=serializers.ListField(child=serializers.DictField()),
        help_text='Validation errors per field: {"field": [{"code", "message"}]}.',
    )


# --- the errors each operation documents ------------------------------------------------


def error_codes(errors: Iterable[type[DomainError] | ErrorCode]) -> set[ErrorCode]:
    """Declared errors (DomainError classes or ErrorCodes) as (status, code) pairs."""
    return {e if isinstance(e, ErrorCode) else ErrorCode(e.status, e.code) for e in errors}


def raises(*errors: type[DomainError] | ErrorCode):
    """Declare on a view's handler method the errors it answers with, beyond those the schema derives itself.

    A view class declares errors common to all its methods in `api_errors`
    (collected along its MRO: `MoneyPostView` declares the Idempotency-Key
    errors once for every money POST). What the schema class derives by
    itself, for every operation: 400 `bad_request` (a NUL in the URL), 401,
    403 `permission_denied` when a permission class can refuse an
    authenticated key, 406, 503 `service_unavailable`; for an operation with a
    request body, the strict parser's and input serializer's 400s, 413 and 415;
    for every write, 400 `unknown_field` for a query string.
    """

    def decorate(handler):
        handler.api_errors = (*getattr(handler, "api_errors", ()), *errors)
        return handler

    return decorate


def declared_errors(view_class: type, method: str) -> set[ErrorCode]:
    """What a view declares for one of its methods, along its MRO: `api_errors`, and the handler's `raises`.

    A handler's own declaration adds to those of the handlers it overrides (which it calls: `super().get`).
    """
    declared: list = []
    for klass in view_class.__mro__:
        declared.extend(klass.__dict__.get("api_errors", ()))
        declared.extend(getattr(klass.__dict__.get(method.lower()), "api_errors", ()))
    return error_codes(declared)


# Every API operation: the database is behind the key check itself.
ALWAYS = {
    ErrorCode(400, "bad_request"),  # a NUL in the path or query (config.middleware.NulCharacterMiddleware)
    ErrorCode(406, "not_acceptable"),
    ErrorCode(503, "service_unavailable"),
}
# Any query parameter on a write (config.middleware.WriteQueryParamsMiddleware).
WRITE_QUERY = ErrorCode(400, "unknown_field")
AUTHENTICATION = {ErrorCode(401, "authentication_failed"), ErrorCode(401, "not_authenticated")}
PERMISSION_DENIED = ErrorCode(403, "permission_denied")
# A request body: the strict JSON parser (config.parsers), the size limit and the input serializer.
BODY = {
    ErrorCode(400, code)
    for code in ("parse_error", "duplicate_key", "number_out_of_range", "nesting_too_deep", "invalid_encoding")
} | {
    ErrorCode(400, "validation_error"),
    ErrorCode(400, "unknown_field"),
    ErrorCode(413, "request_too_large"),
    ErrorCode(415, "unsupported_media_type"),
    ErrorCode(415, "unsupported_charset"),
}

STATUS_DESCRIPTIONS = {
    400: "Invalid request; nothing was changed.",
    401: "Missing, malformed or unknown API key.",
    402: "Business decline (stored and replayed for the same Idempotency-Key).",
    403: "This API key may not do this.",
    404: "No such object, or not visible to this API key.",
    406: "The Accept header allows none of this operation's response types (application/json).",
    409: "Conflict with the Idempotency-Key or with the object's state.",
    413: "Request body larger than CREDITLEDGER_MAX_BODY_BYTES.",
    415: "Request bodies must be UTF-8 application/json.",
    422: "Well-formed, but it cannot be applied.",
    429: "A limit was reached (stored and replayed for the same Idempotency-Key).",
    502: "The payment provider refused or could not be reached; retry with the same Idempotency-Key.",
    503: "A backing service is unavailable; nothing was changed. Retry after Retry-After (same Idempotency-Key).",
}


def _contract_codes(serializer) -> set[ErrorCode]:
    """`not_a_string` / `not_an_integer` where a field of the input can answer them (config.serializers)."""
    codes = set()
    for field in getattr(serializer, "fields", {}).values():
        messages = set(getattr(field, "error_messages", {})) | set(getattr(field, "contract_codes", ()))
        if isinstance(field, serializers.CharField | serializers.ChoiceField) or "not_a_string" in messages:
            codes.add(ErrorCode(400, "not_a_string"))
        if isinstance(field, serializers.IntegerField) or "not_an_integer" in messages:
            codes.add(ErrorCode(400, "not_an_integer"))
    return codes


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema plus, per operation, exactly the error responses it can answer with.

    Each documented error status lists its codes in its description and as an
    `enum` on `error.code`, so a client (and schemathesis's body check) knows
    every code an operation may answer.
    """

    def operation_errors(self) -> set[ErrorCode]:
        errors = set(ALWAYS) | declared_errors(type(self.view), self.method)
        if self.method in ("PUT", "PATCH", "POST", "DELETE"):
            errors.add(WRITE_QUERY)
        if self.view.authentication_classes:
            errors |= AUTHENTICATION
        for permission in self.view.get_permissions():
            # A permission that only asks for a key refuses with 401; any other may refuse a key (403).
            errors |= error_codes(getattr(permission, "api_errors", (PERMISSION_DENIED,)))
        if self.method in ("PUT", "PATCH", "POST"):
            body = self.get_request_serializer()
            if body is not None:
                errors |= BODY | _contract_codes(force_instance(body))
        return errors

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        by_status: dict[int, set[str]] = {}
        for error in self.operation_errors():
            by_status.setdefault(error.status, set()).add(error.code)
        body = self.resolve_serializer(ErrorBody, direction).ref
        for status, codes in sorted(by_status.items()):
            codes = sorted(codes)
            listed = ", ".join(f"`{code}`" for code in codes)
            schema = {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "allOf": [body, {"type": "object", "properties": {"code": {"type": "string", "enum": codes}}}]
                    }
                },
            }
            responses[str(status)] = {
                "description": f"{STATUS_DESCRIPTIONS.get(status, 'Error.')} Codes: {listed}.",
                "content": {"application/json": {"schema": schema}},
            }
        return responses


# --- the contract the views enforce, which the serializers alone cannot say ---

# charge: `amount`, or a price `key` (with `usage`; a key alone is one request)
_CHARGE_ONE_OF = [
    {"required": ["amount"], "not": {"anyOf": [{"required": ["key"]}, {"required": ["usage"]}]}},
    {"required": ["key"], "not": {"required": ["amount"]}},
]
# Exactly one way to give the amount, per input component (JSON Schema `oneOf`).
_ONE_OF = {
    "ChargeInputRequest": _CHARGE_ONE_OF,
    "ChargeBatchItemInputRequest": _CHARGE_ONE_OF,  # each item of a batch is a charge
    # auto-recharge: a fixed `amount`, or up to a `target` balance
    "AutoRechargeInputRequest": [
        {"required": ["amount"], "not": {"required": ["target"]}},
        {"required": ["target"], "not": {"required": ["amount"]}},
    ],
    # capture: the final `amount`, or the actual `usage`
    "HoldCaptureInputRequest": [
        {"required": ["amount"], "not": {"required": ["usage"]}},
        {"required": ["usage"], "not": {"required": ["amount"]}},
    ],
    # hold: `amount`, or `price_key` + `estimated_usage`
    "HoldCreateInputRequest": [
        {"required": ["amount"], "not": {"anyOf": [{"required": ["price_key"]}, {"required": ["estimated_usage"]}]}},
        {"required": ["price_key", "estimated_usage"], "not": {"required": ["amount"]}},
    ],
}
_REQUIRED = {"QuoteInputRequest": ["key"]}
# Maximums a service checks against a setting, with its own code (400 invalid_expires_in).
_SETTING_MAXIMUM = {("HoldCreateInputRequest", "expires_in"): "CREDITLEDGER_HOLD_MAX_EXPIRES_IN_S"}
# Arrays' bounds the serializer checks itself (with its own code: `too_many_items`).
_ARRAY_BOUNDS = {("ChargeBatchInputRequest", "items"): {"minItems": 1, "maxItems": 100}}  # billing MAX_BATCH_ITEMS
ACCOUNT_DESCRIPTION = (
    "The account's id (`acc_…`). Required with a service key (400 `required` without it); "
    "an account key may omit it (its own account) and may name no other."
)
_LIMIT = {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}
_ZERO_CHARGE = {
    "description": "A priced charge that came to zero: no entry is written (entries are never zero). "
    'For a paid key it carries `"anomaly": "zero_cost"` and the anomaly\'s id.',
    "allOf": [
        {"$ref": "#/components/schemas/Quote"},
        {
            "type": "object",
            "properties": {
                "object": {"type": "string", "enum": ["zero_charge"]},
                "id": {"type": "string", "nullable": True, "description": "The pricing anomaly's id, if any."},
            },
            "required": ["object", "id"],
        },
    ],
}


# Amounts: plain decimal strings, at most 12 integer digits (below CREDITLEDGER_MAX_AMOUNT, 10^12)
# and 9 places (the largest scale); the credit type's own scale is checked by value.
AMOUNT_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,9})?$"
AMOUNT_FIELD_PATTERN = r"^[0-9]+(\.[0-9]+)?$"  # what billing.fields.AmountField says of itself
_ZERO_AMOUNT = {"pattern": r"^0+(\.0+)?$"}
_AMOUNT_DESCRIPTION = (
    'A decimal string ("12.50"): no sign, exponent or whitespace, below 10^12, with at most the credit '
    "type's scale of decimal places (400 too_many_decimals)."
)


PRICE_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$"  # pricing.models.KEY_PATTERN, any case
NO_NUL = r"^[^\u0000]*$"  # PostgreSQL text cannot hold NUL: 400 null_characters_not_allowed
# A required text field: DRF trims whitespace (str.strip) and refuses what is left blank.
NON_BLANK = r"^[^\u0000]*[^\s\u0000\u001c-\u001f\u0085][^\u0000]*$"
_SCALAR = {
    "anyOf": [{"type": "string", "pattern": NO_NUL}, {"type": "number"}, {"type": "boolean"}],
    "nullable": True,
}
METADATA_DESCRIPTION = (
    "Your own JSON object, stored as given: at most 8 KiB and 5 levels deep, no NUL characters in keys or values."
)


def _metadata_ref(level: int) -> dict:
    return {"$ref": f"#/components/schemas/MetadataValue{level}"}


def metadata_components(depth: int) -> dict[str, dict]:
    """`MetadataValue2` .. `MetadataValue<depth>`: a value of metadata that, as an object or array, sits at that level.

    Exactly what the server takes (billing.fields.MetadataField): any JSON nested at most `depth` levels
    (CREDITLEDGER_MAX_METADATA_DEPTH; the object itself is level 1), no NUL in strings. Its size (8 KiB of JSON)
    and NUL-free keys (OpenAPI 3.0 has no `propertyNames`) are in the description only.
    """
    components = {}
    for level in range(2, depth + 1):
        inner = _metadata_ref(level + 1) if level < depth else _SCALAR
        components[f"MetadataValue{level}"] = {
            "anyOf": [_SCALAR, {"type": "array", "items": inner}, {"type": "object", "additionalProperties": inner}]
        }
    return components


def _metadata(depth: int) -> dict:
    values = _metadata_ref(2) if depth >= 2 else _SCALAR
    return {"type": "object", "description": METADATA_DESCRIPTION, "additionalProperties": values}


def _strict_strings(properties: dict, *, metadata_depth: int) -> None:
    for name, field in properties.items():
        if name == "metadata" and field.get("type") == "object":
            properties[name] = _metadata(metadata_depth)
        elif name in ("key", "price_key"):
            field["pattern"] = PRICE_KEY_PATTERN
        elif field.get("type") == "string" and not ({"pattern", "format", "enum"} & set(field)):
            field["pattern"] = NON_BLANK if field.get("minLength", 0) >= 1 else NO_NUL


def _usage_bounds(usage: dict) -> None:
    from django.conf import settings

    bounds = {
        "input_tokens": settings.PRICING_MAX_TOKENS,
        "output_tokens": settings.PRICING_MAX_TOKENS,
        "units": settings.PRICING_MAX_UNITS,
        "requests": settings.PRICING_MAX_REQUESTS,
    }
    for name, field in usage.get("properties", {}).items():
        if name in bounds:
            field["maximum"] = bounds[name]


# OpenAPI links: what a created object leads to (schemathesis's stateful tests follow them).
_LINKS = {
    ("accounts_create", "201"): {
        f"accounts_{name}": {"operationId": f"accounts_{name}", "parameters": {"account_id": "$response.body#/id"}}
        for name in ("retrieve", "balance", "holds", "refunds", "transactions")
    },
    ("holds_create", "201"): {
        name: {"operationId": name, "parameters": {"hold_id": "$response.body#/id"}}
        for name in ("holds_retrieve", "holds_capture", "holds_release")
    },
    ("charges_create", "201"): {
        "charges_refunds_create": {
            "operationId": "charges_refunds_create",
            "parameters": {"charge_id": "$response.body#/id"},
        }
    },
    ("holds_capture", "200"): {
        "charges_refunds_create": {
            "operationId": "charges_refunds_create",
            "parameters": {"charge_id": "$response.body#/capture_entry"},
        }
    },
}


def postprocess(result: dict, generator, request, public: bool) -> dict:
    """SPECTACULAR_SETTINGS POSTPROCESSING_HOOKS: strict inputs, oneOf rules, query bounds, zero charges."""
    from django.conf import settings

    schemas = result.get("components", {}).get("schemas", {})
    metadata_depth = settings.MAX_METADATA_DEPTH
    for name, component in list(schemas.items()):
        if not name.endswith("Request") or component.get("type") != "object":
            continue
        # Strict input: a field the endpoint does not know is 400 unknown_field.
        component["additionalProperties"] = False
        if "A strict serializer" in component.get("description", ""):
            del component["description"]  # the base class's docstring, not this input's
        if name in _ONE_OF:
            component["oneOf"] = _ONE_OF[name]
        if name in _REQUIRED:
            component["required"] = sorted(set(component.get("required", [])) | set(_REQUIRED[name]))
        properties = component.get("properties", {})
        for field_name, field in properties.items():
            # Every amount (AmountField: `amount`, auto-recharge's `threshold` and `target`) is above zero,
            # except a capture's.
            if field.get("type") == "string" and (
                field_name == "amount" or field.get("pattern") == AMOUNT_FIELD_PATTERN
            ):
                field.update(pattern=AMOUNT_PATTERN, description=_AMOUNT_DESCRIPTION)
                if name == "HoldCaptureInputRequest":
                    field["description"] += ' "0" resolves the hold with no charge.'
                else:
                    field["not"] = _ZERO_AMOUNT
        for (component_name, field_name), bounds in _ARRAY_BOUNDS.items():
            if component_name == name and field_name in properties:
                properties[field_name].update(bounds)
        for (component_name, field_name), setting in _SETTING_MAXIMUM.items():
            if component_name == name and field_name in properties:
                properties[field_name]["maximum"] = getattr(settings, setting)
        low_balance = properties.get("low_balance")
        if low_balance is not None and low_balance.get("type") == "string":
            low_balance.update(pattern=AMOUNT_PATTERN)  # a threshold: an amount, zero allowed
        _strict_strings(properties, metadata_depth=metadata_depth)
        for usage_name in ("usage", "estimated_usage"):
            if usage_name in properties:
                _usage_bounds(properties[usage_name])
        account = properties.get("account")
        if account is not None and name != "QuoteInputRequest":
            account["description"] = ACCOUNT_DESCRIPTION
    if "Quote" in schemas:
        schemas["ZeroCharge"] = _ZERO_CHARGE
    schemas.update(metadata_components(metadata_depth))
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "query":
                    continue
                schema = parameter.setdefault("schema", {})
                if parameter["name"] == "limit":
                    schema.update(_LIMIT)
                    parameter["description"] = "Page size: a whole number from 1 to 200 (default 50)."
                elif parameter["name"] == "cursor":
                    parameter["description"] = (
                        "The `next_cursor` of the previous page, as issued "
                        "(opaque; anything else is 400 invalid_cursor)."
                    )
                    schema["minLength"] = 1
                elif schema.get("type") == "string":
                    schema["minLength"] = 1  # an empty value is 400 validation_error
                    if not ({"pattern", "format", "enum"} & set(schema)):
                        schema["pattern"] = NO_NUL  # 400 bad_request (config.middleware.NulCharacterMiddleware)
                if parameter["name"] in ("since", "until", "created_after", "created_before"):
                    schema["format"] = "date-time"
            for (operation_id, status), links in _LINKS.items():
                if operation.get("operationId") == operation_id and status in operation.get("responses", {}):
                    operation["responses"][status]["links"] = links
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            ref = body.get("$ref", "").rsplit("/", 1)[-1]
            if ref in schemas and ({"required", "oneOf"} & set(schemas[ref])):
                operation["requestBody"]["required"] = True  # no body at all is 400 too
            if path == "/api/v1/charges" and method == "post" and "Quote" in schemas:
                operation["responses"]["200"] = {
                    "description": "A priced charge that came to zero (`zero_charge`): nothing was written.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ZeroCharge"}}},
                }
    return result
