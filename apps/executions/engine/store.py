"""The hop path's writes as plain SQL: one INSERT for the steps or events of an advance, one
UPDATE per changed row. Values are adapted exactly as the ORM would save them (each field's
`pre_save` and `get_db_prep_save`), so what is stored is the same; the cost of building the
ORM's query objects, several times the cost of the statement itself on a hop, is not paid."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import connection, models
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


class _DebugCursor(CursorDebugWrapper):
    """Logs a statement as written: a prepared statement leaves no text for Django's
    `last_executed_query` to read back."""

    def execute(self, sql, params=None):
        with self.debug_sql(sql, params):
            return CursorWrapper.execute(self, sql, params)


def cursor():
    """A cursor whose parameters PostgreSQL binds itself, so psycopg prepares the hop's
    statements once per connection (DATABASES OPTIONS `prepare_threshold`) and the server
    parses and plans each of them once, not at every hop. Wrapped like any Django cursor:
    errors are Django's and CaptureQueriesContext sees the statements."""
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        raw = ServerBindingCursor(connection.connection)
    return _DebugCursor(raw, connection) if connection.queries_logged else CursorWrapper(raw, connection)


_M = TypeVar("_M", bound=models.Model)


def concrete_field(model: type[models.Model], name: str) -> models.Field:
    """The field `name` of `model` that has a column (get_field also finds reverse relations)."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field), name
    return field


def _columns(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _columns_of(objs: Sequence[models.Model], fields: Sequence[models.Field], *, pre_save: bool) -> list[list[Any]]:
    """The values of `fields` of `objs`, adapted as the ORM saves them, one list per column."""
    columns: list[list[Any]] = [[] for _ in fields]
    for obj in objs:
        if pre_save:
            obj._prepare_related_fields_for_save(operation_name="bulk_create")  # type: ignore[attr-defined]  # private, as bulk_create calls it
        for column, field in zip(columns, fields, strict=True):
            value = field.pre_save(obj, True) if pre_save else getattr(obj, field.attname)
            column.append(field.get_db_prep_save(value, connection))
    return columns


# Up to this many rows a statement lists them (VALUES): its text depends only on the count, so
# psycopg converts it once and PostgreSQL prepares it. More rows travel as one array per column
# (unnest): a fan-out of 100 is then one short statement, not 1,900 placeholders to rewrite.
VALUES_MAX = 16


def insert(objs: Sequence[models.Model], *, also: tuple[str, list[Any]] | None = None) -> None:
    """INSERT `objs` (all of one model) in one statement; sets their primary keys (in order).
    `also`, an UPDATE from `update_sql`, runs in the same statement (a data-modifying WITH)."""
    if not objs:
        return
    model = type(objs[0])
    fields = _columns(model)
    params: list[Any] = []
    prefix = ""
    if also is not None:
        prefix = f"WITH also AS ({also[0]}) "
        params.extend(also[1])
    columns = _columns_of(objs, fields, pre_save=True)
    names = ", ".join(f'"{f.column}"' for f in fields)
    table = model._meta.db_table
    if len(objs) <= VALUES_MAX:
        for i in range(len(objs)):
            params.extend(column[i] for column in columns)
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        sql = f'{prefix}INSERT INTO "{table}" ({names}) VALUES {", ".join([row] * len(objs))} RETURNING "id"'
    else:
        params.extend(columns)
        arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
        # WITH ORDINALITY … ORDER BY: the rows go in, and their ids come back, in the order of `objs`.
        sql = (
            f'{prefix}INSERT INTO "{table}" ({names}) '
            f"SELECT {names} FROM unnest({arrays}) WITH ORDINALITY AS v({names}, ord) ORDER BY ord "
            f'RETURNING "id"'
        )
    with cursor() as cur:
        cur.execute(sql, params)
        ids = [r[0] for r in cur.fetchall()]
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


def update_many(
    objs: Sequence[models.Model], names: Sequence[str], *, guards: dict[Any, str] | None = None
) -> set[Any]:
    """`bulk_update(objs, names)` as one UPDATE … FROM (VALUES …) or FROM unnest(…) (Django's
    bulk_update builds a CASE WHEN per object and field: about 3 ms of CPU per 100 values). A row
    whose pk is in `guards` is written only if its status is still the one given. Returns the pks
    of the rows written."""
    if not objs:
        return set()
    guards = guards or {}
    model = type(objs[0])
    fields = [concrete_field(model, name) for name in names]
    pk = model._meta.pk
    columns = [f.column for f in fields]
    assignments = ", ".join(f'"{c}" = v."{c}"' for c in columns)
    aliases = ", ".join(f'"{c}"' for c in [pk.column, *columns, "wb_expected"])
    values = [
        [obj.pk for obj in objs],
        *_columns_of(objs, fields, pre_save=False),
        [guards.get(obj.pk) for obj in objs],
    ]
    types = [f.db_type(connection) for f in [pk, *fields]] + ["text"]
    if len(objs) <= VALUES_MAX:
        row = "(" + ", ".join(f"%s::{t}" for t in types) + ")"
        source = f"(VALUES {', '.join([row] * len(objs))})"
        params: list[Any] = [column[i] for i in range(len(objs)) for column in values]
    else:
        source = "unnest(" + ", ".join(f"%s::{t}[]" for t in types) + ")"
        params = values
    table, key = model._meta.db_table, pk.column
    sql = (
        f'UPDATE "{table}" AS s SET {assignments} FROM {source} AS v({aliases}) '
        f'WHERE s."{key}" = v."{key}" AND (v.wb_expected IS NULL OR s."status" = v.wb_expected) RETURNING s."{key}"'
    )
    with cursor() as cur:
        cur.execute(sql, params)
        return {row[0] for row in cur.fetchall()}


def update_sql(
    obj: models.Model, names: Sequence[str], *, where: dict[str, Any] | None = None
) -> tuple[str, list[Any]]:
    """The UPDATE of the columns `names` of `obj`'s row (only if `where` holds), and its parameters."""
    model = type(obj)
    fields = [concrete_field(model, name) for name in names]
    assignments = ", ".join(f'"{f.column}" = %s' for f in fields)
    params = [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields]
    conditions = ['"id" = %s']
    params.append(obj.pk)
    for name, value in (where or {}).items():
        field = concrete_field(model, name)
        conditions.append(f'"{field.column}" = %s')
        params.append(field.get_db_prep_value(value, connection))
    return f'UPDATE "{model._meta.db_table}" SET {assignments} WHERE {" AND ".join(conditions)}', params


