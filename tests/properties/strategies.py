"""Hypothesis strategies for the property tests: JSON-ish values, hostile text, JSONPaths, conditions,
mapping expressions and workflow definitions (valid, nearly valid and nonsense)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from apps.workflows.definition import expressions, mapping

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#
# Strategies
#

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
hostile_text = st.text(alphabet=st.sampled_from(list("$.[]*'\"0123456789-_aZ {}|()+?\\^\x00\ud800")), max_size=30)
paths = hostile_text | st.builds(lambda parts: "$" + "".join(parts), st.lists(st.sampled_from([".input", ".vars", ".x", "[0]", "[-1]", "[*]", ".*", "['a b']", "[", ".", "[x]"]), max_size=5))
ops = st.sampled_from([*expressions.OPERATORS, "between", "", None, 3])


def _leaf_condition():
    return st.fixed_dictionaries(
        {"var": paths | st.sampled_from(["order.total", "a", ""]) | scalars, "op": ops},
        optional={"value": json_values | hostile_text | st.sampled_from(["(a+)+$", "(", r"(a)\1", "{{ $.input.x }}", "$.input.x"]), "value_from": paths},
    )


conditions = st.recursive(
    _leaf_condition() | json_values,
    lambda inner: st.fixed_dictionaries({"all": st.lists(inner, max_size=3)}) | st.fixed_dictionaries({"any": st.lists(inner, max_size=3)}) | st.fixed_dictionaries({"not": inner}) | st.fixed_dictionaries({"all": inner}),
    max_leaves=8,
)
contexts = st.fixed_dictionaries({"input": json_values, "vars": json_values})

mapping_exprs = st.recursive(
    json_values | hostile_text | st.sampled_from(["@", "@.a", "@.a[0]", "@[", "@.*", "@..x"]),
    lambda inner: st.fixed_dictionaries({"fn": st.sampled_from([*mapping.FUNCTIONS, "nope"]) | scalars}, optional={"args": st.lists(inner, max_size=4) | inner})
    | st.fixed_dictionaries({"path": inner}, optional={"default": inner})
    | st.fixed_dictionaries({"value": inner})
    | st.lists(inner, max_size=3),
    max_leaves=10,
)

node_types = st.sampled_from(["activity", "condition", "parallel", "loop", "dynamic", "child_workflow", "signal_wait", "approval", "timer", "nope"])
nodes = st.fixed_dictionaries(
    {"id": st.sampled_from(["a", "b", "c", "", "1x"]) | scalars, "type": node_types | scalars},
    optional={
        "activity": st.sampled_from(["set", "noop", "map", "http.request", "log", "nope"]) | scalars,
        "params": json_values,
        "cases": st.lists(st.fixed_dictionaries({"when": conditions, "to": st.sampled_from(["a", "b", "zz"]) | scalars}), max_size=2) | json_values,
        "default": st.sampled_from(["a", "b"]) | scalars,
        "condition": conditions,
        "mode": st.sampled_from(["for_each", "while", "until", "execute", "start"]) | scalars,
        "items": paths | json_values,
        "body": st.fixed_dictionaries({"nodes": st.lists(st.fixed_dictionaries({"id": st.sampled_from(["d", "e"]), "type": node_types}), max_size=2)}) | json_values,
        "branches": json_values,
        "on_error": st.sampled_from(["a", "b", "c"]) | scalars,
        "output": st.text(max_size=5) | scalars,
        "duration": json_values | paths,
        "signal": st.text(max_size=5),
    },
)
definitions = st.fixed_dictionaries(
    {"format_version": st.just(1) | scalars, "nodes": st.lists(nodes, max_size=4) | json_values},
    optional={"edges": st.lists(st.fixed_dictionaries({"from": st.sampled_from(["a", "b", "c"]) | scalars, "to": st.sampled_from(["a", "b", "c"]) | scalars}), max_size=3) | json_values, "signals": json_values, "input_schema": json_values, "output": json_values | paths, "variables": json_values},
) | json_values
