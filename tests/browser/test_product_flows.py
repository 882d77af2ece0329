"""Templates and work distribution in a real browser: use a template, rate and review it, see the
rating in the library sorted by it, restore an old version from the history page; a reviewer sees
why an approval reached them, declines it, and sets their availability."""

from __future__ import annotations

import copy
import re

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from apps.executions.engine.orchestrator import start_execution
from apps.templates.models import TemplateReview, WorkflowTemplate
from apps.templates.services import create_template, update_template
from apps.sharing.services import share_workflow
from apps.workflows.services import create_workflow
from apps.worklist.models import WorkerProfile, WorkItem
from tests.helpers import wait_until

from .conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

DEFINITION = {
    "format_version": 1,
    "nodes": [{"id": "greet", "type": "activity", "activity": "log", "params": {"message": "hi"}}],
}


def test_use_rate_sort_and_restore_a_template(new_page, server):
    alice = User.objects.create_user("alice", "alice@example.com", "alice-password-1")
    User.objects.create_user("bob", "bob@example.com", "bob-password-1")
    template = create_template(owner=alice, name="Greeter", definition=DEFINITION, is_public=True, description="Says hi")
    changed = copy.deepcopy(DEFINITION)
    changed["nodes"][0]["params"]["message"] = "hello there"
    update_template(template, acting_user=alice, definition=changed)
    create_template(owner=alice, name="Another", definition=DEFINITION, is_public=True)

    page = new_page()
    log_in(page, "bob", "bob-password-1")
    page.goto(f"/templates/{template.pk}/")
    expect(page.get_by_text("People who made a workflow from this template can rate and review it.")).to_be_visible()
    page.get_by_role("button", name="Use template").click()
    page.wait_for_url(re.compile(r".*/workflows/\d+/.*"))
    page.goto(f"/templates/{template.pk}/")
    page.get_by_label("Stars").select_option("5")
    page.get_by_label("Short review").fill("Saved me an hour.")
    page.get_by_role("button", name="Save review").click()
    expect(page.locator("#reviews")).to_contain_text("Saved me an hour.")
    expect(page.locator(".collab-stats")).to_contain_text("5.0 ★ from 1 review")
    assert TemplateReview.objects.get().rating == 5

    page.goto("/templates/?view=list")
    page.get_by_label("Sort by").select_option("rating")
    expect(page.locator("#template-results li").first).to_contain_text("Greeter")
    expect(page.locator("#template-results li").first).to_contain_text("5.0 ★ (1 review)")
    screenshot(page, "templates-sorted-by-rating")

    page = new_page()
    log_in(page, "alice", "alice-password-1")
    page.goto(f"/templates/{template.pk}/")
    page.get_by_role("link", name="Version history").click()
    expect(page.locator(".collab-diff")).to_contain_text("params.message")
    page.get_by_role("button", name="Restore version 1").click()
    expect(page.locator("table")).to_contain_text("Restored version 1")
    assert WorkflowTemplate.objects.get(pk=template.pk).definition == DEFINITION
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_a_reviewer_sees_why_declines_and_sets_availability(new_page, server):
    alice = User.objects.create_user("alice", "alice@example.com", "alice-password-1")
    team = Group.objects.create(name="reviewers")
    for name in ("carol", "dave"):
        User.objects.create_user(name, f"{name}@example.com", f"{name}-password-1").groups.add(team)
    definition = {
        "format_version": 1,
        "nodes": [{"id": "review", "type": "approval", "title": "Approve order 7", "assignees": {"groups": ["reviewers"]}, "allocation": {"strategy": "round_robin"}}],
    }
    workflow = create_workflow(owner=alice, name="Orders", definition=definition)
    share_workflow(workflow, team, "view", acting_user=alice)  # work is offered to people who may view it
    execution = start_execution(workflow, {})
    item = wait_until(lambda: WorkItem.objects.filter(execution=execution).first(), message="the work item")

    page = new_page()
    log_in(page, "carol", "carol-password-1")
    page.goto("/inbox/")
    card = page.locator(f"#item-{item.pk}")
    expect(card).to_contain_text("Why you: round robin: first in turn among 2 eligible (team reviewers)")
    screenshot(page, "inbox-why")
    card.get_by_role("button", name="Decline").click()
    wait_until(lambda: [u.username for u in WorkItem.objects.get(pk=item.pk).offered_users.all()] == ["dave"], message="the re-offer to dave")

    page.get_by_label("Available for new work items").uncheck()
    page.get_by_label("At most this many open items").fill("0")
    page.get_by_role("button", name="Save availability").click()
    expect(page.locator("#max-open-error")).to_contain_text("at least 1")
    page.get_by_label("At most this many open items").fill("3")
    page.get_by_role("button", name="Save availability").click()
    expect(page.get_by_text("Your availability is saved.")).to_be_visible()
    profile = WorkerProfile.objects.get(user__username="carol")
    assert profile.available is False and profile.max_open_items == 3

    page = new_page()
    log_in(page, "dave", "dave-password-1")
    page.goto("/inbox/")
    expect(page.locator(f"#item-{item.pk}")).to_contain_text("Why you: re-offered after carol: round robin: next after carol")
