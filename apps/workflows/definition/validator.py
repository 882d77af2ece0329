"""Validate a definition (every problem at once, each naming node and field) and
compile it into a Plan.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from django.utils.dateparse import parse_datetime
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from apps.workflows.definition.depgraph import DependencyGraph, GraphError

from . import jsonpath, schema, storable, subflows, userschema
from .expressions import pattern_problems, references_in
from .plan import NodePlan, Plan, ScopePlan
from .registry import activity_names, get_activity

REFERENCE_ROOTS = {"input", "vars", "steps", "item", "index", "error", "execution", "signal", "iteration"}


@dataclass(frozen=True)
class Problem:
    message: str
    node: str | None = None
    field: str | None = None
    code: str = "invalid"

    def __str__(self) -> str:
        where = []
        if self.node:
            where.append(f"node '{self.node}'")
        if self.field:
            where.append(f"field '{self.field}'")
        return (", ".join(where) + ": " if where else "") + self.message

    def as_dict(self) -> dict:
        return asdict(self)


class DefinitionError(ValueError):
    """The definition has problems; `.problems` lists every one."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _field_path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _schema_messages(instance: Any, node_schema: dict, defs: dict, skip=None) -> Iterator[tuple[str, str]]:
    validator = Draft202012Validator({**node_schema, "$defs": defs})
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        if skip is not None and skip(error.instance):
            continue
        field = _field_path(error.absolute_path)
        if error.validator == "additionalProperties":
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            for name in extra:
                yield (_field_path([*error.absolute_path, name]), f"unknown field '{name}'")
            continue
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else error.message
            yield (_field_path([*error.absolute_path, missing]), "this field is required")
            continue
        if error.validator == "minItems" and error.instance == []:
            last = field.rsplit(".", 1)[-1]
            yield (field, "add at least one node" if last == "nodes" else "must not be empty")
            continue
        if error.validator == "pattern":
            yield (field, _pattern_message(field, error.instance, error.validator_value))
            continue
        if (
            error.validator == "oneOf"
            and error.absolute_path
            and list(error.absolute_path)[-1] in ("when", "condition")
        ):
            yield (field, "not a valid condition: use {var, op, value} or all/any/not")
            continue
        yield (field, error.message)


def first_data_error(schema: dict | None, data: Any) -> tuple[str, str] | None:
    """The first place `data` breaks the user-written JSON Schema `schema` (a run's input, a
    signal's payload), or cannot be stored (nesting deeper than WB_JSON_MAX_DEPTH, NUL,
    lone surrogates): (dotted path, message), a missing required property named in the path;
    None when it fits. With no schema only the storage checks apply."""
    unstorable = storable.problem(data)
    if unstorable:
        return unstorable
    if not schema:
        return None
    try:  # the schema's regexes run on RE2, not on backtracking re
        errors = userschema.errors(schema, data)
    except userschema.SchemaUnusable as exc:  # a schema saved before these were checked
        return "", str(exc)
    if not errors:
        return None
    error = errors[0]
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required" and "'" in error.message:
        missing = error.message.split("'")[1]
        path = f"{path}.{missing}" if path else missing
    return path, error.message


def _pattern_message(field: str, value: Any, pattern: str) -> str:
    """Say in words what the id and variable-name patterns want (the regex is the fallback)."""
    last = field.rsplit(".", 1)[-1]
    if pattern == schema.ID_PATTERN:
        return (
            f"{value!r} is not a valid node id: start with a letter, then letters, digits, '_' or '-' (at "
            "most 64 characters)"
        )
    if last == "output":
        return f"{value!r} is not a valid variable name: letters, digits and '_', not starting with a digit"
    return f"{value!r} does not match the pattern {pattern}"


_DEFS_CACHE: dict | None = None


def _defs() -> dict:
    global _DEFS_CACHE
    if _DEFS_CACHE is None:
        condition = dict(schema.CONDITION)
        condition.pop("$id", None)
        _DEFS_CACHE = {"condition": condition, "node": {"type": "object"}, "edge": schema.EDGE}
    return _DEFS_CACHE


