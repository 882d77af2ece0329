"""The JSON Schema of a workflow definition, format_version 1.

`DEFINITION_SCHEMA` is published at /api/v1/schema/workflow-definition.json and in
docs/definition.md. The validator checks each node against `NODE_SCHEMAS[type]`
on its own so that every message can name the node and the field.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

FORMAT_VERSION = 1
ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$"

_ref = {"type": "string", "minLength": 2, "description": "A JSONPath into run data, e.g. $.input.orders"}

CONDITION = {
    "$id": "#condition",
    "type": "object",
    "description": "A declarative condition: a comparison, or all/any/not of conditions.",
    "oneOf": [
        {
            "type": "object",
            "properties": {
                "var": {
                    "type": "string",
                    "minLength": 1,
                    "description": "JSONPath ($.input.x) or a path under $.vars (order.total)",
                },
                "op": {"enum": ["eq", "neq", "gt", "gte", "lt", "lte", "in", "contains", "exists", "matches"]},
                "value": {},
                "value_from": _ref,
            },
            "required": ["var", "op"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"all": {"type": "array", "items": {"$ref": "#/$defs/condition"}, "minItems": 1}},
            "required": ["all"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"any": {"type": "array", "items": {"$ref": "#/$defs/condition"}, "minItems": 1}},
            "required": ["any"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"not": {"$ref": "#/$defs/condition"}},
            "required": ["not"],
            "additionalProperties": False,
        },
    ],
}

RETRY = {
    "type": "object",
    "description": "How a failed attempt is retried.",
    "properties": {
        "max_attempts": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "description": "Attempts in all, the first included.",
        },
        "backoff": {"enum": ["fixed", "exponential"]},
        "interval": {
            "type": "number",
            "minimum": 0,
            "maximum": 86400,
            "description": "Seconds before the first retry.",
        },
        "multiplier": {"type": "number", "minimum": 1, "maximum": 10},
        "max_interval": {"type": "number", "minimum": 0, "maximum": 86400},
        "non_retryable": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Error types that fail at once.",
        },
    },
    "additionalProperties": False,
}

SUBGRAPH = {
    "type": "object",
    "description": "A nested graph: the body of a loop or one branch of a parallel node.",
    "properties": {
        "nodes": {"type": "array", "items": {"$ref": "#/$defs/node"}, "minItems": 1},
        "edges": {"type": "array", "items": {"$ref": "#/$defs/edge"}},
        "result": {
            "type": "string",
            "description": "What the body yields: a JSONPath (default: the output of its last node).",
        },
    },
    "required": ["nodes"],
    "additionalProperties": False,
}

_common = {
    "id": {"type": "string", "pattern": ID_PATTERN},
    "type": {"type": "string"},
    "name": {"type": "string", "maxLength": 200},
    "description": {"type": "string", "maxLength": 2000},
    "on_error": {
        "type": "string",
        "pattern": ID_PATTERN,
        "description": "Node to run when this one fails for good; it sees $.error.",
    },
    "output": {
        "type": "string",
        "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$",
        "description": "Variable that receives the node's output.",
    },
    "timeout": {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 604800,
        "description": "Seconds an attempt may run.",
    },
    "retry": RETRY,
    "output_map": {
        "type": "object",
        "description": 'Variables set from the node\'s output: name -> "@.path", {path, default} or {fn, args} '
        "(see docs/connectors.md, mapping).",
    },
    "ui": {"type": "object", "description": "Editor hints (position); ignored by the engine."},
}


def _node(type_: str, properties: dict, required: list[str], description: str) -> dict:
    props = {**deepcopy(_common), **properties}
    props["type"] = {"const": type_}
    return {
        "type": "object",
        "description": description,
        "properties": props,
        "required": ["id", "type", *required],
        "additionalProperties": False,
    }


NODE_SCHEMAS: dict[str, dict] = {
    "activity": _node(
        "activity",
        {
            "activity": {
                "type": "string",
                "minLength": 1,
                "description": "A registered activity type, e.g. http.request.",
            },
            "params": {"type": "object", "description": "Parameters; strings may hold $.paths and {{ templates }}."},
        },
        ["activity"],
        "Run a registered activity.",
    ),
    "condition": _node(
        "condition",
        {
            "cases": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "when": {"$ref": "#/$defs/condition"},
                        "to": {"type": "string", "pattern": ID_PATTERN},
                        "label": {"type": "string"},
                    },
                    "required": ["when", "to"],
                    "additionalProperties": False,
                },
            },
            "default": {"type": "string", "pattern": ID_PATTERN, "description": "Node taken when no case holds."},
        },
        ["cases"],
        "Exclusive choice: the first case that holds decides the next node.",
    ),
    "parallel": _node(
        "parallel",
        {
            "branches": {"type": "array", "items": SUBGRAPH, "minItems": 1, "maxItems": 1000},
            "join": {
                "description": 'all (default), any, or {"count": N}: '
                "how many branches must succeed; the rest are cancelled.",
                "oneOf": [
                    {"enum": ["all", "any"]},
                    {
                        "type": "object",
                        "properties": {"count": {"type": "integer", "minimum": 1}},
                        "required": ["count"],
                        "additionalProperties": False,
                    },
                ],
            },
        },
        ["branches"],
        "Run branches at the same time and join them.",
    ),
    "loop": _node(
        "loop",
        {
            "mode": {"enum": ["for_each", "while", "until"]},
            "items": {"description": "for_each: a JSONPath to a list, or a literal list."},
            "concurrency": {
                "type": "integer",
                "minimum": 1,
                "maximum": 1000,
                "description": "for_each: iterations in flight at once (default 1).",
            },
            "complete_when": {
                "description": 'for_each: all (default), first, or {"count": N}; the rest are cancelled.',
                "oneOf": [
                    {"enum": ["all", "first"]},
                    {
                        "type": "object",
                        "properties": {"count": {"type": "integer", "minimum": 1}},
                        "required": ["count"],
                        "additionalProperties": False,
                    },
                ],
            },
            "aggregate": {
                "enum": ["list", "count", "sum"],
                "description": "How iteration results are combined (default list).",
            },
            "condition": {"$ref": "#/$defs/condition"},
            "max_iterations": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
            "long_running": {
                "type": "boolean",
                "description": "Continue as a new run every `continue_every` iterations.",
            },
            "continue_every": {"type": "integer", "minimum": 1, "maximum": 100_000},
            "body": SUBGRAPH,
        },
        ["mode", "body"],
        "Repeat a body: for each item of a list, or while/until a condition holds.",
    ),
    "timer": _node(
        "timer",
        {
            "duration": {"type": ["number", "string"], "description": "Seconds to wait (or a $.path to them)."},
            "until": {"type": "string", "description": "An ISO 8601 time (or a $.path to one)."},
        },
        [],
        "Wait for a duration or until a time.",
    ),
}

NODE_SCHEMAS["dynamic"] = _node(
    "dynamic",
    {
        "items": {"description": "The items: a $.path to a list, or a literal list of objects."},
        "id_key": {"type": "string", "description": "The item field that names it (default id)."},
        "depends_on_key": {
            "type": "string",
            "description": "The item field listing the ids it needs first (default depends_on).",
        },
        "duration_key": {
            "type": "string",
            "description": "The item field with its expected seconds, for the critical path and ETA (default "
            "duration).",
        },
        "max_concurrent": {
            "type": "integer",
            "minimum": 1,
            "maximum": 64,
            "description": "Items in flight at once (default 4).",
        },
        "fail_fast": {
            "type": "boolean",
            "description": "Cancel everything at the first failure (default false: dependents of a failure are "
            "blocked, the rest still runs).",
        },
        "activity": {"type": "string", "minLength": 1, "description": "Each item runs this activity ..."},
        "params": {"type": "object", "description": "... with these params ($.item is the item)."},
        "workflow": {
            "type": "string",
            "minLength": 1,
            "description": "... or a child run of the workflow with this slug.",
        },
        "input": {"description": "The child run's input ($.item is the item)."},
        "version": {
            "anyOf": [{"type": "integer", "minimum": 1}, {"enum": ["latest", "pinned"]}],
            "description": "Which version of the child workflow runs: a version number (as in its history), "
            "latest (default: its current definition) or pinned (the version that was current "
            "when this run started).",
        },
        "queue": {
            "type": "string",
            "pattern": "^[A-Za-z0-9_.:-]{1,100}$",
            "description": "Run the child's steps on this Celery queue (a worker started with -Q <queue> serves it).",
        },
    },
    ["items"],
    "Dependency-aware fan-out: every item starts as soon as its dependencies are done, with max_concurrent in flight.",
)

NODE_SCHEMAS["child_workflow"] = _node(
    "child_workflow",
    {
        "workflow": {"type": "string", "minLength": 1, "description": "The slug of the workflow to run."},
        "input": {"description": "The child run's input (references and templates allowed)."},
        "mode": {
            "enum": ["execute", "start"],
            "description": "execute (default): wait for its result; start: continue at once with a handle, await "
            "it later.",
        },
        "version": {
            "anyOf": [{"type": "integer", "minimum": 1}, {"enum": ["latest", "pinned"]}],
            "description": "Which version of the child workflow runs: a version number (as in its history), "
            "latest (default: its current definition) or pinned (the version that was current "
            "when this run started).",
        },
        "queue": {
            "type": "string",
            "pattern": "^[A-Za-z0-9_.:-]{1,100}$",
            "description": "Run the child's steps on this Celery queue (a worker started with -Q <queue> serves it).",
        },
    },
    ["workflow"],
    "Run another workflow as a child of this run.",
)

NODE_SCHEMAS["await_child"] = _node(
    "await_child",
    {
        "child": {
            "type": "string",
            "pattern": ID_PATTERN,
            "description": "The child_workflow node (mode start) whose run to wait for.",
        }
    },
    ["child"],
    "Wait for a child run started earlier with mode start; its output becomes this node's output.",
)

NODE_SCHEMAS["signal_wait"] = _node(
    "signal_wait",
    {
        "signal": {"type": "string", "minLength": 1, "description": "The declared signal to wait for."},
        "timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 31_536_000,
            "description": "Seconds to wait at most.",
        },
        "timeout_to": {
            "type": "string",
            "pattern": ID_PATTERN,
            "description": "Node taken when the wait times out (without it, a timeout fails the node).",
        },
    },
    ["signal"],
    "Block until a named signal arrives (its payload is the node's output) or a timeout takes another path.",
)

NODE_SCHEMAS["approval"] = _node(
    "approval",
    {
        "title": {
            "type": "string",
            "minLength": 1,
            "maxLength": 300,
            "description": "Shown in the inbox; templates allowed.",
        },
        "description": {"type": "string", "maxLength": 10_000},
        "assignees": {
            "type": "object",
            "properties": {
                "users": {"type": "array", "items": {"type": "string"}},
                "groups": {"type": "array", "items": {"type": "string"}},
            },
            "additionalProperties": False,
        },
        "outcomes": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "minItems": 1,
            "uniqueItems": True,
            "description": "The decisions offered (default approve, reject).",
        },
        "routes": {
            "type": "object",
            "additionalProperties": {"type": "string", "pattern": ID_PATTERN},
            "description": "decision -> next node; without a route a decision follows the ordinary edges.",
        },
        "due_in": {"type": "number", "exclusiveMinimum": 0, "description": "Seconds until the work item expires."},
        "timeout_to": {
            "type": "string",
            "pattern": ID_PATTERN,
            "description": "Node taken when the work item expires (without it, expiry fails the node).",
        },
        "allocation": {
            "type": "object",
            "description": "Who among the assignees gets the item. Without it the item is offered to the users "
            "and teams as listed.",
            "properties": {
                "strategy": {
                    "enum": ["offer_all", "round_robin", "shortest_queue", "random"],
                    "description": "offer_all: every eligible person; round_robin: the next eligible person in "
                    "turn; shortest_queue: the one with the fewest open items; random: any one "
                    "eligible person.",
                },
                "capabilities": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1, "maxLength": 50},
                    "uniqueItems": True,
                    "description": "Only people with all these capabilities (tags on their work profile).",
                },
                "max_open_items": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Skip people who already have this many open items.",
                },
                "claim_timeout": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "description": "Seconds a person may hold the item undecided before it is taken back and "
                    "re-offered.",
                },
            },
            "additionalProperties": False,
        },
    },
    ["title"],
    "A human task offered to users and groups; the decision resumes the run.",
)

NODE_SCHEMAS["subflow"] = _node(
    "subflow",
    {
        "subflow": {
            "type": "string",
            "pattern": r"^[a-z0-9][a-z0-9\-_]{0,99}$",
            "description": "The shared sub-graph's slug.",
        },
        "version": {
            "type": "integer",
            "minimum": 1,
            "description": "The version to inline (versions never change; publish a new one and bump this).",
        },
        "with": {
            "type": "object",
            "description": "Variables set before the sub-graph runs: name -> value (values may use $.paths).",
        },
    },
    ["subflow", "version"],
    "Inline the steps of a shared, versioned sub-graph here: they run in this run, ids prefixed '<node id>__'.",
)

NODE_TYPES = tuple(NODE_SCHEMAS)

SIGNAL = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$"},
        "schema": {"type": "object", "description": "JSON Schema the payload must satisfy."},
        "handler": {
            "type": "object",
            "description": "Runs whenever the signal arrives, without blocking: "
            '{"set": {variable: value or $.signal.payload...}}.',
            "properties": {"set": {"type": "object"}},
            "additionalProperties": False,
        },
        "description": {"type": "string"},
    },
    "required": ["name"],
    "additionalProperties": False,
}
RESERVED_SIGNALS = ("pause", "resume", "cancel")

EDGE = {
    "type": "object",
    "properties": {
        "from": {"type": "string", "pattern": ID_PATTERN},
        "to": {"type": "string", "pattern": ID_PATTERN},
        "label": {"type": "string", "maxLength": 200},
    },
    "required": ["from", "to"],
    "additionalProperties": False,
}

DOCUMENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "format_version": {"const": FORMAT_VERSION},
        "input_schema": {"type": "object", "description": "JSON Schema the run input must satisfy."},
        "variables": {"type": "object", "description": "Initial variables ($.vars)."},
        "output": {"description": "What the run returns: a JSONPath or an object of them (default: all variables)."},
        "nodes": {"type": "array", "items": {"type": "object"}, "minItems": 1},
        "edges": {"type": "array", "items": EDGE},
        "signals": {
            "type": "array",
            "items": SIGNAL,
            "description": "Signals the run accepts (pause, resume and cancel are built in).",
        },
    },
    "required": ["format_version", "nodes"],
    "additionalProperties": True,
}


def published_schema() -> dict:
    """The whole definition schema as one JSON Schema document (draft 2020-12)."""
    node_any = {
        "type": "object",
        "required": ["id", "type"],
        "properties": {"type": {"enum": list(NODE_TYPES)}},
        "allOf": [{"if": {"properties": {"type": {"const": t}}}, "then": {"$ref": f"#/$defs/{t}"}} for t in NODE_TYPES],
    }
    defs = {t: deepcopy(s) for t, s in NODE_SCHEMAS.items()}
    condition = deepcopy(CONDITION)
    condition.pop("$id")
    doc = deepcopy(DOCUMENT)
    doc["properties"]["nodes"] = {"type": "array", "items": {"$ref": "#/$defs/node"}, "minItems": 1}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "/api/v1/schema/workflow-definition.json",
        "title": "Workflow Builder definition, format_version 1",
        **doc,
        "$defs": {"node": node_any, "edge": EDGE, "condition": condition, **defs},
    }


def register_node_type(type_: str, properties: dict, required: list[str], description: str) -> None:
    """Later features (dynamic, child_workflow, signal_wait, approval) add node types here."""
    global NODE_TYPES
    NODE_SCHEMAS[type_] = _node(type_, properties, required, description)
    NODE_TYPES = tuple(NODE_SCHEMAS)
