"""The live page's websocket consumer: permission on connect, fragments of what changed on committed events."""

from __future__ import annotations

import json
import re
import time
from html import unescape

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from apps.executions.engine import publish
from apps.executions.models import Execution, ExecutionEvent
from workflowsite.ws_urls import websocket_urlpatterns

from .conftest import make_run

pytestmark = pytest.mark.django_db(transaction=True)


def _communicator(execution: Execution, user, after: int = 0) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/executions/{execution.pk}/?after={after}")
    communicator.scope["user"] = user
    return communicator


@pytest.mark.parametrize("who", ["charlie", "anonymous"])
def test_strangers_and_anonymous_users_are_refused(workflow, charlie, who):
    run = make_run(workflow, status="running")
    user = charlie if who == "charlie" else AnonymousUser()
    before = publish.watchers(run.pk)

    async def scenario():
        communicator = _communicator(run, user)
        connected, _ = await communicator.connect()
        assert connected  # accepted only to say why it closes
        message = await communicator.receive_output(timeout=5)
        assert message == {"type": "websocket.close", "code": 4403}
        await communicator.disconnect()

    async_to_sync(scenario)()
    assert publish.watchers(run.pk) == before


def _node_changes(html: str) -> dict[str, str]:
    match = re.search(r'id="live-changes" hidden hx-swap-oob="true" data-from-seq="\d+" data-nodes="([^"]*)"', html)
    assert match, "an update of changes carries #live-changes"
    return json.loads(unescape(match.group(1)) or "{}")


def test_a_step_completion_reaches_the_page_as_only_what_changed(workflow, alice):
    run = make_run(workflow, status="running")
    greet, charge = run.steps.get(node_id="greet"), run.steps.get(node_id="charge")

    # Watcher counts live in Redis keyed by execution id, shared with parallel test sessions: compare.
    before = publish.watchers(run.pk)

    async def scenario():
        communicator = _communicator(run, alice, after=run.last_seq)
        connected, _ = await communicator.connect()
        assert connected
        assert await communicator.receive_nothing(timeout=0.2)  # up to date: no catch-up message
        assert publish.watchers(run.pk) == before + 1

        def commit_event():
            event = ExecutionEvent.objects.create(execution=run, seq=8, type="step_completed", node_id="charge", step=charge, payload={"output": {"paid": True}})
            charge.status = "completed"
            charge.save(update_fields=["status"])
            Execution.objects.filter(pk=run.pk).update(last_seq=8)
            publish.events_committed(run.pk, [event])

        from channels.db import database_sync_to_async

        await database_sync_to_async(commit_event)()
        html = await communicator.receive_from(timeout=5)
        # The new timeline row, and not the ones the page has.
        assert f'id="ev-{run.pk}-8"' in html and f'id="ev-{run.pk}-7"' not in html
        assert 'hx-swap-oob="beforeend:#timeline-rows"' in html
        # That step's row (put after greet's if the page lacks it) and that node's colour, not the others'.
        assert f'<template data-after="{greet.pk}"><tr id="step-row-{charge.pk}" data-step-status="completed">' in html
        assert f'id="step-row-{greet.pk}"' not in html
        assert _node_changes(html) == {"charge": "completed"}
        # The counts and the run's status badge; not the whole panel, graph or table.
        assert '<span id="exec-counts" hx-swap-oob="true">2 · <span class="status status-completed">2 completed</span></span>' in html
        assert 'id="exec-run-status"' in html and 'data-run-status="running" hx-swap-oob="true"' in html
        for whole in ('id="exec-status"', 'id="exec-graph"', 'id="exec-steps"', 'id="exec-overlay"', "<svg"):
            assert whole not in html
        assert len(html) < 4000
        await communicator.disconnect()

    async_to_sync(scenario)()
    assert publish.watchers(run.pk) == before


