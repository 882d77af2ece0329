"""Every definition example in the docs (fenced as ```json definition) is valid."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from apps.workflows.definition.validator import validate

DOCS = Path(__file__).resolve().parents[2] / "docs"
DOC_FILES = ("definition.md", "orchestration.md")
BLOCK = re.compile(r"^```json definition\n(.*?)^```", re.S | re.M)


def _examples() -> list[tuple[str, str]]:
    found = []
    for name in DOC_FILES:
        text = (DOCS / name).read_text(encoding="utf-8")
        found += [(f"{name}:{text.count(chr(10), 0, m.start()) + 1}", m.group(1)) for m in BLOCK.finditer(text)]
    return found


def test_the_doc_has_definition_examples():
    assert len(_examples()) >= 8


@pytest.mark.parametrize("where, source", _examples(), ids=[w for w, _ in _examples()])
def test_definition_example_is_valid(where, source):
    definition = json.loads(source)
    problems = validate(definition)
    assert problems == [], f"docs/{where}: " + "; ".join(map(str, problems))


def test_every_node_type_is_shown():
    shown = set()
    for _, source in _examples():
        def walk(nodes):
            for node in nodes:
                shown.add(node["type"])
                for branch in node.get("branches", []):
                    walk(branch["nodes"])
                if isinstance(node.get("body"), dict):
                    walk(node["body"]["nodes"])
        walk(json.loads(source)["nodes"])
    assert {"activity", "condition", "parallel", "loop", "timer", "dynamic", "child_workflow", "await_child", "signal_wait", "approval"} <= shown


def test_the_transform_example_reads_its_mapping_relative_to_source():
    """docs/definition.md's transform example, run as the engine runs it (source resolved first)."""
    from apps.executions.activities import ActivityContext
    from apps.executions.activities.builtin import transform

    text = (DOCS / "definition.md").read_text(encoding="utf-8")
    example = next(json.loads(m.group(1)) for m in BLOCK.finditer(text) if '"transform"' in m.group(1))
    node = example["nodes"][0]
    assert node["params"]["source"] == "$.vars"
    params = {**node["params"], "source": example["variables"]}
    output = transform(params, ActivityContext(execution_id=0, step_id=0, node_id=node["id"], attempt=1))
    assert output == {"order_id": 7, "customer": "ACME", "region": "EU"}


# The error types a run can fail with that people write `on_error` handlers and conditions against.
ENGINE_ERROR_TYPES = (
    "StepTimeout", "ReferenceError", "ConditionError", "TimerError", "LoopError", "LoopLimitExceeded", "BranchFailed",
    "UnknownActivity", "WorkerLost", "MappingError", "ExpressionError", "OutputNotStorable", "EngineError",
    "ChildWorkflowFailed", "ChildWorkflowCancelled", "ChildWorkflowNotFound", "ChildWorkflowNotPermitted", "ChildWorkflowVersionNotFound", "ChildWorkflowInvalid", "ChildWorkflowTooDeep",
    "InputError", "ItemFailed", "DependencyCycle", "DynamicError", "SignalTimeout", "ApprovalExpired",
)


@pytest.mark.parametrize("error_type", ENGINE_ERROR_TYPES)
def test_every_engine_error_type_is_documented(error_type):
    source = "\n".join(
        path.read_text(encoding="utf-8") for path in (Path(__file__).resolve().parents[2] / "apps/executions/engine").rglob("*.py")
    )
    assert f'"{error_type}"' in source, f"{error_type} is no longer raised by the engine: drop it here and from the docs"
    docs = (DOCS / "definition.md").read_text(encoding="utf-8")
    assert f"`{error_type}`" in docs, f"docs/definition.md (Errors) does not name the error type {error_type}"
