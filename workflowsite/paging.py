"""Paginators for tables that grow without bound (runs, steps, events, metrics): no COUNT(*) over them.

A changelist or list page counts its rows to number its pages. On a table of millions of rows that count
is a scan of the whole table (or of the whole filtered part) on every page view, however few rows the
page shows. `EstimatedCountPaginator` counts at most `cap` rows (1,000, or one row past the page asked
for, so deeper pages stay reachable: an index-bounded `LIMIT` subquery); an unfiltered table's size comes
from PostgreSQL's own estimate (`pg_class.reltuples`, kept by autovacuum). Past the cap the count and the
last page number are a floor ("at least"), not the truth; the rows on each page are exact, and a page
has a next page whenever more rows follow it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import PAGE_VAR
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

COUNT_CAP = 1_000


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

    def want_page(self, number) -> None:
        """Count far enough to know whether page `number`, and one after it, exist."""
        if "count" in self.__dict__:
            return
        try:
            wanted = int(number)
        except (TypeError, ValueError):
            return
        if 0 < wanted < 10**7:
            self.cap = max(self.cap, wanted * self.per_page + 1)

    def validate_number(self, number):
        self.want_page(number)
        return super().validate_number(number)

    @cached_property
    def count(self) -> int:
        queryset: Any = self.object_list
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


class LargeTableAdminMixin(admin.ModelAdmin):
    """For a ModelAdmin of a large table: no full count, and the capped count reaches the page asked for
    (the changelist reads the count before it validates its page number)."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        paginator = super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)
        if isinstance(paginator, EstimatedCountPaginator):
            paginator.want_page(request.GET.get(PAGE_VAR, 1))
        return paginator


def indexed_distinct(model, field: str, limit: int = 100, using: str = "default") -> list[str]:
    """The distinct values of an indexed column, read by hopping through its index (one index probe per
    value) instead of `SELECT DISTINCT`, which reads every row: milliseconds on millions of rows."""
    table = connections[using].ops.quote_name(model._meta.db_table)
    column = connections[using].ops.quote_name(model._meta.get_field(field).column)
    sql = (
        f"WITH RECURSIVE v(x) AS ((SELECT min({column}) FROM {table}) UNION ALL "
        f"SELECT (SELECT min({column}) FROM {table} WHERE {column} > v.x) FROM v WHERE v.x IS NOT NULL) "
        f"SELECT x FROM v WHERE x IS NOT NULL LIMIT %s"
    )
    with connections[using].cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


def values_filter(field: str, title: str, values):
    """An admin list filter on `field` whose choices come from `values()` ([(value, label)]), not from a
    `SELECT DISTINCT` over the table as Django's default filter for a plain column does."""

    class ValuesFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request, model_admin):
            return list(values())

        def queryset(self, request, queryset):
            return queryset.filter(**{field: self.value()}) if self.value() else queryset

    ValuesFilter.title = title
    ValuesFilter.__name__ = f"{field.title().replace('_', '')}ValuesFilter"
    return ValuesFilter