def test_the_run_finishing_sends_the_whole_panel(workflow, alice):
    """The run's own status changing changes its buttons, overlay and graph highlight: all of it goes."""
    run = make_run(workflow, status="running")

    async def scenario():
        from channels.db import database_sync_to_async

        communicator = _communicator(run, alice, after=run.last_seq)
        connected, _ = await communicator.connect()
        assert connected

        def fail_the_run():
            charge = run.steps.get(node_id="charge")
            charge.status = "failed"
            charge.error = {"type": "HTTP4xx", "message": "POST /charge answered 404"}
            charge.save(update_fields=["status", "error"])
            events = [
                ExecutionEvent.objects.create(execution=run, seq=8, type="step_failed", node_id="charge", step=charge),
                ExecutionEvent.objects.create(execution=run, seq=9, type="execution_failed", payload={"error": {"type": "HTTP4xx", "node": "charge"}}),
            ]
            Execution.objects.filter(pk=run.pk).update(last_seq=9, status="failed", error={"type": "HTTP4xx", "message": "POST /charge answered 404", "node": "charge"})
            publish.events_committed(run.pk, events)

        await database_sync_to_async(fail_the_run)()
        html = await communicator.receive_from(timeout=5)
        assert 'id="exec-status" hx-swap-oob="true"' in html and 'data-run-status="failed"' in html
        assert 'id="exec-overlay" hx-swap-oob="true"' in html and "This run failed at <code>charge</code>" in html
        assert 'class="node status-failed highlight" data-node-id="charge"' in html
        assert f'id="ev-{run.pk}-8"' in html and f'id="ev-{run.pk}-9"' in html and f'id="ev-{run.pk}-7"' not in html
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_a_new_step_s_row_says_which_row_it_follows(workflow, alice):
    from apps.executions.models import StepRun
    from apps.executions.views import render_live_fragments

    run = make_run(workflow, status="running")
    charge = run.steps.get(node_id="charge")
    retry = StepRun.objects.create(execution=run, node_id="charge", node_type="activity", activity="fail", status="running", attempt=2)
    ExecutionEvent.objects.create(execution=run, seq=8, type="step_started", node_id="charge", step=retry)
    Execution.objects.filter(pk=run.pk).update(last_seq=8)
    html, last_seq = render_live_fragments(Execution.objects.get(pk=run.pk), alice, after=7)
    assert last_seq == 8
    assert f'<template data-after="{charge.pk}"><tr id="step-row-{retry.pk}" data-step-status="running">' in html
    assert f'id="step-row-{charge.pk}"' not in html
    assert _node_changes(html) == {"charge": "running"}


def test_connecting_behind_the_page_catches_up_at_once(workflow, alice):
    run = make_run(workflow, status="running")

    async def scenario():
        communicator = _communicator(run, alice, after=5)
        connected, _ = await communicator.connect()
        assert connected
        html = await communicator.receive_from(timeout=5)
        assert f'id="ev-{run.pk}-6"' in html and f'id="ev-{run.pk}-7"' in html and f'id="ev-{run.pk}-5"' not in html
        # The page may have missed anything while it was not connected: the whole panel, once.
        assert 'id="exec-status" hx-swap-oob="true"' in html and 'id="exec-steps" hx-swap-oob="true"' in html and 'id="exec-graph"' in html
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_a_revoked_share_stops_the_stream(workflow, alice, bob):
    from apps.sharing.services import unshare_workflow

    run = make_run(workflow, status="running")

    async def scenario():
        communicator = _communicator(run, bob, after=run.last_seq)
        connected, _ = await communicator.connect()
        assert connected
        assert await communicator.receive_nothing(timeout=0.2)

        def revoke_and_commit():
            unshare_workflow(workflow, bob, acting_user=alice)
            event = ExecutionEvent.objects.create(execution=run, seq=8, type="step_started", node_id="charge")
            Execution.objects.filter(pk=run.pk).update(last_seq=8)
            publish.events_committed(run.pk, [event])

        from channels.db import database_sync_to_async

        await database_sync_to_async(revoke_and_commit)()
        message = await communicator.receive_output(timeout=5)
        assert message == {"type": "websocket.close", "code": 4403}
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_a_quiet_channel_does_not_time_out_its_consumer():
    """A consumer waits on the channel layer longer than its 5 s BZPOPMIN without an error, and a
    message sent after that wait still arrives (redis-py's socket timeout used to equal the wait)."""
    import asyncio

    from channels.layers import get_channel_layer

    async def scenario():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        waiting = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(layer.brpop_timeout + 1.5)
        assert not waiting.done(), waiting.exception() if waiting.done() else None
        await layer.send(channel, {"type": "execution.events", "last_seq": 1})
        message = await asyncio.wait_for(waiting, timeout=5)
        assert message["last_seq"] == 1

    async_to_sync(scenario)()


