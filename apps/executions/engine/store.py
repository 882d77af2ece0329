"""The hop path's writes as plain SQL: one INSERT for the steps or events of an advance, one
UPDATE per changed row. Values are adapted exactly as the ORM would save them (each field's
`pre_save` and `get_db_prep_save`), so what is stored is the same; the cost of building the
ORM's query objects, several times the cost of the statement itself on a hop, is not paid."""

from __future__ import annotations

from typing import Any, TypeVar
from collections.abc import Sequence

from django.db import connection, models

_M = TypeVar("_M", bound=models.Model)


def concrete_field(model: type[models.Model], name: str) -> models.Field:
    """The field `name` of `model` that has a column (get_field also finds reverse relations)."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field), name
    return field


def _columns(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def insert(objs: Sequence[models.Model]) -> None:
    """INSERT `objs` (all of one model) in one statement; sets their primary keys."""
    if not objs:
        return
    model = type(objs[0])
    fields = _columns(model)
    params: list[Any] = []
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="bulk_create")  # type: ignore[attr-defined]  # private, as bulk_create calls it
        params.extend(f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    names = ", ".join(f'"{f.column}"' for f in fields)
    sql = f'INSERT INTO "{model._meta.db_table}" ({names}) VALUES {", ".join([row] * len(objs))} RETURNING "id"'
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [r[0] for r in cursor.fetchall()]
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


def update(obj: models.Model, names: Sequence[str], *, where: dict[str, Any] | None = None) -> int:
    """UPDATE the columns `names` of `obj`'s row (and only if `where` holds); the row count."""
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
    with connection.cursor() as cursor:
        cursor.execute(f'UPDATE "{model._meta.db_table}" SET {assignments} WHERE {" AND ".join(conditions)}', params)
        return cursor.rowcount


def _select_list(model: type[models.Model], alias: str, exclude: Sequence[str] = ()) -> tuple[list[models.Field], str]:
    fields = [f for f in model._meta.concrete_fields if f.attname not in exclude and f.name not in exclude]
    return fields, ", ".join(f'{alias}."{f.column}"' for f in fields)


def _build(model: type[_M], fields: list[models.Field], values: Sequence[Any]) -> _M:
    converted = []
    for field, value in zip(fields, values, strict=True):
        if value is not None and hasattr(field, "from_db_value"):
            value = field.from_db_value(value, None, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def step_with_locked_run(step_model, run_model, step_id: int, *, defer: Sequence[str] = ()):
    """The step `step_id` with its run, the run's row locked (FOR UPDATE), in one statement; the
    run's `defer` columns are left unread. None when the step does not exist."""
    step_fields, step_cols = _select_list(step_model, "s")
    run_fields, run_cols = _select_list(run_model, "e", exclude=defer)
    sql = (
        f'SELECT {step_cols}, {run_cols} FROM "{step_model._meta.db_table}" s '
        f'JOIN "{run_model._meta.db_table}" e ON e."id" = s."execution_id" WHERE s."id" = %s FOR UPDATE OF e'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [step_id])
        row = cursor.fetchone()
    if row is None:
        return None
    step = _build(step_model, step_fields, row[: len(step_fields)])
    run = _build(run_model, run_fields, row[len(step_fields):])
    step.execution = run  # the related object, without another query
    return step


def steps_of_nodes(step_model, execution_id: int, scope: str, node_ids: Sequence[str]) -> list:
    """The steps of `node_ids` in one scope instance of a run, oldest first (one statement)."""
    fields, cols = _select_list(step_model, "s")
    sql = (f'SELECT {cols} FROM "{step_model._meta.db_table}" s WHERE s."execution_id" = %s AND s."scope" = %s '
           'AND s."node_id" = ANY(%s) ORDER BY s."id"')
    with connection.cursor() as cursor:
        cursor.execute(sql, [execution_id, scope, list(node_ids)])
        return [_build(step_model, fields, row) for row in cursor.fetchall()]


def steps_of_scopes(step_model, execution_id: int, scopes: Sequence[str]) -> list:
    """Every step of the given scope instances of a run, oldest first (one statement)."""
    fields, cols = _select_list(step_model, "s")
    sql = (f'SELECT {cols} FROM "{step_model._meta.db_table}" s WHERE s."execution_id" = %s AND s."scope" = '
           'ANY(%s) ORDER BY s."id"')
    with connection.cursor() as cursor:
        cursor.execute(sql, [execution_id, list(scopes)])
        return [_build(step_model, fields, row) for row in cursor.fetchall()]


def unadvanced_steps(step_model, execution_id: int, statuses: Sequence[str]) -> list:
    """Finished steps of a run not taken into account yet, in finishing order (the inbox)."""
    fields, cols = _select_list(step_model, "s")
    sql = (
        f'SELECT {cols} FROM "{step_model._meta.db_table}" s WHERE s."execution_id" = %s AND NOT s."advanced" '
        f'AND s."status" = ANY(%s) ORDER BY s."finished_at", s."id"'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [execution_id, list(statuses)])
        return [_build(step_model, fields, row) for row in cursor.fetchall()]


def update_returning(step_model, sql_set: str, where: str, params: Sequence[Any]):
    """`UPDATE <steps> SET <sql_set> WHERE <where> RETURNING *` as a model instance (None when no
    row matched)."""
    fields, cols = _select_list(step_model, "t")
    table = step_model._meta.db_table
    sql = f'UPDATE "{table}" t SET {sql_set} WHERE {where} RETURNING {cols}'
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        row = cursor.fetchone()
    return None if row is None else _build(step_model, fields, row)
