"""Every page and fragment checks who is asking: charlie (a stranger) gets 404 everywhere, anonymous
users are sent to the login page, and bob (may view) cannot change anything."""

from __future__ import annotations

import pytest
from django.urls import reverse

from .conftest import client_for

pytestmark = pytest.mark.django_db


def _urls(workflow, run):
    step = run.steps.first()
    return [
        ("get", reverse("workflows:detail", args=[workflow.pk])),
        ("get", reverse("workflows:graph", args=[workflow.pk])),
        ("get", reverse("workflows:edit", args=[workflow.pk])),
        ("post", reverse("workflows:settings", args=[workflow.pk])),
        ("get", reverse("workflows:json", args=[workflow.pk])),
        ("post", reverse("workflows:json", args=[workflow.pk])),
        ("get", reverse("workflows:run", args=[workflow.pk])),
        ("post", reverse("workflows:run", args=[workflow.pk])),
        ("post", reverse("workflows:node-add", args=[workflow.pk])),
        ("get", reverse("workflows:node", args=[workflow.pk, "greet"])),
        ("post", reverse("workflows:node", args=[workflow.pk, "greet"])),
        ("post", reverse("workflows:node-delete", args=[workflow.pk, "greet"])),
        ("post", reverse("workflows:edge-add", args=[workflow.pk])),
        ("post", reverse("workflows:edge-delete", args=[workflow.pk])),
        ("get", reverse("executions:detail", args=[run.pk])),
        ("get", reverse("executions:live", args=[run.pk]) + "?after=0"),
        ("get", reverse("executions:step", args=[run.pk, step.pk])),
        ("post", reverse("executions:cancel", args=[run.pk])),
        ("post", reverse("executions:retry", args=[run.pk])),
        ("post", reverse("executions:pin", args=[run.pk])),
        ("post", reverse("executions:pause", args=[run.pk])),
        ("post", reverse("executions:signal", args=[run.pk])),
        ("post", reverse("executions:retry-failed", args=[run.pk])),
        ("get", reverse("executions:retry-with-changes", args=[run.pk])),
        ("post", reverse("executions:retry-with-changes", args=[run.pk])),
        ("get", reverse("executions:replay", args=[run.pk])),
        ("get", reverse("executions:replay-export", args=[run.pk])),
    ]


def test_charlie_gets_404_on_every_page_and_fragment(workflow, failed_run, charlie):
    client = client_for(charlie)
    for method, url in _urls(workflow, failed_run):
        response = getattr(client, method)(url)
        assert response.status_code == 404, (method, url, response.status_code)
    workflow.refresh_from_db()
    assert [n["id"] for n in workflow.definition["nodes"]] == ["greet", "charge"]


def test_charlie_does_not_see_alices_work_in_lists(workflow, failed_run, as_charlie):
    assert "Greeter" not in as_charlie.get(reverse("workflows:list")).content.decode()
    html = as_charlie.get(reverse("executions:list")).content.decode()
    assert f"#{failed_run.pk}" not in html and "Greeter" not in html


def test_anonymous_users_are_sent_to_login_from_every_page(workflow, failed_run):
    client = client_for(None)
    for method, url in _urls(workflow, failed_run) + [("get", reverse("workflows:list")), ("get", reverse("executions:list")), ("get", reverse("workflows:create"))]:
        response = getattr(client, method)(url)
        assert response.status_code == 302, (method, url)
        assert response["Location"].startswith("/accounts/login/?next="), (method, url)


def test_bob_may_view_but_not_change_or_run(workflow, failed_run, as_bob):
    assert as_bob.get(reverse("workflows:detail", args=[workflow.pk])).status_code == 200
    assert as_bob.get(reverse("executions:detail", args=[failed_run.pk])).status_code == 200
    assert as_bob.get(reverse("executions:replay", args=[failed_run.pk])).status_code == 200
    for method, url in [
        ("get", reverse("workflows:edit", args=[workflow.pk])),
        ("post", reverse("workflows:node-delete", args=[workflow.pk, "greet"])),
        ("post", reverse("workflows:run", args=[workflow.pk])),
        ("post", reverse("workflows:json", args=[workflow.pk])),
        ("post", reverse("executions:cancel", args=[failed_run.pk])),
        ("post", reverse("executions:retry", args=[failed_run.pk])),
        ("post", reverse("executions:pin", args=[failed_run.pk])),
        ("post", reverse("executions:pause", args=[failed_run.pk])),
        ("post", reverse("executions:signal", args=[failed_run.pk])),
        ("post", reverse("executions:retry-failed", args=[failed_run.pk])),
        ("post", reverse("executions:retry-with-changes", args=[failed_run.pk])),
    ]:
        assert getattr(as_bob, method)(url).status_code == 403, (method, url)
    html = as_bob.get(reverse("executions:detail", args=[failed_run.pk])).content.decode()
    assert "retry-with-changes/" not in html and "Cancel run" not in html and "/pin/" not in html