def test_a_consumer_that_dies_without_a_disconnect_stops_watching(workflow, alice):
    run = make_run(workflow, status="running")
    before = publish.watchers(run.pk)

    def registered() -> set[str]:
        return {c.decode() for c in publish._redis().zrange(publish._watch_key(run.pk), 0, -1)}

    others = registered()

    async def scenario():
        from channels.layers import get_channel_layer

        communicator = _communicator(run, alice, after=run.last_seq)
        connected, _ = await communicator.connect()
        assert connected
        assert publish.watchers(run.pk) == before + 1
        (channel,) = registered() - others
        # A message it has no handler for kills the consumer: no websocket.disconnect reaches it.
        await get_channel_layer().send(channel, {"type": "no.such.handler"})
        with pytest.raises(ValueError, match="No handler"):
            await communicator.receive_output(timeout=5)

    async_to_sync(scenario)()
    assert publish.watchers(run.pk) == before


def test_a_lost_registration_and_a_lost_message_are_made_up_at_the_next_renewal(workflow, alice, monkeypatch):
    from apps.executions.consumers import ExecutionConsumer

    monkeypatch.setattr(ExecutionConsumer, "renew_every", 0.3)
    run = make_run(workflow, status="running")

    async def scenario():
        from channels.db import database_sync_to_async

        communicator = _communicator(run, alice, after=run.last_seq)
        connected, _ = await communicator.connect()
        assert connected
        assert await communicator.receive_nothing(timeout=0.2)

        def lose_the_registration_then_commit():
            publish._redis().delete(publish._watch_key(run.pk))  # as a Redis restart would
            step = run.steps.get(node_id="charge")
            event = ExecutionEvent.objects.create(execution=run, seq=8, type="step_completed", node_id="charge", step=step)
            Execution.objects.filter(pk=run.pk).update(last_seq=8, status="completed")
            publish.events_committed(run.pk, [event])  # nobody registered: not published

        await database_sync_to_async(lose_the_registration_then_commit)()
        html = await communicator.receive_from(timeout=5)
        assert f'id="ev-{run.pk}-8"' in html and 'data-run-status="completed"' in html
        assert publish.watchers(run.pk) >= 1
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_a_registration_lapses_unless_renewed(workflow):
    run = make_run(workflow, status="running")
    before = publish.watchers(run.pk)
    publish.watch(run.pk, "specific.gone!page", ttl=0.5)
    assert publish.watchers(run.pk) == before + 1
    time.sleep(0.6)
    assert publish.watchers(run.pk) == before


def test_a_long_backlog_is_sent_in_pieces_until_the_page_has_it_all(workflow, alice):
    from apps.executions.views import LIVE_UPDATE_ROWS

    run = make_run(workflow, status="running")
    last = run.last_seq + LIVE_UPDATE_ROWS + 200
    ExecutionEvent.objects.bulk_create(
        ExecutionEvent(execution=run, seq=seq, type="log", node_id="charge", payload={"n": seq}) for seq in range(run.last_seq + 1, last + 1)
    )
    Execution.objects.filter(pk=run.pk).update(last_seq=last)

    async def scenario():
        communicator = _communicator(run, alice, after=run.last_seq)
        connected, _ = await communicator.connect()
        assert connected
        first = await communicator.receive_from(timeout=10)
        second = await communicator.receive_from(timeout=10)
        cut = run.last_seq + LIVE_UPDATE_ROWS
        assert f'id="ev-{run.pk}-{cut}"' in first and f'id="ev-{run.pk}-{cut + 1}"' not in first
        assert f'id="ev-{run.pk}-{cut + 1}"' in second and f'id="ev-{run.pk}-{last}"' in second
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()

    async_to_sync(scenario)()
