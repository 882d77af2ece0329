"""Credentials act with their owner's consent only: a run may use one its owner granted to
the run's workflow, toward the hosts listed on it; naming one in a definition needs the right
to use it (issue 15)."""

from __future__ import annotations

import pytest
from django.test import override_settings
from guardian.shortcuts import assign_perm

from apps.accounts.models import AuditLog
from apps.connectors import services
from apps.connectors.activities.http import http_request
from apps.executions.activities import ActivityError
from apps.sharing.services import share_workflow
from apps.workflows.services import DefinitionNotPermitted, create_workflow, update_workflow

pytestmark = pytest.mark.django_db
LOCAL = override_settings(WB_HTTP_ALLOWED_HOSTS=["127.0.0.1"])
SECRET = "svc-token-0123456789"


def _call(url: str, credential: str = "svc") -> dict:
    return {"format_version": 1, "nodes": [{"id": "call", "type": "activity", "activity": "http.request", "params": {"url": url, "auth": {"credential": credential}}}]}


@pytest.fixture
def shared(alice, bob):
    """alice's workflow, editable by bob."""
    workflow = create_workflow(owner=alice, name="shared", definition={"format_version": 1, "nodes": [{"id": "a", "type": "activity", "activity": "noop"}]})
    share_workflow(workflow, bob, "change", acting_user=alice)
    return workflow


#
# Saving a definition that names a credential
#


def test_an_editor_cannot_put_the_owners_credential_into_a_definition(api_as, alice, bob, shared):
    services.create_credential(owner=alice, name="svc", kind="bearer", secret=SECRET, allowed_hosts=["api.example.com"], workflows=[shared])
    response = api_as(bob).patch(f"/api/v1/workflows/{shared.pk}/", {"definition": _call("https://evil.example.net/x")}, format="json")
    assert response.status_code == 400
    assert "you may not use a credential named 'svc'" in response.json()["definition"][0]
    shared.refresh_from_db()
    assert "svc" not in str(shared.definition)


def test_the_owner_of_the_credential_can_put_it_into_a_definition(api, alice, shared):
    services.create_credential(owner=alice, name="svc", kind="bearer", secret=SECRET, allowed_hosts=["api.example.com"])
    response = api.patch(f"/api/v1/workflows/{shared.pk}/", {"definition": _call("https://api.example.com/x")}, format="json")
    assert response.status_code == 200, response.json()
    assert AuditLog.objects.filter(action="definition_edited", actor=alice, target=f"workflow {shared.pk}").exists()


def test_a_user_given_use_of_the_credential_can_put_it_into_a_definition(api_as, alice, bob, shared):
    credential = services.create_credential(owner=alice, name="svc", kind="bearer", secret=SECRET, allowed_hosts=["api.example.com"])
    assign_perm("connectors.use_credential", bob, credential)
    response = api_as(bob).patch(f"/api/v1/workflows/{shared.pk}/", {"definition": _call("https://api.example.com/x")}, format="json")
    assert response.status_code == 200, response.json()


def test_an_editor_may_still_edit_a_workflow_that_already_names_the_owners_credential(api_as, alice, bob, shared):
    services.create_credential(owner=alice, name="svc", kind="bearer", secret=SECRET, allowed_hosts=["api.example.com"])
    update_workflow(shared, acting_user=alice, definition=_call("https://api.example.com/x"))
    edited = _call("https://api.example.com/x")
    edited["nodes"].append({"id": "later", "type": "activity", "activity": "noop"})
    edited["edges"] = [{"from": "call", "to": "later"}]
    response = api_as(bob).patch(f"/api/v1/workflows/{shared.pk}/", {"definition": edited}, format="json")
    assert response.status_code == 200, response.json()


def test_a_computed_credential_name_is_refused(alice):
    with pytest.raises(DefinitionNotPermitted) as exc:
        create_workflow(owner=alice, name="computed", definition=_call("https://api.example.com/x", "{{ $.input.which }}"))
    assert "plain string" in str(exc.value) and "node 'call'" in str(exc.value)


