"""notify.email / notify.slack / notify.webhook: delivered, retried, recorded."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import override_settings

from apps.connectors import services
from apps.connectors.activities.notify import SIGNATURE_HEADER, notify_email, notify_slack, notify_webhook, verify
from apps.connectors.models import Delivery
from apps.executions.activities import ActivityError

pytestmark = pytest.mark.django_db
LOCAL = override_settings(WB_HTTP_ALLOWED_HOSTS=["127.0.0.1"])
SIGNING_KEY = "whsec-signing-key-0123456789"


@override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
def test_email_is_delivered_to_the_outbox_and_recorded(run_context):
    out = notify_email({"to": ["ops@example.com", "boss@example.com"], "cc": "audit@example.com", "subject": "Order 42\nshipped", "body": "Hello Ada, order 42 is on its way.", "html": "<p>Hello</p>"}, run_context("mail"))
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "Order 42 shipped"
    assert message.to == ["ops@example.com", "boss@example.com"] and message.cc == ["audit@example.com"]
    assert "order 42 is on its way" in message.body and message.alternatives[0][1] == "text/html"
    delivery = Delivery.objects.get(pk=out["delivery"])
    assert (delivery.channel, delivery.status, delivery.attempts, delivery.node_id) == ("email", "delivered", 1, "mail")
    assert delivery.execution_id == run_context.execution.pk


def test_email_subject_and_body_templates_are_resolved_before_the_step():
    from apps.workflows.definition.expressions import resolve

    params = resolve({"subject": "Order {{ $.input.order.id }}", "body": "Total: {{ $.vars.total }} {{ $.vars.currency | \"EUR\" }}"}, {"input": {"order": {"id": 42}}, "vars": {"total": 99.5}})
    assert params == {"subject": "Order 42", "body": "Total: 99.5 EUR"}


@override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
def test_bad_addresses_fail_without_retry(run_context):
    with pytest.raises(ActivityError) as exc:
        notify_email({"to": "not-an-address", "subject": "x", "body": "y"}, run_context())
    assert exc.value.type == "InvalidParams" and not exc.value.retryable
    assert mail.outbox == []


@override_settings(EMAIL_BACKEND="tests.connectors.flaky_mail.FlakyBackend")
def test_email_is_retried_and_each_attempt_recorded(run_context):
    from . import flaky_mail

    flaky_mail.FAILURES = 1
    out = notify_email({"to": "ops@example.com", "subject": "x", "body": "y", "backoff": 0}, run_context())
    delivery = Delivery.objects.get(pk=out["delivery"])
    assert delivery.status == "delivered" and delivery.attempts == 2 and out["attempts"] == 2
    flaky_mail.FAILURES = 5
    with pytest.raises(ActivityError) as exc:
        notify_email({"to": "ops@example.com", "subject": "x", "body": "y", "attempts": 2, "backoff": 0}, run_context())
    failed = Delivery.objects.get(pk=exc.value.details["delivery"])
    assert failed.status == "failed" and failed.attempts == 2 and "SMTP" in failed.error


@LOCAL
def test_webhook_signature_is_verifiable_by_the_receiver(server, alice, run_context):
    services.create_credential(owner=alice, name="hook-key", kind="secret", secret=SIGNING_KEY, allowed_hosts=["127.0.0.1"], workflows=[run_context.workflow])
    server.routes["POST /hook"] = lambda r: (204, {}, b"")
    out = notify_webhook({"url": server.url("/hook"), "payload": {"event": "order.shipped", "id": 42}, "signing_credential": "hook-key"}, run_context("hook"))
    received = server.received[-1]
    assert received.json() == {"event": "order.shipped", "id": 42}
    assert received.headers[SIGNATURE_HEADER.lower()].startswith("sha256=")
    timestamp = received.headers["x-workflow-timestamp"]
    assert verify(SIGNING_KEY, received.body, received.headers[SIGNATURE_HEADER.lower()], timestamp)
    assert not verify("another-key", received.body, received.headers[SIGNATURE_HEADER.lower()], timestamp)
    # The timestamp is signed too: a copy replayed later (or with another timestamp) fails.
    assert not verify(SIGNING_KEY, received.body, received.headers[SIGNATURE_HEADER.lower()], int(timestamp) + 1)
    assert not verify(SIGNING_KEY, received.body, received.headers[SIGNATURE_HEADER.lower()], timestamp, now=int(timestamp) + 301)
    assert received.headers["x-workflow-delivery"] == out["delivery"]
    delivery = Delivery.objects.get(pk=out["delivery"])
    assert (delivery.channel, delivery.status, delivery.response_code, delivery.attempts) == ("webhook", "delivered", 204, 1)
    assert SIGNING_KEY not in repr(out)


@LOCAL
def test_webhook_is_retried_on_503_and_records_the_attempts(server, run_context):
    answers = iter([(503, {}, "busy"), (200, {}, {"ok": True})])
    server.routes["POST /hook"] = lambda r: next(answers)
    out = notify_webhook({"url": server.url("/hook"), "payload": {"a": 1}, "backoff": 0}, run_context())
    delivery = Delivery.objects.get(pk=out["delivery"])
    assert delivery.attempts == 2 and delivery.status == "delivered" and delivery.response_code == 200


@LOCAL
def test_a_webhook_that_keeps_failing_fails_the_step_and_is_recorded_as_failed(server, run_context):
    server.routes["POST /hook"] = lambda r: (400, {}, {"error": "bad payload"})
    with pytest.raises(ActivityError) as exc:
        notify_webhook({"url": server.url("/hook"), "payload": {}, "backoff": 0}, run_context())
    assert exc.value.type == "DeliveryFailed" and not exc.value.retryable
    delivery = Delivery.objects.get(pk=exc.value.details["delivery"])
    assert delivery.status == "failed" and delivery.attempts == 1 and delivery.response_code == 400


def test_a_webhook_to_a_private_address_is_refused(run_context):
    with pytest.raises(ActivityError) as exc:
        notify_webhook({"url": "http://10.0.0.5/hook", "payload": {}}, run_context())
    assert exc.value.type == "DestinationNotAllowed"


@LOCAL
def test_slack_posts_to_the_webhook_url_kept_in_a_credential(server, alice, run_context):
    services.create_credential(owner=alice, name="slack-ops", kind="secret", secret=server.url("/services/T000/B000/XXXXSECRET"), allowed_hosts=["127.0.0.1"], workflows=[run_context.workflow])
    server.routes["POST /services/T000/B000/XXXXSECRET"] = lambda r: (200, {"Content-Type": "text/plain"}, "ok")
    out = notify_slack({"credential": "slack-ops", "text": "Deploy finished :tada:", "channel": "#ops"}, run_context())
    assert server.received[-1].json() == {"text": "Deploy finished :tada:", "channel": "#ops"}
    delivery = Delivery.objects.get(pk=out["delivery"])
    assert delivery.channel == "slack" and delivery.status == "delivered"
    assert "XXXXSECRET" not in delivery.target
