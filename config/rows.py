"""Single-row INSERT, UPDATE and SELECT statements for the service layer, built once per process.

Everything the services do under a wallet lock is on the clock: the lock is
held until commit, so a wallet is only as fast as the Python between its
statements. Django compiles an ORM `save()`, `filter().update()` or `get()`
afresh on every call, and that compile cost more client CPU than PostgreSQL
spent running the statement (docs/performance.md). These helpers build the
same statements from the models' metadata once, cache them, and prepare every
value with the field's own `pre_save` / `get_db_prep_save`, exactly as the ORM
would (Decimal quantising, JSON adaptation, `auto_now`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import connection, models

from config.pipeline import after_sync, pipeline_active

_INSERTS: dict[type[models.Model], tuple[str, list[models.Field]]] = {}
_UPDATES: dict[tuple, tuple[str, list[models.Field], list[models.Field]]] = {}
_SELECTS: dict[tuple, tuple[str, list[tuple]]] = {}


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _insert_statement(model: type[models.Model]) -> tuple[str, list[models.Field]]:
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
    return cached


def _insert_params(instance: models.Model, fields: list[models.Field]) -> list[Any]:
    return [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]


def _inserted(instance: models.Model, pk: Any) -> None:
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = connection.alias


def row_insert(instance: models.Model) -> None:
    """`instance.save(force_insert=True)`, with the INSERT built once per model."""
    sql, fields = _insert_statement(type(instance))
    params = _insert_params(instance, fields)
    if pipeline_active():
        # As in row_update_then_insert: the new key is read with the commit, not under the wallet lock.
        _insert_deferred(instance, sql, params)
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        _inserted(instance, cursor.fetchone()[0])


def _insert_deferred(instance: models.Model, sql: str, params: list[Any], also: Sequence[models.Model] = ()) -> None:
    cursor = connection.cursor()
    cursor.execute(sql, params)

    def inserted() -> None:
        _inserted_all(instance, also, cursor.fetchone())
        cursor.close()

    after_sync(inserted)


def _inserted_all(instance: models.Model, also: Sequence[models.Model], keys: tuple) -> None:
    _inserted(instance, keys[0])
    for row, pk in zip(also, keys[1:], strict=True):
        _inserted(row, pk)


def _update_statement(model: type[models.Model], names: tuple, where_names: tuple) -> tuple[str, list, list]:
    key = (model, names, where_names)
    cached = _UPDATES.get(key)
    if cached is None:
        meta = model._meta
        set_fields = [meta.get_field(name) for name in names]
        where_fields = [meta.get_field(name) for name in where_names]
        assignments = ", ".join(f"{_quote(f.column)} = %s" for f in set_fields)
        conditions = "".join(f" AND {_quote(f.column)} = %s" for f in where_fields)
        sql = f"UPDATE {_quote(meta.db_table)} SET {assignments} WHERE {_quote(meta.pk.column)} = %s{conditions}"  # noqa: S608
        cached = _UPDATES[key] = (sql, set_fields, where_fields)
    return cached


def _update_params(set_fields: list, values: dict, pk: Any, where_fields: list, where: dict) -> list[Any]:
    params = [_prep(field, value) for field, value in zip(set_fields, values.values(), strict=True)]
    params.append(pk)
    params.extend(_prep(field, value) for field, value in zip(where_fields, where.values(), strict=True))
    return params


def row_update(model: type[models.Model], pk: Any, *, where: dict[str, Any] | None = None, **values: Any) -> int:
    """`model.objects.filter(pk=pk, **where).update(**values)`; the number of rows changed.

    `values` and `where` name concrete fields (a foreign key by its attname,
    `capture_entry_id`, or by its name with a model instance). Expressions
    (F(), functions) are not supported: use the ORM for those.
    """
    where = where or {}
    sql, set_fields, where_fields = _update_statement(model, tuple(values), tuple(where))
    with connection.cursor() as cursor:
        cursor.execute(sql, _update_params(set_fields, values, pk, where_fields, where))
        return cursor.rowcount


_UPDATE_THEN_INSERT: dict[tuple, str] = {}


def row_update_then_insert(
    model: type[models.Model],
    pk: Any,
    values: dict[str, Any],
    instance: models.Model,
    *,
    also: Sequence[models.Model] = (),
) -> None:
    """`row_update(model, pk, **values)`, `row_insert(instance)` and `row_insert` of each of `also`: one statement.

    `WITH u AS (UPDATE ...) INSERT ...`: PostgreSQL runs a data-modifying
    WITH exactly once, whether or not the INSERT reads it, and its
    constraints are checked as usual. Under a wallet lock this saves a round
    trip on every money movement (the wallet's UPDATE and its ledger entry's
    INSERT). `also` are rows written with them, each one more INSERT in the
    WITH (an entry's event and what its hooks add): one statement to send
    instead of one each, whose keys come back in the one RETURNING row.
    """
    update_sql, set_fields, where_fields = _update_statement(model, tuple(values), ())
    insert_sql, insert_fields = _insert_statement(type(instance))
    key = (model, tuple(values), type(instance), *(type(row) for row in also))
    sql = _UPDATE_THEN_INSERT.get(key)
    also_statements = [_insert_statement(type(row)) for row in also]
    if sql is None:
        withs = [f"updated AS ({update_sql})"]
        withs += [f"also_{n} AS ({also_sql})" for n, (also_sql, _) in enumerate(also_statements)]
        # Only the models' own column names, quoted: no input reaches this string.
        also_keys = "".join(
            f", (SELECT {_quote(row._meta.pk.column)} FROM also_{n})"  # noqa: S608
            for n, row in enumerate(also)
        )
        sql = _UPDATE_THEN_INSERT[key] = f"WITH {', '.join(withs)} {insert_sql}{also_keys}"
    params = _update_params(set_fields, values, pk, where_fields, {})
    for row, (_, row_fields) in zip(also, also_statements, strict=True):
        params += _insert_params(row, row_fields)
    params += _insert_params(instance, insert_fields)
    if pipeline_active():
        # In pipeline mode reading the new key now would wait for the server
        # under the wallet lock; it is read with the commit (config/pipeline.py).
        _insert_deferred(instance, sql, params, also)
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        _inserted_all(instance, also, cursor.fetchone())


def row_get(model: type[models.Model], pk: Any) -> models.Model:
    """`model.objects.get(pk=pk)` (no related objects loaded), with the SELECT built once per model."""
    instance = row_find(model, by=model._meta.pk.name, value=pk)
    if instance is None:
        raise model.DoesNotExist(f"{model.__name__} {pk} does not exist.")
    return instance


def row_find(
    model: type[models.Model], *, by: str, value: Any, related: str | tuple[str, ...] = ()
) -> models.Model | None:
    """`model.objects.select_related(*related).filter(**{by: value}).first()` for a unique `by`; None if absent.

    `related` names foreign keys whose rows are read in the same statement
    (LEFT JOIN) and attached to the instance (None for an empty one).
    """
    return row_find_also(model, by=by, value=value, related=related)[0]


def row_find_also(
    model: type[models.Model],
    *,
    by: str,
    value: Any,
    related: str | tuple[str, ...] = (),
    also: tuple[type[models.Model], str, Any] | None = None,
) -> tuple[models.Model | None, models.Model | None]:
    """`row_find(...)`, and in the same statement another row found by a unique column: `also` = (model, field, value).

    The second row is independent of the first (LEFT JOIN ... ON its column =
    the value): (instance or None, other or None). One round trip instead of
    two where a request needs both (an API key and the account its request names).
    """
    related = (related,) if isinstance(related, str) else tuple(related)
    also_key = (also[0], also[1]) if also is not None else None
    key = (model, by, related, also_key)
    cached = _SELECTS.get(key)
    if cached is None:
        cached = _SELECTS[key] = _select_statement(model, by, related, also_key)
    sql, parts = cached
    with connection.cursor() as cursor:
        cursor.execute(sql, [value] if also is None else [also[2], value])
        row = cursor.fetchone()
    if row is None:
        return None, None
    instances = []
    start = 0
    for part_model, attnames, converters, pk_index in parts:
        values = list(row[start : start + len(attnames)])
        start += len(attnames)
        if values[pk_index] is None:  # the LEFT JOIN found no related row
            instances.append(None)
            continue
        for index, convert in converters:
            values[index] = convert(values[index], None, connection)
        instances.append(part_model.from_db(connection.alias, attnames, values))
    instance = instances[0]
    other = instances.pop() if also is not None else None
    for name, related_instance in zip(related, instances[1:], strict=True):
        setattr(instance, name, related_instance)
    return instance, other


def _select_statement(
    model: type[models.Model], by: str, related: tuple[str, ...], also: tuple | None = None
) -> tuple[str, list[tuple]]:
    meta = model._meta
    models_read = [(model, "t")]
    joins = ""
    for index, name in enumerate(related):
        foreign_key = meta.get_field(name)
        target = foreign_key.related_model
        alias = f"r{index}"
        models_read.append((target, alias))
        joins += (
            f" LEFT JOIN {_quote(target._meta.db_table)} {alias}"
            f" ON {alias}.{_quote(target._meta.pk.column)} = t.{_quote(foreign_key.column)}"
        )
    if also is not None:
        also_model, also_by = also
        models_read.append((also_model, "a"))
        joins += (
            f" LEFT JOIN {_quote(also_model._meta.db_table)} a"
            f" ON a.{_quote(also_model._meta.get_field(also_by).column)} = %s"
        )
    columns: list[str] = []
    parts: list[tuple] = []
    for part_model, alias in models_read:
        fields = part_model._meta.concrete_fields
        columns.extend(f"{alias}.{_quote(f.column)}" for f in fields)
        # Fields that convert what the driver returns (JSONField decodes its
        # text), as the ORM's compiler would.
        converters = [(i, f.from_db_value) for i, f in enumerate(fields) if hasattr(f, "from_db_value")]
        pk_index = next(i for i, f in enumerate(fields) if f.primary_key)
        parts.append((part_model, [f.attname for f in fields], converters, pk_index))
    where = _quote(meta.get_field(by).column)
    # Only the models' own table and column names, quoted: no input reaches this string.
    sql = f"SELECT {', '.join(columns)} FROM {_quote(meta.db_table)} t{joins} WHERE t.{where} = %s LIMIT 1"  # noqa: S608
    return sql, parts


def _prep(field: models.Field, value: Any) -> Any:
    if isinstance(value, models.Model):
        value = value.pk
    return field.get_db_prep_save(value, connection)


def table_analyze(model: type[models.Model]) -> None:
    """ANALYZE the model's table: fresh planner statistics after its rows were rebuilt in bulk.

    A table emptied and refilled by a periodic job (console's rollup) would
    otherwise be planned from the statistics of its last autovacuum, which
    may say "empty" and turn a hash join into a nested loop over every row.
    Runs inside the caller's transaction (ANALYZE may; VACUUM may not).
    """
    with connection.cursor() as cursor:
        # Only the model's own table name, quoted: no input reaches this string.
        cursor.execute(f"ANALYZE {_quote(model._meta.db_table)}")


# --- writes buffered for a batch ------------------------------------------------------


class RowBuffer:
    """Rows a batch of postings writes, sent in bulk before its commit rather than one statement per row.

    `update` keeps each row's latest values, `insert` keeps rows in the order
    they were added. `flush` writes them: per model and set of columns, one
    `UPDATE ... FROM unnest(...)`; then per model, in order of first use, one
    `INSERT ... SELECT FROM unnest(...) RETURNING pk`, whose keys come back
    in insertion order (as Django's own bulk_create relies on) and are set
    on the instances. Constraints are checked as for single rows: a CHECK at
    its statement, deferred foreign keys at COMMIT. In pipeline mode the
    keys are read after the next sync, like `row_update_then_insert`'s.
    """

    def __init__(self) -> None:
        self._updates: dict[tuple[type[models.Model], Any], dict[str, Any]] = {}
        self._inserts: list[models.Model] = []

    def update(self, model: type[models.Model], pk: Any, values: dict[str, Any]) -> None:
        self._updates.setdefault((model, pk), {}).update(values)

    def insert(self, *rows: models.Model) -> None:
        self._inserts.extend(rows)

    def flush(self) -> None:
        updates: dict[tuple[type[models.Model], tuple[str, ...]], list[tuple[Any, dict[str, Any]]]] = {}
        for (model, pk), values in self._updates.items():
            updates.setdefault((model, tuple(sorted(values))), []).append((pk, values))
        for (model, names), rows in updates.items():
            _bulk_update(model, names, rows)
        inserts: dict[type[models.Model], list[models.Model]] = {}
        for row in self._inserts:
            inserts.setdefault(type(row), []).append(row)
        for group in _shared_ids:
            if sum(model in inserts for model in group) > 1:
                # One INSERT per table would number one table's rows all before the other's: draw the keys
                # in buffered order instead, so ids order the rows across the tables as they happened.
                _ids_draw(group, [row for row in self._inserts if type(row) in group])
        for model, rows in inserts.items():
            _bulk_insert(model, rows, with_pk=rows[0].pk is not None)
        self._updates, self._inserts = {}, []


_buffer: ContextVar[RowBuffer | None] = ContextVar("row_buffer", default=None)
_shared_ids: list[tuple[type[models.Model], ...]] = []


def row_ids_shared(owner: type[models.Model], *others: type[models.Model]) -> None:
    """Declare that `others` draw their primary keys from `owner`'s sequence (a migration made it so).

    Their ids then order their rows across the tables (billing's ledger
    entries and the stored events: the events feed). A `RowBuffer` holding
    rows of more than one of them draws their keys first, in the order the
    rows were buffered (`_ids_draw`), so a bulk write keeps that order too.
    That costs the flush one statement that waits for its answer (in a
    pipeline, one more round trip): only a batch whose charges also record a
    stored event (an alert) pays it.
    """
    group = (owner, *others)
    if group not in _shared_ids:
        _shared_ids.append(group)


def _ids_draw(group: tuple[type[models.Model], ...], rows: list[models.Model]) -> None:
    """Give `rows` the next keys of their group's sequence (its owner's), in order: one statement."""
    owner = group[0]._meta
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)::regclass) AS id FROM generate_series(1, %s) ORDER BY id",
            [owner.db_table, owner.pk.column, len(rows)],
        )
        for row, (pk,) in zip(rows, cursor.fetchall(), strict=True):
            row.pk = pk


@contextmanager
def row_buffer() -> Iterator[RowBuffer]:
    """Open a `RowBuffer` for the block (`row_buffer_current()` returns it), flushed when the block ends normally."""
    if _buffer.get() is not None:
        raise RuntimeError("A row buffer is already open.")
    buffer = RowBuffer()
    token = _buffer.set(buffer)
    try:
        yield buffer
        buffer.flush()
    finally:
        _buffer.reset(token)


def row_buffer_current() -> RowBuffer | None:
    """The open buffer, if any: a writer whose rows must keep their order among a batch's rows adds them there."""
    return _buffer.get()


_BULK: dict[tuple, str] = {}


def _array_type(field: models.Field) -> str:
    """The column's type without its length or precision, as an array: `varchar(255)` -> `varchar[]`.

    An explicit cast to `varchar(n)` cuts a longer value to n characters
    where an INSERT or UPDATE refuses it (as Django's own unnest insert
    notes); casting to the bare type leaves the column's limit to refuse it.
    """
    return f"{field.db_type(connection).split('(')[0]}[]"


def _bulk_update(model: type[models.Model], names: tuple[str, ...], rows: list[tuple[Any, dict[str, Any]]]) -> None:
    meta = model._meta
    fields = [meta.get_field(name) for name in names]
    key = ("update", model, names)
    sql = _BULK.get(key)
    if sql is None:
        pk = meta.pk
        arrays = ", ".join(f"%s::{_array_type(f)}" for f in [pk, *fields])
        columns = ", ".join(_quote(f.column) for f in fields)
        assignments = ", ".join(f"{_quote(f.column)} = v.{_quote(f.column)}" for f in fields)
        # Only the model's own table and column names and types: no input reaches this string.
        sql = _BULK[key] = (
            f"UPDATE {_quote(meta.db_table)} AS t SET {assignments} "  # noqa: S608
            f"FROM unnest({arrays}) AS v(pk, {columns}) WHERE t.{_quote(pk.column)} = v.pk"
        )
    params = [[pk for pk, _ in rows]]
    params += [[_prep(field, values[name]) for _, values in rows] for field, name in zip(fields, names, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _bulk_insert(model: type[models.Model], rows: list[models.Model], *, with_pk: bool = False) -> None:
    _, fields = _insert_statement(model)
    if with_pk:  # keys drawn beforehand (`_ids_draw`)
        fields = [model._meta.pk, *fields]
    key = ("insert", model, with_pk)
    sql = _BULK.get(key)
    if sql is None:
        meta = model._meta
        columns = ", ".join(_quote(f.column) for f in fields)
        arrays = ", ".join(f"%s::{_array_type(f)}" for f in fields)
        # Only the model's own table and column names and types: no input reaches this string.
        sql = _BULK[key] = (
            f"INSERT INTO {_quote(meta.db_table)} ({columns}) "  # noqa: S608
            f"SELECT * FROM unnest({arrays}) RETURNING {_quote(meta.pk.column)}"
        )
    values = [_insert_params(row, fields) for row in rows]
    params = [list(column) for column in zip(*values, strict=True)]
    cursor = connection.cursor()
    cursor.execute(sql, params)

    def inserted() -> None:
        for row, (pk,) in zip(rows, cursor.fetchall(), strict=True):
            _inserted(row, pk)
        cursor.close()

    if pipeline_active():
        after_sync(inserted)  # read with the commit, as row_update_then_insert's keys
    else:
        inserted()
