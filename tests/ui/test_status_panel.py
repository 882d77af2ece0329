"""What the live page says about a run's progress: the ETA, and the timeline's line for a condition."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.executions.models import Execution
from apps.executions.presenters import summarize_event

from .conftest import make_run

pytestmark = pytest.mark.django_db


def _status_panel(html: str) -> str:
    return html.split("<dt>ETA</dt>", 1)[1].split("</div>", 1)[0]


def test_a_run_past_the_usual_duration_does_not_claim_0_ms_left(workflow, as_alice):
    make_run(workflow, status="completed")  # took 2 s
    waiting = make_run(workflow, status="running")
    Execution.objects.filter(pk=waiting.pk).update(started_at=timezone.now() - timedelta(minutes=5))
    eta = _status_panel(as_alice.get(reverse("executions:detail", args=[waiting.pk])).content.decode())
    assert " left" not in eta
    assert "longer than usual" in eta and "recent runs took 2.0 s" in eta


def test_a_run_within_the_usual_duration_gets_an_eta(workflow, as_alice):
    make_run(workflow, status="completed")
    running = make_run(workflow, status="running")
    Execution.objects.filter(pk=running.pk).update(started_at=timezone.now())
    eta = _status_panel(as_alice.get(reverse("executions:detail", args=[running.pk])).content.decode())
    # A loaded machine may take a good part of the 2 s to render: ms or s, but some time left.
    assert re.search(r"about [\d.]+ m?s left", eta) and "median of recent runs" in eta


def test_the_timeline_says_which_branch_a_condition_took():
    assert summarize_event("condition_evaluated", {"chosen": "manual_review", "case": 0}) == "took manual_review (case 1)"
    assert summarize_event("condition_evaluated", {"chosen": "fast_track", "case": None}) == "took fast_track (default)"
    assert summarize_event("condition_evaluated", {"chosen": None, "case": None}) == "no case held and there is no default"