def update(obj: models.Model, names: Sequence[str], *, where: dict[str, Any] | None = None) -> int:
    """UPDATE the columns `names` of `obj`'s row (and only if `where` holds); the row count."""
    sql, params = update_sql(obj, names, where=where)
    with cursor() as cur:
        cur.execute(sql, params)
        return cur.rowcount


def select_list(model: type[models.Model], alias: str, exclude: Sequence[str] = ()) -> tuple[list[models.Field], str]:
    fields = [f for f in model._meta.concrete_fields if f.attname not in exclude and f.name not in exclude]
    return fields, ", ".join(f'{alias}."{f.column}"' for f in fields)


def build(model: type[_M], fields: list[models.Field], values: Sequence[Any]) -> _M:
    converted = []
    for field, value in zip(fields, values, strict=True):
        if value is not None and hasattr(field, "from_db_value"):
            value = field.from_db_value(value, None, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def step_with_locked_run(step_model, run_model, step_id: int, *, defer: Sequence[str] = ()):
    """The step `step_id` with its run, the run's row locked (FOR UPDATE), in one statement; the
    run's `defer` columns are left unread. None when the step does not exist."""
    step_fields, step_cols = select_list(step_model, "s")
    run_fields, run_cols = select_list(run_model, "e", exclude=defer)
    sql = (
        f'SELECT {step_cols}, {run_cols} FROM "{step_model._meta.db_table}" s '
        f'JOIN "{run_model._meta.db_table}" e ON e."id" = s."execution_id" WHERE s."id" = %s FOR UPDATE OF e'
    )
    with cursor() as cur:
        cur.execute(sql, [step_id])
        row = cur.fetchone()
    if row is None:
        return None
    step = build(step_model, step_fields, row[: len(step_fields)])
    run = build(run_model, run_fields, row[len(step_fields) :])
    step.execution = run  # the related object, without another query
    return step


def steps_of_nodes(step_model, execution_id: int, wanted: Sequence[tuple[str, Sequence[str]]]) -> list:
    """The steps of the given nodes in the given scope instances of a run, oldest first, in one
    statement: `wanted` is a list of (scope, node ids)."""
    fields, cols = select_list(step_model, "s")
    clauses = " OR ".join(['(s."scope" = %s AND s."node_id" = ANY(%s))'] * len(wanted))
    params: list[Any] = [execution_id]
    for scope, node_ids in wanted:
        params += [scope, list(node_ids)]
    sql = (
        f'SELECT {cols} FROM "{step_model._meta.db_table}" s '
        f'WHERE s."execution_id" = %s AND ({clauses}) ORDER BY s."id"'
    )
    with cursor() as cur:
        cur.execute(sql, params)
        return [build(step_model, fields, row) for row in cur.fetchall()]


def steps_of_scopes(step_model, execution_id: int, scopes: Sequence[str]) -> list:
    """Every step of the given scope instances of a run, oldest first (one statement)."""
    fields, cols = select_list(step_model, "s")
    sql = (
        f'SELECT {cols} FROM "{step_model._meta.db_table}" s '
        'WHERE s."execution_id" = %s AND s."scope" = ANY(%s) ORDER BY s."id"'
    )
    with cursor() as cur:
        cur.execute(sql, [execution_id, list(scopes)])
        return [build(step_model, fields, row) for row in cur.fetchall()]


def unadvanced_steps(step_model, execution_id: int, statuses: Sequence[str]) -> list:
    """Finished steps of a run not taken into account yet, in finishing order (the inbox)."""
    fields, cols = select_list(step_model, "s")
    sql = (
        f'SELECT {cols} FROM "{step_model._meta.db_table}" s WHERE s."execution_id" = %s AND NOT s."advanced" '
        f'AND s."status" = ANY(%s) ORDER BY s."finished_at", s."id"'
    )
    with cursor() as cur:
        cur.execute(sql, [execution_id, list(statuses)])
        return [build(step_model, fields, row) for row in cur.fetchall()]


def update_returning(step_model, sql_set: str, where: str, params: Sequence[Any]):
    """`UPDATE <steps> SET <sql_set> WHERE <where> RETURNING *` as a model instance (None when no
    row matched)."""
    fields, cols = select_list(step_model, "t")
    table = step_model._meta.db_table
    sql = f'UPDATE "{table}" t SET {sql_set} WHERE {where} RETURNING {cols}'
    with cursor() as cur:
        cur.execute(sql, list(params))
        row = cur.fetchone()
    return None if row is None else build(step_model, fields, row)
