"""Filter fields shared by the list endpoints."""

from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 datetime, converted to UTC before it reaches the database.

    Python accepts UTC offsets up to ±23:59 and years from 1; PostgreSQL
    refuses offsets beyond ±15:59 (a DataError, so a 500). In UTC every such
    value is fine, and one that would leave the calendar is a 400.
    """

    default_error_messages = {"out_of_range": "Datetime out of range."}

    def to_python(self, value):
        value = super().to_python(value)
        if value is None or value.tzinfo is None:
            return value
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise forms.ValidationError(self.error_messages["out_of_range"], code="out_of_range") from exc


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField
