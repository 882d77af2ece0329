from __future__ import annotations

import uuid

import pytest

from apps.workflows.services import create_workflow

SIMPLE = {
    "format_version": 1,
    "input_schema": {"type": "object", "properties": {"order": {"type": "integer"}}},
    "nodes": [{"id": "note", "type": "activity", "activity": "set", "params": {"values": {"seen": "$.input"}}}],
    "edges": [],
}


@pytest.fixture
def make_workflow(alice):
    def make(owner=None, **fields):
        return create_workflow(owner=owner or alice, name=f"wf {uuid.uuid4().hex[:6]}", definition=SIMPLE, **fields)

    return make


@pytest.fixture
def worker(worker):
    """The session's worker, left idle before the test's tables are flushed."""
    from tests.helpers import wait_until_idle

    yield worker
    wait_until_idle(worker)
