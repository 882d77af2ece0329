"""Every definition example in docs/definition.md (fenced as ```json definition) is valid."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from apps.workflows.definition.validator import validate

DOC = Path(__file__).resolve().parents[2] / "docs" / "definition.md"
BLOCK = re.compile(r"^```json definition\n(.*?)^```", re.S | re.M)


def _examples() -> list[tuple[int, str]]:
    text = DOC.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def test_the_doc_has_definition_examples():
    assert len(_examples()) >= 8


@pytest.mark.parametrize("line, source", _examples(), ids=lambda v: f"line{v}" if isinstance(v, int) else "")
def test_definition_example_is_valid(line, source):
    definition = json.loads(source)
    problems = validate(definition)
    assert problems == [], f"docs/definition.md line {line}: " + "; ".join(map(str, problems))


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
    assert {"activity", "condition", "parallel", "loop", "timer"} <= shown
