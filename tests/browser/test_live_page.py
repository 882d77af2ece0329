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


def test_a_run_completes_live_on_the_page_without_a_reload(new_page, alice_user):
    """Node colours change, rows appear, the counts reach their final numbers and the status becomes
    Completed, from updates that carry only what changed, on the page as first loaded."""
    workflow = _naps(alice_user, 2, 2, 2)
    page = new_page()
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(payload if isinstance(payload, str) else payload.decode())))
    _start(page, workflow)
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("body.ws-open")).to_be_attached()

    graph = page.locator("#exec-graph")
    rows = page.locator("#steps-body tr[id^='step-row-']")
    # The last nap's node turns from pending to running to completed as the run gets there.
    expect(graph.locator(".node[data-node-id='nap3']")).to_have_class(re.compile(r"\bstatus-pending\b"))
    expect(graph.locator(".node[data-node-id='nap2']")).to_have_class(re.compile(r"\bstatus-running\b"), timeout=20_000)
    expect(graph.locator(".node[data-node-id='nap1']")).to_have_class(re.compile(r"\bstatus-completed\b"))
    expect(graph.locator(".node[data-node-id='nap2'] title")).to_have_text(re.compile(r"^nap2 \(.*\): running$"))  # what a screen reader says
    expect(graph.locator(".node[data-node-id='nap3']")).to_have_class(re.compile(r"\bstatus-running\b"), timeout=20_000)
    expect(rows).to_have_count(3)
    expect(page.locator("[data-run-status]")).to_have_text("Running")

    expect(page.locator("[data-run-status]")).to_have_text("Completed", timeout=20_000)
    for node in ("nap1", "nap2", "nap3"):
        expect(graph.locator(f".node[data-node-id='{node}']")).to_have_class(re.compile(r"\bstatus-completed\b"))
    expect(rows).to_have_count(3)
    expect(rows.locator(".status")).to_have_text(["Completed", "Completed", "Completed"])
    expect(page.get_by_text("No steps yet.")).to_be_hidden()
    expect(page.locator("#exec-counts")).to_have_text("3 · 3 completed")
    expect(page.locator("#timeline-rows .ev-execution_completed")).to_have_count(1)
    assert page.evaluate("window.__sameDocument") is True  # no reload

    # While the run went, the updates carried a step's row and node, not the whole panel.
    changes = [f for f in frames if 'id="live-changes"' in f and "data-full" not in f]
    assert changes and all('id="exec-graph"' not in f and 'id="exec-steps"' not in f for f in changes)
    assert any("<template data-after=" in f for f in changes)

    # A row that arrived live opens its step's logs like one the page was rendered with.
    rows.last.get_by_role("link", name="nap3").click()
    expect(page.locator("#log-viewer")).to_contain_text("nap3")
    assert page.evaluate("window.__sameDocument") is True
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_a_lost_update_is_made_up_with_the_whole_panel_once(new_page, alice_user):
    """The first update over the socket is lost on the way: the next one starts past what the page
    shows, so the page asks for the whole panel once and ends with every row and timeline event."""
    workflow = _naps(alice_user, 2, 2)
    page = new_page()
    dropped = []

    def lossy(ws):
        server = ws.connect_to_server()

        def forward(message):
            if not dropped and 'id="live-changes"' in message and "data-full" not in message:
                dropped.append(message)  # lost on the way
            else:
                ws.send(message)

        server.on_message(forward)

    page.route_web_socket(re.compile(r".*/ws/.*"), lossy)
    full_requests = []
    page.on("request", lambda request: "full=1" in request.url and full_requests.append(request.url))
    _start(page, workflow)
    expect(page.locator("[data-run-status]")).to_have_text("Completed", timeout=30_000)
    assert dropped and full_requests, "an update was lost, and the page asked for the whole panel"
    expect(page.locator("#steps-body tr[id^='step-row-'] .status")).to_have_text(["Completed", "Completed"])
    seqs = [int(s) for s in page.locator("#timeline-rows li").evaluate_all("rows => rows.map(r => r.dataset.seq)")]
    assert seqs == list(range(1, _seq(page) + 1))  # no event missing, none twice
    assert page.console_errors == []  # type: ignore[attr-defined]
