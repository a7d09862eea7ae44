"""INSERT statements built from the Django models, for raw SQL that stays in step with them.

The raw baseline and the bulk seeding write the same tables as the services,
and those tables gain columns as the project grows. Rather than hard-coding
column lists, the statements here take every concrete column from the model
and fill the ones the caller does not give with the field's default, so a
new column with a default needs no change here (and one without fails loudly).
"""

from __future__ import annotations

from typing import Any

from django.db import connection, models
from django.utils import timezone


def _static_value(field: models.Field) -> Any:
    value = field.get_default()
    return field.get_db_prep_save(value, connection)


class RowInsert:
    """`INSERT INTO <table> (...) VALUES (...) RETURNING id` with most values fixed up front."""

    def __init__(self, model: type[models.Model], dynamic: list[str]) -> None:
        fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        self.index: dict[str, int] = {}
        self.static: list[Any] = []
        self.now_positions: list[int] = []
        for position, field in enumerate(fields):
            if field.attname in dynamic or field.name in dynamic:
                self.index[field.attname] = position
                self.index[field.name] = position
                self.static.append(None)
            elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                self.now_positions.append(position)
                self.static.append(None)
            else:
                self.static.append(_static_value(field))
        columns = ", ".join(f'"{f.column}"' for f in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        self.sql = f'INSERT INTO "{model._meta.db_table}" ({columns}) VALUES ({placeholders}) RETURNING "id"'

    def params(self, **values: Any) -> list[Any]:
        params = list(self.static)
        if self.now_positions:
            now = values.pop("now", None) or timezone.now()
            for position in self.now_positions:
                params[position] = now
        for name, value in values.items():
            params[self.index[name]] = value
        return params


def insert_select(
    model: type[models.Model], expressions: dict[str, str | tuple[str, list]], source: str
) -> tuple[str, list[Any]]:
    """`INSERT INTO <table> (...) SELECT <expressions> FROM <source>` for bulk seeding.

    `expressions` maps field names to SQL expressions over `source` (or to
    (expression, params)); other columns get the field default as a
    parameter, timestamps `now()`.
    """
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    selects: list[str] = []
    params: list[Any] = []
    for field in fields:
        if field.name in expressions or field.attname in expressions:
            expression = expressions.get(field.name) or expressions[field.attname]
            if isinstance(expression, tuple):
                expression, extra = expression
                params.extend(extra)
            selects.append(expression)
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            selects.append("now()")
        else:
            selects.append("%s")
            params.append(_static_value(field))
    columns = ", ".join(f'"{f.column}"' for f in fields)
    sql = f'INSERT INTO "{model._meta.db_table}" ({columns}) SELECT {", ".join(selects)} FROM {source}'
    return sql, params
