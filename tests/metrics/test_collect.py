"""Collection: the workers' collector records finished runs in batches, once each, off the engine's path."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from apps.executions.engine.orchestrator import cancel_execution, start_execution
from apps.executions.models import Execution
from apps.metrics import collect
from apps.metrics.models import ExecutionMetric

from .conftest import make_workflow


def finished_run(workflow, *, minutes_ago: float = 0) -> Execution:
    execution = start_execution(workflow, {})  # no worker here: finish it by hand
    cancel_execution(execution)
    if minutes_ago:
        Execution.objects.filter(pk=execution.pk).update(finished_at=timezone.now() - timedelta(minutes=minutes_ago))
    return execution


def test_finishing_a_run_records_nothing_until_the_collector_runs(alice):
    run = finished_run(make_workflow(alice))
    assert not ExecutionMetric.objects.filter(execution_id=run.pk).exists()
    assert collect.collect_recent() == 1
    metric = ExecutionMetric.objects.get(execution_id=run.pk)
    assert metric.status == "cancelled" and metric.error_type == "Cancelled"


def test_the_collector_records_each_run_once_in_a_batch(alice):
    workflow = make_workflow(alice)
    runs = [finished_run(workflow) for _ in range(3)]
    assert collect.collect_recent() == 3
    assert collect.collect_recent() == 0
    assert ExecutionMetric.objects.filter(execution_id__in=[r.pk for r in runs]).count() == 3


def test_runs_older_than_the_window_are_left_to_the_backfill(alice):
    old = finished_run(make_workflow(alice), minutes_ago=30)
    assert collect.collect_recent(window_seconds=600) == 0
    assert collect.backfill() == 1
    assert ExecutionMetric.objects.filter(execution_id=old.pk).exists()


def test_collection_off_records_nothing(alice, settings):
    finished_run(make_workflow(alice))
    settings.WB_METRICS_ENABLED = False
    assert collect.collect_recent() == 0
    assert ExecutionMetric.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_one_collector_at_a_time_the_others_skip(alice):
    run = finished_run(make_workflow(alice))
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}, autocommit=False) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", [collect._LOCK_KEY])  # another worker is collecting
        assert collect.collect_recent() == 0
        other.rollback()  # it finished
    assert collect.collect_recent() == 1
    assert ExecutionMetric.objects.filter(execution_id=run.pk).exists()
