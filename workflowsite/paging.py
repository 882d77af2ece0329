"""Paginators for tables that grow without bound (runs, steps, events, metrics): no COUNT(*) over them.

A changelist or list page counts its rows to number its pages. On a table of millions of rows that count
is a scan of the whole table (or of the whole filtered part) on every page view, however few rows the
page shows. `EstimatedCountPaginator` counts at most `cap` rows (an index-bounded `LIMIT` subquery); an
unfiltered table's size comes from PostgreSQL's own estimate (`pg_class.reltuples`, kept by autovacuum).
Past the cap the last page number is a floor, not the truth; the rows on each page are exact.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

COUNT_CAP = 10_000


def estimated_table_rows(model, using: str = "default") -> int | None:
    """PostgreSQL's estimate of a table's rows (None when it has none yet: never analysed)."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None and row[0] >= 0 else None


def capped_count(queryset, cap: int = COUNT_CAP) -> int:
    """The queryset's rows, counted up to `cap` (a LIMIT subquery: it stops at `cap` rows)."""
    return queryset.order_by().values("pk")[:cap].count()


class EstimatedCountPaginator(Paginator):
    """A paginator whose count never scans a large table: exact up to `cap` rows, an estimate beyond."""

    cap = COUNT_CAP
    # "" (exact), "about " (the table's estimate) or "at least " (the cap): for templates to say so.
    count_prefix = ""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not hasattr(queryset, "query"):
            return super().count
        if not queryset.query.where and not queryset.query.distinct:
            estimate = estimated_table_rows(queryset.model, queryset.db)
            if estimate is not None and estimate > self.cap:
                self.count_prefix = "about "
                return estimate
        counted = capped_count(queryset, self.cap)
        if counted >= self.cap:
            self.count_prefix = "at least "
        return counted


def indexed_distinct(model, field: str, limit: int = 100, using: str = "default") -> list[str]:
    """The distinct values of an indexed column, read by hopping through its index (one index probe per
    value) instead of `SELECT DISTINCT`, which reads every row: milliseconds on millions of rows."""
    table = connections[using].ops.quote_name(model._meta.db_table)
    column = connections[using].ops.quote_name(model._meta.get_field(field).column)
    sql = (f"WITH RECURSIVE v(x) AS ((SELECT min({column}) FROM {table}) UNION ALL "
           f"SELECT (SELECT min({column}) FROM {table} WHERE {column} > v.x) FROM v WHERE v.x IS NOT NULL) "
           f"SELECT x FROM v WHERE x IS NOT NULL LIMIT %s")
    with connections[using].cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


def values_filter(field: str, title: str, values):
    """An admin list filter on `field` whose choices come from `values()` ([(value, label)]), not from a
    `SELECT DISTINCT` over the table as Django's default filter for a plain column does."""
    from django.contrib import admin

    class ValuesFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request, model_admin):
            return list(values())

        def queryset(self, request, queryset):
            return queryset.filter(**{field: self.value()}) if self.value() else queryset

    ValuesFilter.title = title
    ValuesFilter.__name__ = f"{field.title().replace('_', '')}ValuesFilter"
    return ValuesFilter
