"""Fixtures of the engine tests."""

from __future__ import annotations

import uuid

import pytest

from workflowsite.celery import app


@pytest.fixture
def own_queue(settings):
    """Route this test's runs to a Celery queue of its own: no worker serves it unless the test
    starts one (which it may kill), or runs the steps itself."""
    queue = f"wbtest-own-{uuid.uuid4().hex[:6]}"
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    yield queue
    app.conf.task_default_queue = previous
