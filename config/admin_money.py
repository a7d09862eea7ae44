"""Money in the admin: list columns and read-only fields at the credit type's scale.

Amounts are stored with nine places whatever their credit type's scale, so
Django's default rendering shows "493.750000000" and "0E-9". An admin puts
`money_column("amount")` in `list_display` (or `fields` / `readonly_fields`)
in place of the field's name, or names it as an attribute of the ModelAdmin
(`amount_money = money_column("amount")`, then `"amount_money"`); the column shows `config.money.money_display`
of the value at the scale of the row's credit type, right-aligned, and sorts
by the field.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.utils.html import format_html

from config.money import MONEY_PLACES, money_display, unit_price_display


def _follow(obj: Any, path: str) -> Any:
    for name in path.split("__"):
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj


def money_column(
    field: str, *, credit_type: str = "credit_type", description: str | None = None, value: Callable | None = None
) -> Callable:
    """A display callable for `field` (or `value(obj)`) at the scale of `obj.<credit_type>` (a `__` path)."""

    @admin.display(description=description or field.replace("_", " "), ordering=None if value else field)
    def display(*args):  # a list_display callable gets (obj); a ModelAdmin attribute (admin, obj)
        obj = args[-1]
        amount = value(obj) if value else _follow(obj, field)
        kind = _follow(obj, credit_type)
        if amount is None or kind is None:
            return "-"
        return format_html('<span class="money">{}</span>', money_display(amount, kind))

    display.__name__ = f"{field}_money"
    return display


def unit_price_column(field: str, *, description: str | None = None) -> Callable:
    """A unit price, normalised: every significant place, no trailing zeros."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def display(*args):
        obj = args[-1]
        return unit_price_display(getattr(obj, field))

    display.__name__ = f"{field}_price"
    return display


class MoneyInput(forms.TextInput):
    """An amount in a form field: plain decimal ("12.50", "0.0025"), never "0E-9" or a nine-place tail.

    With `places` (the credit type's scale, when the form knows it) a value
    is shown at that many places unless it carries more (a unit price may).
    No thousands separators: the value is read back by `money_parse`.
    """

    def __init__(self, attrs=None, places: int | None = None):
        super().__init__({"size": 20, **(attrs or {})})
        self.places = places

    def format_value(self, value):
        try:
            number = Decimal(value) if isinstance(value, Decimal | int | str) and value != "" else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            return super().format_value(value)
        number = number.normalize()
        if self.places is not None and -number.as_tuple().exponent <= self.places:
            number = number.quantize(Decimal(1).scaleb(-self.places))
        return f"{number:f}" if number != 0 or self.places else "0"


class MoneyFormMixin:
    """A ModelAdmin whose money fields use `MoneyInput`, at the scale `money_places(obj)` returns."""

    def money_places(self, obj) -> int | None:
        credit_type = getattr(obj, "credit_type", None) if obj is not None else None
        return getattr(credit_type, "scale", None)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.DecimalField) and db_field.decimal_places == MONEY_PLACES:
            kwargs["widget"] = MoneyInput()
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        places = self.money_places(obj)
        for field in form.base_fields.values():
            if isinstance(field.widget, MoneyInput):
                field.widget.places = places
        return form