def test_the_json_editor_shows_the_refusal_next_to_the_definition(client, alice, bob, shared):
    import json

    services.create_credential(owner=alice, name="svc", kind="bearer", secret=SECRET, allowed_hosts=["api.example.com"])
    client.force_login(bob)
    response = client.post(f"/workflows/{shared.pk}/json/", {"definition": json.dumps(_call("https://evil.example.net/x"))})
    assert response.status_code == 422
    assert "you may not use a credential named" in response.content.decode().replace("&#x27;", "'")
    shared.refresh_from_db()
    assert "svc" not in str(shared.definition)


#
# Using a credential in a run
#


@LOCAL
def test_a_credential_not_granted_to_the_workflow_is_not_found(server, alice, run_context):
    services.create_credential(owner=alice, name="svc", kind="bearer", secret=SECRET, allowed_hosts=["127.0.0.1"])
    server.routes["/x"] = lambda r: (200, {}, {"ok": True})
    with pytest.raises(ActivityError) as exc:
        http_request({"url": server.url("/x"), "auth": {"credential": "svc"}}, run_context())
    assert exc.value.type == "CredentialNotFound" and "granted" in exc.value.message
    assert server.received == []


@LOCAL
def test_a_credential_is_never_sent_to_a_host_it_does_not_list(local_server, alice, run_context):
    good, evil = local_server(), local_server()
    services.create_credential(owner=alice, name="svc", kind="bearer", secret=SECRET, allowed_hosts=[f"127.0.0.1:{good.port}"], workflows=[run_context.workflow])
    good.routes["/x"] = evil.routes["/x"] = lambda r: (200, {}, {"ok": True})
    assert http_request({"url": good.url("/x"), "auth": {"credential": "svc"}}, run_context())["status"] == 200
    assert good.received[-1].headers["authorization"] == f"Bearer {SECRET}"
    with pytest.raises(ActivityError) as exc:
        http_request({"url": evil.url("/x"), "auth": {"credential": "svc"}}, run_context())
    assert exc.value.type == "CredentialHostNotAllowed" and not exc.value.retryable
    assert evil.received == []


@LOCAL
def test_a_credential_listing_no_hosts_is_sent_nowhere(server, alice, run_context):
    services.create_credential(owner=alice, name="svc", kind="bearer", secret=SECRET, workflows=[run_context.workflow])
    with pytest.raises(ActivityError) as exc:
        http_request({"url": server.url("/x"), "auth": {"credential": "svc"}}, run_context())
    assert exc.value.type == "CredentialHostNotAllowed" and "none" in exc.value.message
    assert server.received == []


def test_host_patterns():
    from apps.connectors.models import host_matches

    assert host_matches("api.example.com", "API.example.com", 443)
    assert host_matches("*.example.com", "a.b.example.com", 443)
    assert not host_matches("*.example.com", "example.com", 443)
    assert not host_matches("*.example.com", "evilexample.com", 443)
    assert host_matches("127.0.0.1:8080", "127.0.0.1", 8080)
    assert not host_matches("127.0.0.1:8080", "127.0.0.1", 8081)


#
# The credentials API
#


