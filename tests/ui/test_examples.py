"""Every shipped example and template definition renders on every builder page and node form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.urls import reverse

from apps.workflows.definition.graph import iter_nodes
from apps.workflows.services import create_workflow

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def shared_subflows(alice):
    """The examples' shared subflows (examples/subflows/), as seed_examples loads them first."""
    from apps.workflows.seeding import seed_subflows

    seed_subflows(Path(__file__).resolve().parents[2] / "examples" / "subflows", owner=alice)



def _definition(path: Path) -> dict | None:
    data = json.loads(path.read_text())
    definition = data.get("definition", data) if isinstance(data, dict) else None
    return definition if isinstance(definition, dict) and isinstance(definition.get("nodes"), list) else None


# Workflow definitions only (inputs such as packages.json are left out).
EXAMPLES = sorted(p for p in (Path(__file__).resolve().parents[2] / "examples").rglob("*.json") if _definition(p) is not None)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_builder_pages_render_it(path, alice, as_alice):
    definition = _definition(path)
    assert definition is not None
    workflow = create_workflow(owner=alice, name=path.stem, definition=definition)
    for name in ("workflows:detail", "workflows:edit", "workflows:json", "workflows:run"):
        assert as_alice.get(reverse(name, args=[workflow.pk])).status_code == 200, name
    for node, _parent, _where in iter_nodes(definition["nodes"]):
        response = as_alice.get(reverse("workflows:node", args=[workflow.pk, node["id"]]))
        assert response.status_code == 200, node["id"]


SEEDED = sorted(p for p in (Path(__file__).resolve().parents[2] / "examples").glob("**/*.json") if "templates" not in p.parts and _definition(p) is not None)


@pytest.mark.parametrize("path", SEEDED, ids=lambda p: p.stem)
def test_the_run_dialog_of_each_seeded_example_is_filled_in_so_start_run_just_works(path, alice, as_alice):
    from apps.executions.models import Execution
    from apps.workflows.forms import RunForm

    definition = _definition(path)
    workflow = create_workflow(owner=alice, name=path.stem, definition=definition)
    form = RunForm(input_schema=definition.get("input_schema"))
    data = {name: field.initial for name, field in form.fields.items() if field.initial not in (None, "")}
    response = as_alice.post(reverse("workflows:run", args=[workflow.pk]), data)
    assert response.status_code == 302, response.content.decode()[-1500:]
    assert Execution.objects.filter(workflow=workflow).exists()
