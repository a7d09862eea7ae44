"""Single-row INSERT, UPDATE and SELECT statements for the service layer, built once per process.

Everything the services do under a wallet lock is on the clock: the lock is
held until commit, so a wallet is only as fast as the Python between its
statements. Django compiles an ORM `save()`, `filter().update()` or `get()`
afresh on every call, and that compile cost more client CPU than PostgreSQL
spent running the statement (README "Performance"). These helpers build the
same statements from the models' metadata once, cache them, and prepare every
value with the field's own `pre_save` / `get_db_prep_save`, exactly as the ORM
would (Decimal quantising, JSON adaptation, `auto_now`).

Only PostgreSQL takes the fast path. SQLite (`make run`) goes through the
ORM, whose converters it needs (its raw cursor returns NUMERIC as floats).
"""

from __future__ import annotations

from typing import Any

from django.db import connection, models

_INSERTS: dict[type[models.Model], tuple[str, list[models.Field]]] = {}
_UPDATES: dict[tuple, tuple[str, list[models.Field], list[models.Field]]] = {}
_SELECTS: dict[type[models.Model], tuple[str, list[str], list[tuple[int, Any]]]] = {}


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def row_insert(instance: models.Model) -> None:
    """`instance.save(force_insert=True)`, with the INSERT built once per model."""
    model = type(instance)
    if connection.vendor != "postgresql":
        instance.save(force_insert=True)
        return
    cached = _INSERTS.get(model)
    if cached is None:
        meta = model._meta
        fields = [f for f in meta.concrete_fields if not f.primary_key]
        columns = ", ".join(_quote(f.column) for f in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        # Only the model's own table and column names, quoted: no input reaches this string.
        table, pk = _quote(meta.db_table), _quote(meta.pk.column)
        sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) RETURNING {pk}"  # noqa: S608
        cached = _INSERTS[model] = (sql, fields)
    sql, fields = cached
    params = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = connection.alias


def row_update(model: type[models.Model], pk: Any, *, where: dict[str, Any] | None = None, **values: Any) -> int:
    """`model.objects.filter(pk=pk, **where).update(**values)`; the number of rows changed.

    `values` and `where` name concrete fields (a foreign key by its attname,
    `capture_entry_id`, or by its name with a model instance). Expressions
    (F(), functions) are not supported: use the ORM for those.
    """
    where = where or {}
    if connection.vendor != "postgresql":
        return model.objects.filter(pk=pk, **where).update(**values)
    key = (model, tuple(values), tuple(where))
    cached = _UPDATES.get(key)
    if cached is None:
        meta = model._meta
        set_fields = [meta.get_field(name) for name in values]
        where_fields = [meta.get_field(name) for name in where]
        assignments = ", ".join(f"{_quote(f.column)} = %s" for f in set_fields)
        conditions = "".join(f" AND {_quote(f.column)} = %s" for f in where_fields)
        sql = f"UPDATE {_quote(meta.db_table)} SET {assignments} WHERE {_quote(meta.pk.column)} = %s{conditions}"  # noqa: S608
        cached = _UPDATES[key] = (sql, set_fields, where_fields)
    sql, set_fields, where_fields = cached
    params = [_prep(field, value) for field, value in zip(set_fields, values.values(), strict=True)]
    params.append(pk)
    params.extend(_prep(field, value) for field, value in zip(where_fields, where.values(), strict=True))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def row_get(model: type[models.Model], pk: Any) -> models.Model:
    """`model.objects.get(pk=pk)` (no related objects loaded), with the SELECT built once per model."""
    if connection.vendor != "postgresql":
        return model.objects.get(pk=pk)
    cached = _SELECTS.get(model)
    if cached is None:
        meta = model._meta
        fields = meta.concrete_fields
        columns = ", ".join(_quote(f.column) for f in fields)
        sql = f"SELECT {columns} FROM {_quote(meta.db_table)} WHERE {_quote(meta.pk.column)} = %s"  # noqa: S608
        # Fields that convert what the driver returns (JSONField decodes its text), as the ORM's compiler would.
        converters = [(i, f.from_db_value) for i, f in enumerate(fields) if hasattr(f, "from_db_value")]
        cached = _SELECTS[model] = (sql, [f.attname for f in fields], converters)
    sql, attnames, converters = cached
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk])
        row = cursor.fetchone()
    if row is None:
        raise model.DoesNotExist(f"{model.__name__} {pk} does not exist.")
    if converters:
        row = list(row)
        for index, convert in converters:
            row[index] = convert(row[index], None, connection)
    return model.from_db(connection.alias, attnames, row)


def _prep(field: models.Field, value: Any) -> Any:
    if isinstance(value, models.Model):
        value = value.pk
    return field.get_db_prep_save(value, connection)