class _Checker:
    def __init__(self, definition: Any):
        self.definition = definition
        self.problems: list[Problem] = []
        self.nodes: dict[str, NodePlan] = {}
        self.scopes: dict[str, ScopePlan] = {}
        self.edges_by_scope: dict[str, list[tuple[str, str]]] = {}
        self._await_checks: list[NodePlan] = []
        self.signal_names: set[str] = set()
        self.explicit: dict[str, set[str]] = {}

    def add(self, message: str, node: str | None = None, field: str | None = None, code: str = "invalid") -> None:
        self.problems.append(Problem(message=message, node=node, field=field, code=code))

    # -- document -----------------------------------------------------------------

    def check(self) -> None:
        doc = self.definition
        if not isinstance(doc, dict):
            self.add("the definition must be a JSON object", code="type")
            return
        if self.unstorable():
            return  # nothing below may walk it: too deep to recurse into, or not storable
        for field, message in _schema_messages(
            doc,
            {
                **schema.DOCUMENT,
                "properties": {**schema.DOCUMENT["properties"], "nodes": {"type": "array", "minItems": 1}},
            },
            _defs(),
        ):
            if field.startswith("nodes["):
                continue
            self.add(message, field=field or None, code="schema")
        if doc.get("format_version") not in (None, schema.FORMAT_VERSION) and "format_version" in doc:
            pass  # reported by the schema
        input_schema = doc.get("input_schema")
        if isinstance(input_schema, dict):
            try:
                Draft202012Validator.check_schema(input_schema)
            except SchemaError as exc:
                self.add(f"not a valid JSON Schema: {exc.message}", field="input_schema", code="schema")
            else:
                for where, message, code in userschema.schema_problems(input_schema):
                    self.add(message, field=f"input_schema.{where}", code=code)
        signals = doc.get("signals", [])
        if signals and not isinstance(signals, list):
            self.add("must be a list", field="signals")
        elif isinstance(signals, list):
            seen: set[str] = set()
            for i, sig in enumerate(signals):
                name = sig.get("name") if isinstance(sig, dict) else None
                if not isinstance(name, str) or not name:
                    self.add("each signal needs a name", field=f"signals[{i}].name")
                    continue
                if name in seen:
                    self.add(f"duplicate signal name '{name}'", field=f"signals[{i}].name", code="duplicate_signal")
                if name in schema.RESERVED_SIGNALS:
                    self.add(
                        f"'{name}' is a built-in signal and cannot be declared",
                        field=f"signals[{i}].name",
                        code="reserved_signal",
                    )
                seen.add(name)
                sig_schema = sig.get("schema")
                if isinstance(sig_schema, dict):
                    try:
                        Draft202012Validator.check_schema(sig_schema)
                    except SchemaError as exc:
                        self.add(f"not a valid JSON Schema: {exc.message}", field=f"signals[{i}].schema", code="schema")
                    else:
                        for where, message, code in userschema.schema_problems(sig_schema):
                            self.add(message, field=f"signals[{i}].schema.{where}", code=code)
            self.signal_names = seen
        nodes = doc.get("nodes")
        if not isinstance(nodes, list) or not nodes:
            if "nodes" in doc and isinstance(nodes, list):
                pass
            return
        self.scope("", None, nodes, doc.get("edges", []), None, "")
        for plan in self.nodes.values():
            if plan.type == "signal_wait" and plan.spec.get("signal") not in self.signal_names:
                self.add(
                    f"signal '{plan.spec.get('signal')}' is not declared in the workflow's signals",
                    node=plan.id,
                    field="signal",
                    code="undeclared_signal",
                )
        for plan in self._await_checks:
            target = self.nodes.get(child) if isinstance(child := plan.spec.get("child"), str) else None
            if target is None or target.type != "child_workflow":
                self.add(
                    f"'{plan.spec.get('child')}' is not a child_workflow node",
                    node=plan.id,
                    field="child",
                    code="dangling_reference",
                )
            elif target.spec.get("mode", "execute") != "start":
                self.add(
                    f"'{target.id}' waits for its child already (mode execute); use mode start to await it later",
                    node=plan.id,
                    field="child",
                )
        self.patterns()
        if self.problems:
            return
        self.references()

    def unstorable(self) -> bool:
        """Report where the document nests too deeply or holds text jsonb refuses (NUL, lone
        surrogates), naming the innermost node around it; True when it does."""
        found = storable.problem_parts(self.definition)
        if found is None:
            return False
        parts, message = found
        node_id, start, value = None, 0, self.definition
        for i, part in enumerate(parts):
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                break
            if (
                isinstance(part, int)
                and i > 0
                and parts[i - 1] == "nodes"
                and isinstance(value, dict)
                and isinstance(value.get("id"), str)
            ):
                node_id, start = value["id"], i + 1
        field = storable.short_path(parts[start:]) if node_id else storable.short_path(parts)
        self.add(message, node=node_id, field=field or None, code="unstorable")
        return True

    # -- scopes ---------------------------------------------------------------------

    def scope(self, scope_id: str, owner: str | None, nodes: list, edges: Any, result: str | None, prefix: str) -> None:
        ids: list[str] = []
        for i, node in enumerate(nodes):
            field = f"{prefix}nodes[{i}]"
            if not isinstance(node, dict):
                self.add("a node must be an object", field=field)
                continue
            node_id = node.get("id")
            if not isinstance(node_id, str) or not node_id:
                self.add("every node needs an id", field=f"{field}.id", code="required")
                continue
            if node_id in self.nodes:
                self.add(f"duplicate node id '{node_id}'", node=node_id, field=f"{field}.id", code="duplicate_id")
                continue
            plan = NodePlan(
                id=node_id, type=str(node.get("type")), spec=node, scope=scope_id, on_error=node.get("on_error")
            )
            self.nodes[node_id] = plan
            ids.append(node_id)
            self.node(plan)
        if not ids:
            return
        self.scopes[scope_id] = ScopePlan(id=scope_id, owner=owner, entry=ids[0], node_ids=ids, result=result)
        self.links(scope_id, ids, edges if isinstance(edges, list) else [], prefix)

    def node(self, plan: NodePlan) -> None:
        node, node_id = plan.spec, plan.id
        node_type = node.get("type")
        if not isinstance(node_type, str) or node_type not in schema.NODE_SCHEMAS:
            known = ", ".join(schema.NODE_TYPES)
            self.add(
                f"unknown node type {node_type!r}; known types: {known}",
                node=node_id,
                field="type",
                code="unknown_type",
            )
            return
        for field, message in _schema_messages(node, schema.NODE_SCHEMAS[node_type], _defs()):
            if field.startswith(("body", "branches")) and ".nodes[" in field:
                continue  # nested nodes are checked on their own
            self.add(message, node=node_id, field=field or None, code="schema")
        retry = node.get("retry")
        if isinstance(retry, dict):
            interval, cap = retry.get("interval"), retry.get("max_interval")
            if isinstance(interval, (int, float)) and isinstance(cap, (int, float)) and cap < interval:
                self.add("max_interval must not be less than interval", node=node_id, field="retry.max_interval")
        getattr(self, f"node_{node_type}", lambda p: None)(plan)

    def node_activity(self, plan: NodePlan) -> None:
        name = plan.spec.get("activity")
        if not isinstance(name, str):
            return
        spec = get_activity(name)
        if spec is None:
            self.add(
                f"unknown activity type '{name}'; registered: {', '.join(activity_names())}",
                node=plan.id,
                field="activity",
                code="unknown_activity",
            )
            return
        params = plan.spec.get("params", {})
        if isinstance(params, dict):
            for field, message in _schema_messages(params, spec.params_schema, _defs(), skip=_is_reference):
                self.add(message, node=plan.id, field="params" + ("." + field if field else ""), code="params")

    def node_loop(self, plan: NodePlan) -> None:
        spec = plan.spec
        mode = spec.get("mode")
        if mode == "for_each" and "items" not in spec:
            self.add(
                "a for_each loop needs items (a $.path to a list, or a list)",
                node=plan.id,
                field="items",
                code="required",
            )
        if mode in ("while", "until") and "condition" not in spec:
            self.add(f"a {mode} loop needs a condition", node=plan.id, field="condition", code="required")
        if mode in ("while", "until") and "max_iterations" not in spec and not spec.get("long_running"):
            pass  # a default cap applies (documented)
        body = spec.get("body")
        if isinstance(body, dict) and isinstance(body.get("nodes"), list) and body["nodes"]:
            scope_id = plan.id
            plan.child_scopes.append(scope_id)
            self.scope(scope_id, plan.id, body["nodes"], body.get("edges", []), body.get("result"), f"{plan.id}.body.")

    def node_parallel(self, plan: NodePlan) -> None:
        spec = plan.spec
        branches = spec.get("branches")
        if not isinstance(branches, list):
            return
        join = spec.get("join", "all")
        if isinstance(join, dict) and isinstance(join.get("count"), int) and join["count"] > len(branches):
            self.add(
                f"join count {join['count']} is more than the {len(branches)} branches",
                node=plan.id,
                field="join.count",
            )
        for i, branch in enumerate(branches):
            if isinstance(branch, dict) and isinstance(branch.get("nodes"), list) and branch["nodes"]:
                scope_id = f"{plan.id}.{i}"
                plan.child_scopes.append(scope_id)
                self.scope(
                    scope_id,
                    plan.id,
                    branch["nodes"],
                    branch.get("edges", []),
                    branch.get("result"),
                    f"{plan.id}.branches[{i}].",
                )

    def node_dynamic(self, plan: NodePlan) -> None:
        spec = plan.spec
        if ("activity" in spec) == ("workflow" in spec):
            self.add(
                "a dynamic node runs either an activity or a workflow for each item: give exactly one",
                node=plan.id,
                field="activity",
                code="required",
            )
            return
        if "activity" in spec and isinstance(spec["activity"], str):
            activity = get_activity(spec["activity"])
            if activity is None:
                self.add(
                    f"unknown activity type '{spec['activity']}'; registered: {', '.join(activity_names())}",
                    node=plan.id,
                    field="activity",
                    code="unknown_activity",
                )
            elif isinstance(spec.get("params", {}), dict):
                for field, message in _schema_messages(
                    spec.get("params", {}), activity.params_schema, _defs(), skip=_is_reference
                ):
                    self.add(message, node=plan.id, field="params" + ("." + field if field else ""), code="params")
        items = spec.get("items")
        if isinstance(items, list):
            try:
                graph = DependencyGraph.from_items(
                    [i if isinstance(i, dict) else {} for i in items],
                    id_key=spec.get("id_key", "id"),
                    deps_key=spec.get("depends_on_key", "depends_on"),
                    duration_key="__none__",
                )
                graph.check()
            except GraphError as exc:
                self.add(
                    str(exc), node=plan.id, field="items", code="dependency_cycle" if "cycle" in str(exc) else "items"
                )
        elif not isinstance(items, str):
            self.add("items must be a $.path to a list or a literal list", node=plan.id, field="items")
        # Each item runs in a scope of its own holding one synthetic node.
        item_id = f"{plan.id}:item"
        item_spec: dict = {"id": item_id, "name": f"{plan.label} item"}
        for key in ("retry", "timeout"):
            if key in spec:
                item_spec[key] = spec[key]
        if "activity" in spec:
            item_spec.update(type="activity", activity=spec["activity"], params=spec.get("params", {}))
        else:
            item_spec.update(type="child_workflow", workflow=spec["workflow"], input=spec.get("input", "$.item"))
        item = NodePlan(id=item_id, type=item_spec["type"], spec=item_spec, scope=plan.id)
        self.nodes[item_id] = item
        self.scopes[plan.id] = ScopePlan(id=plan.id, owner=plan.id, entry=item_id, node_ids=[item_id])
        plan.child_scopes.append(plan.id)

    def node_await_child(self, plan: NodePlan) -> None:
        self._await_checks.append(plan)

    def node_timer(self, plan: NodePlan) -> None:
        spec = plan.spec
        if "duration" not in spec and "until" not in spec:
            self.add("a timer needs a duration or an until time", node=plan.id, field="duration", code="required")
        # Literal values are checked now, as the engine would read them (references: at run time).
        duration = spec.get("duration")
        if isinstance(duration, str) and not _is_reference(duration):
            try:
                duration = float(duration)
            except ValueError:
                self.add(
                    f"{duration!r} is not a number of seconds (or a $.path to one)", node=plan.id, field="duration"
                )
                duration = None
        if (
            isinstance(duration, (int, float))
            and not isinstance(duration, bool)
            and not (math.isfinite(duration) and duration >= 0)
        ):
            self.add(f"{duration} is not a number of seconds: give 0 or more", node=plan.id, field="duration")
        until = spec.get("until")
        if isinstance(until, str) and not _is_reference(until):
            try:
                valid = parse_datetime(until) is not None
            except ValueError:
                valid = False
            if not valid:
                self.add(
                    f"{until!r} is not an ISO 8601 time, e.g. 2030-01-31T09:00:00Z (or a $.path to one)",
                    node=plan.id,
                    field="until",
                )

    # -- edges, reachability, cycles ----------------------------------------------------------

    def links(self, scope_id: str, ids: list[str], edges: list, prefix: str) -> None:
        in_scope = set(ids)
        seen: set[tuple[str, str]] = set()
        succ: dict[str, list[str]] = {i: [] for i in ids}
        for i, edge in enumerate(edges):
            field = f"{prefix}edges[{i}]"
            if (
                not isinstance(edge, dict)
                or not isinstance(edge.get("from"), str)
                or not isinstance(edge.get("to"), str)
            ):
                self.add("an edge needs 'from' and 'to' node ids", field=field, code="schema")
                continue
            src, dst = edge["from"], edge["to"]
            bad = False
            for end, name in (("from", src), ("to", dst)):
                if name not in in_scope:
                    where = "another graph" if name in self.nodes else "no node"
                    self.add(
                        f"edge {end} '{name}' points to {where}"
                        + (" (edges stay inside one graph)" if name in self.nodes else ""),
                        node=src if end == "to" and src in in_scope else None,
                        field=f"{field}.{end}",
                        code="dangling_edge",
                    )
                    bad = True
            if bad:
                continue
            if (src, dst) in seen:
                self.add(f"duplicate edge {src} -> {dst}", node=src, field=field, code="duplicate_edge")
                continue
            if self.nodes[src].type == "condition":
                self.add(
                    "a condition's outgoing edges come from its cases and default; remove this edge",
                    node=src,
                    field=field,
                    code="condition_edge",
                )
                continue
            seen.add((src, dst))
            succ[src].append(dst)
        for node_id in ids:
            self.explicit[node_id] = set(succ[node_id])
        for node_id in ids:
            plan = self.nodes[node_id]
            if plan.type == "condition":
                # Targets of the wrong type are the schema's to report; here only names are followed.
                cases = plan.spec.get("cases")
                targets = [c.get("to") for c in (cases if isinstance(cases, list) else []) if isinstance(c, dict)]
                if plan.spec.get("default"):
                    targets.append(plan.spec["default"])
                for j, target in enumerate(targets):
                    if not isinstance(target, str):
                        continue
                    if target not in in_scope:
                        field = (
                            "default"
                            if j == len(targets) - 1 and plan.spec.get("default") == target
                            else f"cases[{j}].to"
                        )
                        self.add(
                            f"target '{target}' is not a node of this graph",
                            node=node_id,
                            field=field,
                            code="dangling_edge",
                        )
                    elif target not in succ[node_id]:
                        succ[node_id].append(target)
            extra_targets: list[tuple[str, str]] = []
            if plan.type in ("signal_wait", "approval") and plan.spec.get("timeout_to"):
                extra_targets.append(("timeout_to", plan.spec["timeout_to"]))
            if plan.type == "approval" and isinstance(plan.spec.get("allocation"), dict):
                assignees = given if isinstance(given := plan.spec.get("assignees"), dict) else {}
                if not (assignees.get("users") or assignees.get("groups")):
                    self.add(
                        "an allocation chooses among the assignees: list users or groups",
                        node=node_id,
                        field="assignees",
                    )
            if plan.type == "approval" and isinstance(plan.spec.get("routes"), dict):
                outcomes = plan.spec.get("outcomes") or ["approve", "reject"]
                # Outcomes that are not a list of names are a schema problem, reported already.
                known = outcomes if isinstance(outcomes, list) and all(isinstance(o, str) for o in outcomes) else None
                for decision, target in plan.spec["routes"].items():
                    if known is not None and decision not in known:
                        self.add(
                            f"'{decision}' is not one of the outcomes ({', '.join(known)})",
                            node=node_id,
                            field=f"routes.{decision}",
                        )
                    extra_targets.append((f"routes.{decision}", target))
            for field, target in extra_targets:
                if not isinstance(target, str):
                    continue
                if target not in in_scope:
                    self.add(
                        f"target '{target}' is not a node of this graph",
                        node=node_id,
                        field=field,
                        code="dangling_edge",
                    )
                elif target not in succ[node_id]:
                    succ[node_id].append(target)
            if isinstance(plan.on_error, str):
                if plan.on_error not in in_scope:
                    self.add(
                        f"on_error target '{plan.on_error}' is not a node of this graph",
                        node=node_id,
                        field="on_error",
                        code="dangling_edge",
                    )
                elif plan.on_error == node_id:
                    self.add("a node cannot be its own error handler", node=node_id, field="on_error")
                else:
                    self.nodes[plan.on_error].handles.append(node_id)
        for src, successors in succ.items():
            self.nodes[src].successors = successors
            for dst in successors:
                self.nodes[dst].predecessors.append(src)
        self.cycles(ids)
        self.reachability(scope_id, ids)

    def cycles(self, ids: list[str]) -> None:
        color = {i: 0 for i in ids}
        reported: set[frozenset] = set()
        for start in ids:
            if color[start]:
                continue
            stack: list[tuple[str, Iterator[str]]] = [(start, iter(self._next(start)))]
            path = [start]
            color[start] = 1
            while stack:
                node_id, it = stack[-1]
                advanced = False
                for nxt in it:
                    if color.get(nxt) == 1:
                        cycle = path[path.index(nxt) :] + [nxt]
                        key = frozenset(cycle)
                        if key not in reported:
                            reported.add(key)
                            self.add(
                                "cycle: " + " -> ".join(cycle) + " (repeat work with a loop node instead)",
                                node=nxt,
                                field="edges",
                                code="cycle",
                            )
                    elif color.get(nxt) == 0:
                        color[nxt] = 1
                        path.append(nxt)
                        stack.append((nxt, iter(self._next(nxt))))
                        advanced = True
                        break
                if not advanced:
                    color[node_id] = 2
                    path.pop()
                    stack.pop()

    def _next(self, node_id: str) -> list[str]:
        plan = self.nodes[node_id]
        return plan.successors + (
            [plan.on_error] if isinstance(plan.on_error, str) and plan.on_error in self.nodes else []
        )

    def reachability(self, scope_id: str, ids: list[str]) -> None:
        entry = ids[0]
        seen = {entry}
        todo = [entry]
        while todo:
            for nxt in self._next(todo.pop()):
                if nxt not in seen and nxt in self.nodes:
                    seen.add(nxt)
                    todo.append(nxt)
        for node_id in ids:
            if node_id not in seen:
                where = (
                    "the workflow"
                    if scope_id == ""
                    else f"'{self.scopes[scope_id].owner if scope_id in self.scopes else scope_id}'"
                )
                self.add(
                    f"unreachable: no edge leads here from '{entry}', where {where} starts",
                    node=node_id,
                    code="unreachable",
                )

    # -- references -------------------------------------------------------------------

    def references(self) -> None:
        for plan in self.nodes.values():
            if ":" in plan.id:
                continue  # synthetic item nodes repeat their dynamic node's fields
            spec = plan.spec
            params = spec.get("params")
            activity = get_activity(spec["activity"]) if isinstance(spec.get("activity"), str) else None
            if activity is not None and isinstance(params, dict) and activity.raw_params:
                params = {k: v for k, v in params.items() if k not in activity.raw_params}
            checks: list[tuple[str, Any]] = [
                ("params", params),
                ("items", spec.get("items")),
                ("duration", spec.get("duration")),
                ("until", spec.get("until")),
                ("input", spec.get("input")),
                ("title", spec.get("title")),
                ("description", spec.get("description")),
            ]
            for field, value in checks:
                for ref in references_in(value):
                    self.reference(ref, plan.id, field)
            for field, cond in self._conditions(spec):
                self.condition_refs(cond, plan.id, field)
        for ref in references_in(self.definition.get("output")):
            self.reference(ref, None, "output")

    def patterns(self) -> None:
        """Literal `matches` patterns compile (RE2), so a typo is caught on save, not mid-run."""
        for plan in self.nodes.values():
            if ":" in plan.id:
                continue
            for field, cond in self._conditions(plan.spec):
                for where, message in pattern_problems(cond, field):
                    self.add(message, node=plan.id, field=where, code="regex")

    def _conditions(self, spec: dict) -> Iterator[tuple[str, Any]]:
        if spec.get("type") == "condition" and isinstance(spec.get("cases"), list):
            for i, case in enumerate(spec["cases"]):
                if isinstance(case, dict):
                    yield f"cases[{i}].when", case.get("when")
        if "condition" in spec:
            yield "condition", spec["condition"]

    def condition_refs(self, cond: Any, node_id: str, field: str) -> None:
        if not isinstance(cond, dict):
            return
        for key in ("all", "any"):
            if isinstance(cond.get(key), list):
                for i, sub in enumerate(cond[key]):
                    self.condition_refs(sub, node_id, f"{field}.{key}[{i}]")
        if "not" in cond:
            self.condition_refs(cond["not"], node_id, f"{field}.not")
        var = cond.get("var")
        if isinstance(var, str):
            self.reference(var if var.startswith("$") else "$.vars." + var, node_id, f"{field}.var")
        if isinstance(cond.get("value_from"), str):
            self.reference(cond["value_from"], node_id, f"{field}.value_from")
        for ref in references_in(cond.get("value")):
            self.reference(ref, node_id, f"{field}.value")

    def reference(self, ref: str, node_id: str | None, field: str) -> None:
        try:
            parts = jsonpath.parse(ref)
        except jsonpath.JSONPathError as exc:
            self.add(f"bad JSONPath: {exc}", node=node_id, field=field, code="jsonpath")
            return
        if not parts:
            self.add(
                f"bad JSONPath {ref!r}: say what to read, e.g. $.input.x", node=node_id, field=field, code="jsonpath"
            )
            return
        root = parts[0]
        if root not in REFERENCE_ROOTS:
            self.add(
                f"bad JSONPath {ref!r}: it must start with one of "
                + ", ".join(f"$.{r}" for r in sorted(REFERENCE_ROOTS)),
                node=node_id,
                field=field,
                code="jsonpath",
            )
        elif root == "steps" and len(parts) > 1 and isinstance(parts[1], str) and parts[1] not in self.nodes:
            self.add(
                f"{ref} refers to step '{parts[1]}', which is not a node of this workflow",
                node=node_id,
                field=field,
                code="jsonpath",
            )


def _is_reference(value: Any) -> bool:
    """Params may hold $.paths or templates where the schema wants a number etc.: their
    type is known only at run time."""
    return isinstance(value, str) and (value.startswith("$") or "{{" in value)


#
# Public API
#


def _subflow_node_ok(node: dict) -> bool:
    return not any(True for _ in _schema_messages(node, schema.NODE_SCHEMAS["subflow"], _defs()))


def _expanded(definition: Any) -> tuple[Any, list[Problem]]:
    """The definition with its subflow nodes inlined (subflows.py), and the problems met."""
    expanded, found = subflows.expand(definition, node_ok=_subflow_node_ok)
    return expanded, [Problem(message=p.message, node=p.node, field=p.field, code=p.code) for p in found]


def validate(definition: Any) -> list[Problem]:
    """Every problem with `definition` (an empty list when it is valid)."""
    definition, problems = _expanded(definition)
    checker = _Checker(definition)
    checker.check()
    return problems + checker.problems


def _build(definition: dict) -> Plan:
    """The plan of a definition; subflow nodes are inlined first, and the plan's `raw` is the
    inlined definition (the run keeps the one it was started with)."""
    definition, problems = _expanded(definition)
    checker = _Checker(definition)
    checker.check()
    if problems or checker.problems:
        raise DefinitionError(problems + checker.problems)
    signals = {s["name"]: s for s in definition.get("signals", []) if isinstance(s, dict)}
    return Plan(
        nodes=checker.nodes,
        scopes=checker.scopes,
        input_schema=definition.get("input_schema"),
        variables=dict(definition.get("variables") or {}),
        output=definition.get("output"),
        signals=signals,
        raw=definition,
        raw_edges=checker.explicit,
    )


def definition_hash(definition: dict) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# Each cache entry keeps its text and plan alive: 256 entries of a definition as large as a 10 MB
# request body (a dry run each) would hold gigabytes, so only ordinary-sized ones are cached.
PLAN_CACHE_MAX_TEXT = 256 * 1024


@lru_cache(maxsize=256)
def _compile_cached(digest: str, text: str) -> Plan:
    return _build(json.loads(text))


def compile_definition(definition: dict) -> Plan:
    """Compile a valid definition into a Plan (cached by content); raises DefinitionError."""
    checker = _Checker(definition)
    if isinstance(definition, dict) and checker.unstorable():  # json.dumps below would recurse into it
        raise DefinitionError(checker.problems)
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    if len(text) > PLAN_CACHE_MAX_TEXT:
        return _build(json.loads(text))
    return _compile_cached(hashlib.sha256(text.encode()).hexdigest(), text)
