"""Every built-in template (examples/templates/*.json) is seeded, instantiates and runs to
completion on its sample input with the real worker."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.executions.engine.orchestrator import start_execution
from apps.templates.models import WorkflowTemplate
from apps.templates.seeding import read_templates
from apps.templates.services import instantiate_template
from tests.conftest import ROOT

from .conftest import wait_for

TEMPLATE_FILES = sorted((ROOT / "examples" / "templates").glob("*.json"))


def test_there_are_at_least_twelve_built_in_templates_in_every_category():
    specs = read_templates(ROOT / "examples" / "templates")
    assert len(specs) >= 12
    assert {s["category"] for s in specs} == {"data_processing", "api_orchestration", "devops", "approvals", "custom"}


@pytest.mark.django_db
def test_seed_examples_loads_them_public_and_idempotently(admin_user):
    call_command("seed_examples", stdout=StringIO())
    assert WorkflowTemplate.objects.filter(is_public=True, owner=admin_user).count() == len(TEMPLATE_FILES)
    out = StringIO()
    call_command("seed_examples", stdout=out)
    assert f"{len(TEMPLATE_FILES)} unchanged" in out.getvalue()
    # Template files are not loaded as workflows too.
    from apps.workflows.models import Workflow

    assert not Workflow.objects.filter(slug__in=[json.loads(p.read_text())["slug"] for p in TEMPLATE_FILES]).exists()


@pytest.mark.worker
@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=[p.stem for p in TEMPLATE_FILES])
def test_built_in_template_runs_to_completion(worker, alice, admin_user, path: Path):
    call_command("seed_examples", stdout=StringIO())
    spec = json.loads(path.read_text())
    template = WorkflowTemplate.objects.get(slug=spec["slug"])
    workflow = instantiate_template(template, user=alice)
    execution = wait_for(start_execution(workflow, template.sample_input, acting_user=alice), timeout=60)
    assert execution.status == "completed", (execution.status, execution.error)