def test_the_api_grants_a_credential_to_workflows_and_lists_its_hosts(api, alice, shared):
    response = api.post("/api/v1/credentials/", {"name": "svc", "kind": "bearer", "secret": SECRET, "allowed_hosts": ["api.example.com", "*.example.org"], "workflows": [shared.pk]}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["allowed_hosts"] == ["api.example.com", "*.example.org"] and body["workflows"] == [shared.pk]
    assert SECRET not in response.content.decode()
    row = AuditLog.objects.get(action="credential_created")
    assert row.actor == alice and row.detail["workflows"] == [shared.pk] and SECRET not in str(row.detail)


def test_the_api_refuses_a_bad_host_naming_the_field(api):
    response = api.post("/api/v1/credentials/", {"name": "svc", "kind": "bearer", "secret": SECRET, "allowed_hosts": ["https://x.com/path"]}, format="json")
    assert response.status_code == 400 and "allowed_hosts" in response.json()


def test_a_credential_cannot_be_granted_to_a_workflow_its_owner_cannot_see(api_as, charlie, shared):
    response = api_as(charlie).post("/api/v1/credentials/", {"name": "svc", "kind": "bearer", "secret": SECRET, "workflows": [shared.pk]}, format="json")
    assert response.status_code == 400 and "workflows" in response.json()


def test_changing_and_deleting_a_credential_is_audited(api, alice):
    created = api.post("/api/v1/credentials/", {"name": "svc", "kind": "bearer", "secret": SECRET}, format="json").json()
    assert api.patch(f"/api/v1/credentials/{created['id']}/", {"secret": "rotated-secret-1", "allowed_hosts": ["a.example.com"]}, format="json").status_code == 200
    assert api.delete(f"/api/v1/credentials/{created['id']}/").status_code == 204
    changed = AuditLog.objects.get(action="credential_changed")
    assert set(changed.detail["fields"]) == {"allowed_hosts", "secret"} and "rotated-secret-1" not in str(changed.detail)
    assert AuditLog.objects.filter(action="credential_deleted", actor=alice).exists()


def test_a_deeply_nested_definition_is_checked_without_recursion(alice):
    deep: dict = {"params": {"auth": {"credential": "svc"}}, "type": "activity", "id": "leaf"}
    for _ in range(5000):
        deep = {"wrap": [deep]}
    assert services.credential_references(deep) == [("leaf", "svc")]


def test_the_owner_shares_use_of_a_credential_through_the_api(api, api_as, alice, bob, shared):
    created = api.post("/api/v1/credentials/", {"name": "svc", "kind": "bearer", "secret": SECRET, "allowed_hosts": ["api.example.com"], "shared_with": ["bob"]}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["shared_with"] == ["bob"]
    assert api_as(bob).patch(f"/api/v1/workflows/{shared.pk}/", {"definition": _call("https://api.example.com/x")}, format="json").status_code == 200
    # Taking it back stops new references (bob sees nothing of the credential itself either way).
    assert api.patch(f"/api/v1/credentials/{created.json()['id']}/", {"shared_with": []}, format="json").json()["shared_with"] == []
    other = _call("https://api.example.com/y")
    other["nodes"][0]["id"] = "call2"
    update_workflow(shared, acting_user=alice, definition={"format_version": 1, "nodes": [{"id": "a", "type": "activity", "activity": "noop"}]})
    assert api_as(bob).patch(f"/api/v1/workflows/{shared.pk}/", {"definition": other}, format="json").status_code == 400
    assert api_as(bob).get(f"/api/v1/credentials/{created.json()['id']}/").status_code == 404


def test_sharing_with_an_unknown_user_names_the_field(api):
    response = api.post("/api/v1/credentials/", {"name": "svc", "kind": "bearer", "secret": SECRET, "shared_with": ["nobody"]}, format="json")
    assert response.status_code == 400 and "shared_with" in response.json()


@pytest.mark.worker
def test_an_editor_pointing_the_owners_step_elsewhere_sends_the_secret_nowhere(conn_worker, local_server, api_as, alice, bob):
    """The finding as a user met it: bob (edit share) re-points alice's authenticated step at his own server."""
    from apps.executions.engine.orchestrator import start_execution
    from tests.connectors.conftest import wait_for_run

    good, evil = local_server(), local_server()
    good.routes["/x"] = evil.routes["/x"] = lambda r: (200, {}, {"ok": True})
    credential = services.create_credential(owner=alice, name="svc", kind="bearer", secret=SECRET, allowed_hosts=[f"127.0.0.1:{good.port}"])
    workflow = create_workflow(owner=alice, name="calls home", definition=_call(good.url("/x")))
    credential.workflows.add(workflow)
    share_workflow(workflow, bob, "change", acting_user=alice)
    assert wait_for_run(start_execution(workflow, {}, acting_user=alice)).status == "completed"
    assert good.received[-1].headers["authorization"] == f"Bearer {SECRET}"

    response = api_as(bob).patch(f"/api/v1/workflows/{workflow.pk}/", {"definition": _call(evil.url("/x"))}, format="json")
    assert response.status_code == 200  # the reference was already there: the save is allowed …
    workflow.refresh_from_db()
    run = wait_for_run(start_execution(workflow, {}, acting_user=bob))
    assert run.status == "failed"  # … but the secret does not leave for an unlisted host
    assert run.steps.get(node_id="call").error["type"] == "CredentialHostNotAllowed"
    assert evil.received == []
