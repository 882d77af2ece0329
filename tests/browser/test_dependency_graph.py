"""A dynamic run's dependency graph colours itself live in a real browser, and a click on an item
shows its step and logs."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from apps.workflows.services import create_workflow

from .conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture
def alice_user(server):
    return User.objects.create_user("alice", "alice@example.com", "alice-password-1")


def test_a_dynamic_runs_graph_colours_itself_and_opens_an_items_step(new_page, alice_user):
    items = [{"id": "a"}, {"id": "b"}, {"id": "c", "depends_on": ["a"]}, {"id": "d", "depends_on": ["a", "b"]}, {"id": "e", "depends_on": ["c", "d"]}]
    workflow = create_workflow(
        owner=alice_user, name="Live deps",
        definition={"format_version": 1, "nodes": [
            {"id": "warmup", "type": "activity", "activity": "delay", "params": {"seconds": 0.5}},
            {"id": "build", "type": "dynamic", "items": items, "max_concurrent": 2, "activity": "delay", "params": {"seconds": 0.4}},
        ], "edges": [{"from": "warmup", "to": "build"}]},
    )
    page = new_page()
    log_in(page, "alice", "alice-password-1")
    page.goto(f"/workflows/{workflow.pk}/run/")
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url(re.compile(r".*/executions/\d+/$"))
    page.evaluate("window.__sameDocument = true")
    card = page.locator(".dep-card[data-dynamic-node='build']")
    expect(card).to_contain_text("Dependency graph of build")
    # Items appear once the node starts, and go through running to completed without a reload.
    expect(card.locator(".item[data-item='e']")).to_have_class(re.compile(r"status-(queued|ready|running)"), timeout=20_000)
    expect(card.locator(".item[data-item='e']")).to_have_class(re.compile(r"status-completed"), timeout=20_000)
    expect(card.locator(".item.status-completed")).to_have_count(5)
    expect(card.locator("[data-count='completed'] .n")).to_have_text("5")
    expect(card.locator(".item.critical")).not_to_have_count(0)
    assert page.evaluate("window.__sameDocument") is True
    screenshot(page, "dependency-graph")

    card.locator(".item[data-item='d']").click()
    expect(page.locator("#log-viewer")).to_contain_text("build:item")
