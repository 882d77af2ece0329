"""AI accounting: every call recorded (user, model, tokens, latency, cache hit), daily budgets
per user and in total answering 429, the cache keyed by the normalised prompt, the usage
endpoint and admin; `prompt` accepted with `request` kept as its alias."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from apps.connectors.models import AIBudget, AIUsage
from apps.executions.models import StepRun

from .conftest import wait_for_run
from .test_ai import GOOD

ANSWER = json.dumps({"definition": GOOD, "explanation": "Upper-cases the name and posts it.", "confidence": 0.8})


def interpret(client, text: str, field: str = "prompt"):
    return client.post("/api/v1/ai/interpret", {field: text}, format="json")


@pytest.mark.django_db
class TestInterpret:
    def test_it_accepts_prompt_and_keeps_request_as_an_alias(self, api, provider):
        provider.answers += [ANSWER, ANSWER]
        assert interpret(api, "shout the name", "prompt").json()["definition"] == GOOD
        assert interpret(api, "post it to our hook", "request").json()["definition"] == GOOD
        assert [r.json()["messages"][-1]["content"] for r in provider.received] == ["shout the name", "post it to our hook"]

    def test_it_names_the_prompt_field_when_there_is_none(self, api, provider):
        response = api.post("/api/v1/ai/interpret", {"definition": GOOD}, format="json")
        assert response.status_code == 400 and "prompt" in response.json()
        response = api.post("/api/v1/ai/interpret", {"prompt": "a", "request": "b"}, format="json")
        assert response.status_code == 400 and "prompt" in response.json()
        assert provider.received == []

    def test_it_records_each_call_with_user_model_tokens_and_latency(self, api, alice, provider):
        provider.answers.append(ANSWER)
        interpret(api, "shout the name")
        usage = AIUsage.objects.get()
        assert (usage.user, usage.purpose, usage.status, usage.model) == (alice, "interpret", "ok", "stand-in-1")
        assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (10, 5, 15)
        assert usage.latency_ms is not None and usage.cache_hit is False

    def test_a_failed_call_is_recorded_as_an_error(self, api, provider):
        provider.routes["POST /v1/chat/completions"] = lambda r: (500, {}, {"error": "down"})
        assert interpret(api, "x").status_code == 502
        usage = AIUsage.objects.get()
        assert usage.status == "error" and "500" in usage.error

    def test_the_cache_answers_the_same_normalised_prompt_without_calling_the_provider(self, api, bob, api_as, provider):
        provider.answers.append(ANSWER)
        first = interpret(api, "shout the name and post it")
        again = interpret(api_as(bob), "  shout the name\n\tand  post it ")
        assert first.status_code == again.status_code == 200
        assert again.json()["definition"] == first.json()["definition"] == GOOD
        assert len(provider.received) == 1
        hit = AIUsage.objects.get(cache_hit=True)
        assert hit.user == bob and hit.status == "cached" and hit.total_tokens == 0
        # Another prompt is a miss.
        provider.answers.append(ANSWER)
        interpret(api, "shout the name and post it twice")
        assert len(provider.received) == 2

    def test_a_spent_user_budget_answers_429_and_spares_the_provider(self, api, api_as, alice, bob, provider):
        AIBudget.objects.create(user=alice, requests_per_day=1)
        provider.answers += [ANSWER, ANSWER]
        assert interpret(api, "first").status_code == 200
        response = interpret(api, "second")
        assert response.status_code == 429
        body = response.json()
        assert body["code"] == "ai_budget_exceeded" and (body["scope"], body["kind"], body["limit"], body["used"]) == ("user", "requests", 1, 1)
        assert "budget" in body["detail"] and int(response["Retry-After"]) > 0
        assert len(provider.received) == 1
        # The cache still answers what was asked before; others keep their own budget.
        assert interpret(api, "first").status_code == 200
        assert interpret(api_as(bob), "second").status_code == 200
        assert len(provider.received) == 2

    def test_a_spent_total_token_budget_answers_429_to_everyone(self, api, api_as, bob, provider, settings):
        settings.AI_DAILY_TOKENS_TOTAL = 15
        provider.answers += [ANSWER, ANSWER]
        assert interpret(api, "first").status_code == 200
        response = interpret(api_as(bob), "second")
        assert response.status_code == 429
        assert (response.json()["scope"], response.json()["kind"]) == ("total", "tokens")
        # A total budget row overrides the setting.
        AIBudget.objects.create(user=None, tokens_per_day=0)
        assert interpret(api_as(bob), "second").status_code == 200

    def test_the_usage_endpoint_shows_your_day_and_only_yours(self, api, api_as, charlie, provider, settings):
        settings.AI_DAILY_REQUESTS_PER_USER = 5
        provider.answers.append(ANSWER)
        interpret(api, "first")
        body = api.get("/api/v1/ai/usage").json()
        assert body["user"]["requests"] == {"limit": 5, "used": 1, "remaining": 4}
        assert body["user"]["tokens"] == {"limit": None, "used": 15, "remaining": None}
        assert body["recent"][0]["total_tokens"] == 15 and body["recent"][0]["cache_hit"] is False
        mine = api_as(charlie).get("/api/v1/ai/usage").json()
        assert mine["recent"] == [] and mine["user"]["requests"]["used"] == 0 and mine["total"]["requests"]["used"] == 1

    def test_the_usage_endpoint_needs_a_signed_in_user(self, anon_api):
        assert anon_api.get("/api/v1/ai/usage").status_code in (401, 403)

    def test_operators_see_usage_and_budgets_in_the_admin(self, api, alice, admin_user, provider):
        provider.answers.append(ANSWER)
        interpret(api, "first")
        AIBudget.objects.create(user=alice, requests_per_day=3)
        client = Client()
        client.force_login(admin_user)
        page = client.get("/admin/connectors/aiusage/")
        assert page.status_code == 200 and b"alice" in page.content and b"stand-in-1" in page.content
        page = client.get("/admin/connectors/aibudget/")
        assert page.status_code == 200 and b"1 / 15" in page.content
        client.force_login(alice)
        assert client.get("/admin/connectors/aiusage/").status_code == 302


#
# ai.complete in real runs
#

AI_STEP = {
    "format_version": 1,
    "input_schema": {"type": "object", "properties": {"review": {"type": "string"}}},
    "nodes": [{"id": "classify", "type": "activity", "activity": "ai.complete", "output": "answer", "retry": {"max_attempts": 1},
               "params": {"prompt": "Classify: {{ $.input.review }}", "json": True}}],
}


@pytest.mark.worker
def test_ai_steps_are_accounted_cached_and_stopped_by_the_budget(conn_worker, worker_provider, alice, api):
    workflow = api.post("/api/v1/workflows/", {"name": "classifier", "definition": AI_STEP}, format="json")
    assert workflow.status_code == 201, workflow.content
    wid = workflow.json()["id"]

    def run(review: str):
        response = api.post(f"/api/v1/workflows/{wid}/runs", {"input": {"review": review}}, format="json")
        assert response.status_code in (200, 201, 202), response.content
        from apps.executions.models import Execution

        return wait_for_run(Execution.objects.get(pk=response.json()["id"]))

    worker_provider.answers.append('{"sentiment": "positive"}')
    first = run("I love it")
    assert first.status == "completed", first.error
    assert first.variables["answer"]["data"] == {"sentiment": "positive"} and first.variables["answer"]["cached"] is False
    # The same prompt again: answered from the cache, the provider is not called.
    second = run("I love it")
    assert second.status == "completed" and second.variables["answer"]["data"] == {"sentiment": "positive"}
    assert second.variables["answer"]["cached"] is True
    assert len(worker_provider.received) == 1
    rows = list(AIUsage.objects.order_by("created_at").values_list("user__username", "purpose", "cache_hit", "total_tokens", "execution_id", "node_id"))
    assert rows == [("alice", "ai.complete", False, 15, first.pk, "classify"), ("alice", "ai.complete", True, 0, second.pk, "classify")]
    # A spent budget fails the step, clearly and without calling the provider.
    AIBudget.objects.create(user=alice, requests_per_day=1)
    third = run("I hate it")
    assert third.status == "failed"
    step = StepRun.objects.get(execution=third, node_id="classify")
    assert step.error["type"] == "AIBudgetExceeded" and "budget" in step.error["message"]
    assert len(worker_provider.received) == 1
