"""The live page converges on the truth whatever its websocket does: a socket that stays open but
goes quiet is backed up by a poll, a stale set of fragments never takes the page back, and a
reconnect starts from where the page is."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from apps.workflows.services import create_workflow

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture
def alice_user(server):
    return User.objects.create_user("alice", "alice@example.com", "alice-password-1")


def _naps(owner, *seconds: float):
    nodes = [{"id": f"nap{i}", "type": "activity", "activity": "delay", "params": {"seconds": s}} for i, s in enumerate(seconds, start=1)]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in zip(nodes, nodes[1:])]
    return create_workflow(owner=owner, name="Napper", definition={"format_version": 1, "nodes": nodes, "edges": edges})


def _start(page, workflow) -> None:
    log_in(page, "alice", "alice-password-1")
    page.goto(f"/workflows/{workflow.pk}/run/")
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url(re.compile(r".*/executions/\d+/$"))


def _seq(page) -> int:
    return int(page.locator("#live-poller").get_attribute("data-last-seq"))


def test_a_quiet_open_websocket_does_not_leave_the_page_behind(new_page, alice_user):
    """Every message the server sends is lost on the way, while the socket stays open: the page
    still reaches "Completed", from the poll that quiet lets through."""
    workflow = _naps(alice_user, 1)
    page = new_page()
    lost = []

    def silenced(ws):
        server = ws.connect_to_server()
        server.on_message(lambda message: lost.append(message))  # nothing from the server reaches the page

    page.route_web_socket(re.compile(r".*/ws/.*"), silenced)
    _start(page, workflow)
    expect(page.locator("body.ws-open")).to_be_attached()
    expect(page.locator("[data-run-status]")).to_have_text("Completed", timeout=20_000)
    expect(page.locator("body.ws-open")).to_be_attached()  # open all along: the poll got through anyway


def test_stale_fragments_do_not_take_the_page_back_and_a_reconnect_starts_where_the_page_is(new_page, alice_user):
    workflow = _naps(alice_user, 3, 1)
    page = new_page()
    routes, received = [], []

    def recorded(ws):
        server = ws.connect_to_server()
        routes.append(ws)

        def forward(message):
            received.append(message)
            ws.send(message)

        server.on_message(forward)

    page.route_web_socket(re.compile(r".*/ws/.*"), recorded)
    _start(page, workflow)
    expect(page.locator("[data-run-status]")).to_have_text("Completed", timeout=20_000)
    running = [m for m in received if 'data-run-status="running"' in m]
    assert running, "the page connected before the second nap started, so it was told about it"
    seen = _seq(page)

    # A fragment set from while the run was going, delivered late: ignored.
    routes[-1].send(running[0])
    page.wait_for_timeout(300)
    expect(page.locator("[data-run-status]")).to_have_text("Completed")
    assert _seq(page) == seen

    # The server goes away abnormally: htmx reconnects, asking for what came after the page's seq.
    routes[-1].close(code=1011, reason="restart")
    for _ in range(100):
        if len(routes) == 2:
            break
        page.wait_for_timeout(100)
    assert len(routes) == 2 and routes[1].url.endswith(f"?after={seen}")
    expect(page.locator("body.ws-open")).to_be_attached()
