"""Request-body serializers: strict, and cheap to instantiate."""

from __future__ import annotations

import copy
from typing import Any

from rest_framework import serializers

# Field codes that name a broken contract rather than a bad value: the error's
# top-level `code` is the field's own (config.errors.validation_error_body).
UNKNOWN_FIELD = "unknown_field"
NOT_A_STRING = "not_a_string"
NOT_AN_INTEGER = "not_an_integer"


class InputSerializer(serializers.Serializer):
    """A strict serializer for request input (a JSON object), whose declared fields are copied shallowly.

    Strict, as Stripe is: a field the endpoint does not know is refused
    (`unknown_field`, so a typo such as `"amout"` never falls back to a
    default), and a JSON number, boolean, object or array where text is
    expected is refused (`not_a_string`), as is anything but a JSON integer
    where an integer is expected (`not_an_integer`: `"10"` is not 10),
    instead of being coerced. A
    serializer may name fields it accepts and ignores in `ignored_fields`.

    DRF deep-copies every declared field for each serializer instance, which
    re-runs each field's `__init__`: on a charge that cost more than the
    charge's own SQL (docs/performance.md). Input fields here are never
    mutated after their declaration (binding sets attributes on the copy
    only), so a shallow copy per instance is enough; validators lists built
    at declaration are shared read-only. Do not use this for serializers
    that add or change fields or validators per instance.
    """

    ignored_fields: frozenset[str] = frozenset()

    def get_fields(self) -> dict[str, serializers.Field]:
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            errors = strict_errors(data, self.fields, self.ignored_fields)
            if errors:
                raise serializers.ValidationError(errors)
            data = {name: value for name, value in data.items() if name not in self.ignored_fields}
        return super().to_internal_value(data)


def strict_errors(data: dict, fields: dict[str, serializers.Field], ignored: frozenset[str] = frozenset()) -> dict:
    """Unknown names and non-strings given to text fields, as DRF field errors (empty when none)."""
    errors: dict[str, list] = {}
    for name, value in data.items():
        field = fields.get(name)
        if field is None or field.read_only:
            if name not in ignored:
                errors[name] = [serializers.ErrorDetail("Unknown field.", code=UNKNOWN_FIELD)]
        elif (
            isinstance(field, serializers.CharField | serializers.ChoiceField)
            and value is not None  # null is the field's own `null` error (or allowed)
            and not isinstance(value, str)
        ):
            errors[name] = [serializers.ErrorDetail("Must be a JSON string.", code=NOT_A_STRING)]
        elif (
            isinstance(field, serializers.IntegerField)
            and value is not None
            and (isinstance(value, bool) or not isinstance(value, int))
        ):
            errors[name] = [serializers.ErrorDetail("Must be a JSON integer.", code=NOT_AN_INTEGER)]
    return errors
