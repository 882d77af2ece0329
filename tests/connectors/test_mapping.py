"""Mapping functions and the `map` activity: pure, no eval, clear errors."""

from __future__ import annotations

import pytest

from apps.connectors.activities.data import map_values
from apps.executions.activities import ActivityContext, ActivityError
from apps.workflows.definition import mapping

ORDER = {
    "customer": {"name": "  Ada Lovelace ", "email": "ADA@EXAMPLE.COM"},
    "items": [{"sku": "b", "qty": 2, "price": 9.5, "status": "open"}, {"sku": "a", "qty": 1, "price": 20, "status": "done"}, {"sku": "b", "qty": 3, "price": 9.5, "status": "open"}],
    "placed": "2025-03-01T10:00:00Z",
    "tags": ["x", "y", "x"],
}


def ctx() -> ActivityContext:
    return ActivityContext(execution_id=0, step_id=0, node_id="m", attempt=1)


@pytest.mark.parametrize(
    "expr, expected",
    [
        ({"fn": "upper", "args": ["@.customer.name"]}, "  ADA LOVELACE "),
        ({"fn": "lower", "args": ["@.customer.email"]}, "ada@example.com"),
        ({"fn": "trim", "args": ["@.customer.name"]}, "Ada Lovelace"),
        ({"fn": "replace", "args": [{"fn": "trim", "args": ["@.customer.name"]}, " ", "_"]}, "Ada_Lovelace"),
        ({"fn": "split", "args": ["a,b,c", ","]}, ["a", "b", "c"]),
        ({"fn": "join", "args": ["@.tags", "-"]}, "x-y-x"),
        ({"fn": "round", "args": [3.14159, 2]}, 3.14),
        ({"fn": "round", "args": [2.5]}, 2),
        ({"fn": "sum", "args": ["@.items[*].qty"]}, 6),
        ({"fn": "avg", "args": ["@.items[*].price"]}, 13.0),
        ({"fn": "min", "args": ["@.items[*].price"]}, 9.5),
        ({"fn": "max", "args": ["@.items[*].price"]}, 20),
        ({"fn": "format_date", "args": ["@.placed", "%d %b %Y"]}, "01 Mar 2025"),
        ({"fn": "parse_date", "args": ["01/03/2025", "%d/%m/%Y"]}, "2025-03-01T00:00:00+00:00"),
        ({"fn": "add_days", "args": ["@.placed", 30]}, "2025-03-31T10:00:00+00:00"),
        ({"fn": "first", "args": ["@.tags"]}, "x"),
        ({"fn": "last", "args": ["@.tags"]}, "x"),
        ({"fn": "length", "args": ["@.items"]}, 3),
        ({"fn": "unique", "args": ["@.tags"]}, ["x", "y"]),
        ({"fn": "sort", "args": ["@.items[*].sku"]}, ["a", "b", "b"]),
        ({"fn": "sort", "args": ["@.items", "price", "desc"]}, [ORDER["items"][1], ORDER["items"][0], ORDER["items"][2]]),
        ({"fn": "filter", "args": ["@.items", "status", "open"]}, [ORDER["items"][0], ORDER["items"][2]]),
        ({"fn": "keys", "args": ["@.customer"]}, ["name", "email"]),
        ({"fn": "values", "args": [{"a": 1}]}, [1]),
        ({"fn": "merge", "args": [{"a": 1, "b": 1}, {"b": 2}]}, {"a": 1, "b": 2}),
        ({"fn": "pick", "args": ["@.customer", ["email"]]}, {"email": "ADA@EXAMPLE.COM"}),
        ({"fn": "get", "args": ["@.items", "[1].sku"]}, "a"),
        ({"fn": "concat", "args": ["order-", 42]}, "order-42"),
        ({"fn": "to_number", "args": ["42"]}, 42),
        ({"fn": "default", "args": [None, "n/a"]}, "n/a"),
        ({"path": "@.customer.phone", "default": "none"}, "none"),
        ({"value": "@not-a-path"}, "@not-a-path"),
        ({"total": {"fn": "sum", "args": ["@.items[*].qty"]}, "who": "@.customer.email"}, {"total": 6, "who": "ADA@EXAMPLE.COM"}),
        (7, 7),
    ],
)
def test_functions(expr, expected):
    assert mapping.evaluate(expr, ORDER) == expected


def test_every_documented_example_evaluates():
    for entry in mapping.function_catalogue():
        mapping.evaluate(entry["example"], {})  # raises on a broken example


def test_now_is_an_iso_time():
    assert "T" in mapping.evaluate({"fn": "now"}, {})


@pytest.mark.parametrize(
    "expr, message",
    [
        ({"fn": "eval", "args": ["1+1"]}, "unknown function 'eval'"),
        ({"fn": "sum", "args": ["@.customer"]}, "sum"),
        ({"fn": "round", "args": ["abc"]}, "not a number"),
        ("@.nothing.here", "matched nothing"),
        ({"fn": "upper", "args": ["a"], "extra": 1}, "only fn and args"),
        ({"fn": "format_date", "args": ["not a date"]}, "ISO 8601"),
    ],
)
def test_errors_say_what_went_wrong(expr, message):
    with pytest.raises(mapping.MappingError, match=message):
        mapping.evaluate(expr, ORDER)


def test_deep_nesting_is_refused():
    expr: dict = {"fn": "upper", "args": ["x"]}
    for _ in range(40):
        expr = {"fn": "upper", "args": [expr]}
    with pytest.raises(mapping.MappingError, match="deeper"):
        mapping.evaluate(expr, {})


def test_the_map_activity_builds_an_object_and_names_the_failing_entry():
    out = map_values({"source": ORDER, "values": {"email": {"fn": "lower", "args": ["@.customer.email"]}, "open": {"fn": "length", "args": [{"fn": "filter", "args": ["@.items", "status", "open"]}]}}}, ctx())
    assert out == {"email": "ada@example.com", "open": 2}
    with pytest.raises(ActivityError) as exc:
        map_values({"source": ORDER, "values": {"bad": "@.missing"}}, ctx())
    assert exc.value.type == "MappingError" and "'bad'" in exc.value.message and not exc.value.retryable
