"""AI assistance: capabilities for agents, and turning plain language into a definition.

Every definition a model proposes goes through the validator before anyone sees it;
when it has problems they are sent back to the model for a fix (AI_REPAIR_ATTEMPTS
times), and a definition still invalid after that is rejected with the problems.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from apps.workflows.definition import expressions, mapping, schema
from apps.workflows.definition.registry import all_activities
from apps.workflows.definition.validator import REFERENCE_ROOTS, Problem, validate

from . import ai_usage, llm
from .choices import AIPurpose


def capabilities() -> dict:
    """Everything an agent needs to write a definition: node types, activities, operators."""
    return {
        "format_version": schema.FORMAT_VERSION,
        "node_types": [
            {"type": name, "description": node_schema.get("description", ""), "schema": node_schema}
            for name, node_schema in schema.NODE_SCHEMAS.items()
        ],
        "activities": [
            {
                "name": spec.name,
                "description": spec.description,
                "params_schema": spec.params_schema,
                "local": spec.local,
                "external": spec.external,
            }
            for spec in all_activities()
        ],
        "condition_operators": list(expressions.OPERATORS),
        "condition_schema": {k: v for k, v in schema.CONDITION.items() if k != "$id"},
        "reference_roots": sorted(f"$.{root}" for root in REFERENCE_ROOTS),
        "mapping_functions": mapping.function_catalogue(),
        "retry_schema": schema.RETRY,
        "definition_schema_url": "/api/v1/schema/workflow-definition.json",
    }


SYSTEM_PROMPT = """You design workflows for Workflow Builder. Answer with ONE JSON object and nothing else:
{"definition": <a workflow definition>, "explanation": "<what it does, in two or three sentences>",
 "confidence": <0..1>}

A definition is {"format_version": 1, "input_schema"?: <JSON Schema>, "variables"?: {...}, "nodes": [...],
"edges": [{"from": id, "to": id}]}.
Nodes have a unique "id" and a "type". Data is referenced with JSONPath strings: $.input.x, $.vars.x,
$.steps.<node id>.output.x, and "{{ $.path }}" templates inside longer strings. Conditions are data:
{"var": "order.total", "op": "gt", "value": 100} with all/any/not. Never write code.
Use only these node types, activities and operators (JSON Schemas included):
"""


def _prompt(base: dict | None) -> str:
    caps = capabilities()
    compact = {
        "node_types": {n["type"]: n["schema"]["properties"] for n in caps["node_types"]},
        "activities": {
            a["name"]: {"description": a["description"], "params": a["params_schema"]} for a in caps["activities"]
        },
        "condition_operators": caps["condition_operators"],
        "reference_roots": caps["reference_roots"],
        "mapping_functions": [f["signature"] for f in caps["mapping_functions"]],
    }
    text = SYSTEM_PROMPT + json.dumps(compact, separators=(",", ":"))
    if base is not None:
        text += "\nChange this existing definition as asked and return the whole new definition:\n" + json.dumps(base)
    return text


@dataclass
class Interpretation:
    definition: Any
    explanation: str
    confidence: float | None
    model: str
    attempts: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems


def _read_answer(content: str) -> tuple[Any, str, float | None, list[Problem]]:
    try:
        answer = llm.parse_json(content)
    except ValueError as exc:
        return None, "", None, [Problem(message=str(exc), code="not_json")]
    if not isinstance(answer, dict):
        return None, "", None, [Problem(message="the model's answer is not a JSON object", code="not_json")]
    definition = answer.get("definition", answer if "nodes" in answer else None)
    if definition is None:
        return None, "", None, [Problem(message="the model's answer has no definition", code="no_definition")]
    explanation = given if isinstance(given := answer.get("explanation"), str) else ""
    confidence = answer.get("confidence")
    if not isinstance(confidence, (int, float)) or isinstance(confidence, bool):
        confidence = None
    else:
        confidence = max(0.0, min(1.0, float(confidence)))
    return definition, explanation, confidence, validate(definition)


def interpret(request: str, *, base: dict | None = None, user: Any = None) -> Interpretation:
    """Ask the provider for a definition, spending `user`'s AI budget on every round.

    Raises llm.NotConfigured / llm.ProviderError / ai_usage.BudgetExceeded.

    The result's `problems` is empty only when the definition passed the validator.
    """
    messages = [{"role": "system", "content": _prompt(base)}, {"role": "user", "content": request}]
    repairs = max(0, int(getattr(settings, "AI_REPAIR_ATTEMPTS", 1)))
    attempt = 0
    while True:
        attempt += 1
        answer = ai_usage.complete(messages, user=user, purpose=AIPurpose.INTERPRET, temperature=0)
        definition, explanation, confidence, problems = _read_answer(answer["content"])
        result = Interpretation(definition, explanation, confidence, answer["model"], attempt, problems)
        if result.valid or attempt > repairs:
            return result
        messages += [
            {"role": "assistant", "content": answer["content"]},
            {
                "role": "user",
                "content": "That definition has problems; fix them and answer with the whole JSON object again:\n"
                + "\n".join(f"- {p}" for p in problems),
            },
        ]
