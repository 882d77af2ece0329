"""The permission matrix: every API operation in the generated OpenAPI schema and every page URL,
asked by every kind of user, against one world of objects owned by alice.

Nothing here is listed by hand except the rule each endpoint follows (RULES below): the operations
come from drf-spectacular's schema and the pages from the URL resolver, so a new endpoint without a
rule fails `test_every_endpoint_has_a_rule` until someone classifies it (docs/security.md, "Proof").

Each (endpoint, actor) pair is its own test, inside a savepoint that is rolled back, so a write that
succeeds for one actor does not change what the next one sees. The world is built once per module.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from tests.connectors.conftest import completion

pytestmark = [pytest.mark.django_db, pytest.mark.xdist_group("permission-matrix")]

# Strings that only alice's objects contain: whoever may not see the workflow must never get them.
MARKERS = ("Zanzibar-matrix-workflow", "zanzibar-run-input", "zanzibar-comment-body", "zanzibar-template-name")
# Never in any answer, not even the owner's.
SECRETS = ("zanzibar-credential-secret",)

WAITING = {
    "format_version": 1,
    "description": "Zanzibar-matrix-workflow definition",
    "signals": [{"name": "go"}],
    "nodes": [{"id": "wait", "type": "signal_wait", "signal": "go"}],
}
# What callers send of their own (bodies, imports): no marker in it, so echoing it back is no leak.
PLAIN = {"format_version": 1, "signals": [{"name": "go"}], "nodes": [{"id": "wait", "type": "signal_wait", "signal": "go"}]}
SUBFLOW_GRAPH = {"nodes": [{"id": "score", "type": "activity", "activity": "set", "params": {"values": {"score": 1}}}], "edges": []}

#
# Actors
#

ANONYMOUS, STRANGER, VIEWER, EDITOR, OWNER = "anonymous", "stranger", "viewer", "editor", "owner"
ROLE_VIEWER, ROLE_BUILDER, ROLE_OPERATOR, ROLE_ADMIN, SUPERUSER = "role-viewer", "role-builder", "role-operator", "role-admin", "superuser"
ACTORS = (ANONYMOUS, STRANGER, VIEWER, EDITOR, OWNER, ROLE_VIEWER, ROLE_BUILDER, ROLE_OPERATOR, ROLE_ADMIN, SUPERUSER)
# Who may see alice's workflow (a share, ownership, or superuser); the roles alone give no object.
SEES = {VIEWER, EDITOR, OWNER, SUPERUSER}
CHANGES = {EDITOR, OWNER, SUPERUSER}
ADMINISTERS = {OWNER, SUPERUSER}
# WB_DEFAULT_ROLE makes new accounts builders: the stranger and the share holders are builders.
BUILDERS = {STRANGER, VIEWER, EDITOR, OWNER, ROLE_BUILDER, ROLE_ADMIN, SUPERUSER}
RUNNERS = BUILDERS | {ROLE_OPERATOR}

#
# Outcomes
#

ALLOWED = "allowed"  # any answer but 401, 403, 404 and 5xx: the request reached the action
DENIED = "denied"  # 401/403, or for pages a redirect to the login page
HIDDEN = "hidden"  # 403 or 404: refused, without saying more than a stranger may know
ANY = "any"  # anything below 500 (public endpoints; what is in the body is still checked)


@dataclass(frozen=True)
class Rule:
    """Who reaches the action; everyone else is anonymous (DENIED) or refused (HIDDEN)."""

    allowed: frozenset[str]
    public: bool = False  # anonymous may call it too (then it answers ANY)
    reports_down: bool = False  # 503 is its answer while a dependency is down (readiness probes)

    def expect(self, actor: str) -> str:
        if self.public:
            return ANY if actor not in self.allowed else ALLOWED
        if actor == ANONYMOUS:
            return DENIED
        return ALLOWED if actor in self.allowed else HIDDEN


HEALTH = Rule(frozenset(), public=True, reports_down=True)


def rule(*actors: str | set[str], public: bool = False) -> Rule:
    names: set[str] = set()
    for actor in actors:
        names |= {actor} if isinstance(actor, str) else set(actor)
    return Rule(frozenset(names), public)


SIGNED_IN = set(ACTORS) - {ANONYMOUS}
PUBLIC = Rule(frozenset(), public=True)
ANY_USER = rule(SIGNED_IN)  # own data only: lists are filtered (the markers check that)
VIEW = rule(SEES)
CHANGE = rule(CHANGES)
ADMIN = rule(ADMINISTERS)
OWNER_ONLY = rule(OWNER)  # things a superuser does in the admin site, not through another's account
CREATE = rule(BUILDERS)
RUN = rule(CHANGES & RUNNERS)
# Runs alice started: her, or anyone who administers the workflow; operators act only on runs they can see.
ACT_ON_RUN = rule(ADMINISTERS)


#
# The world
#


@dataclass
class World:
    users: dict[str, User]
    ids: dict[str, object]
    sessions: dict[str, str]


def _user(name: str, **extra) -> User:
    return User.objects.create_user(name, f"{name}@example.com", f"{name}-password-1", **extra)


def _first_id(listing) -> int:
    return (listing["results"] if isinstance(listing, dict) else listing)[0]["id"]


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, session_provider):
    """alice's workflow (shared with vic to view and bob to edit), a waiting run with a step and a work
    item, a comment, a template, a credential, triggers, an API key, a notification and a subflow.

    Built in a transaction that is rolled back when the module ends; each test is a savepoint in it.
    AI assistance is configured (a local provider), so its endpoints answer as in production."""
    from django.contrib.sessions.backends.db import SessionStore

    from apps.accounts import roles
    from apps.accounts.services import create_api_key
    from apps.comments.services import add_comment, notify
    from apps.connectors import services as connectors
    from apps.executions.engine.advancing import start_execution
    from apps.executions.engine.nodes.dynamic import build_state
    from apps.executions.models import Execution, StepRun
    from apps.sharing.services import share_workflow
    from apps.templates.services import create_template
    from apps.transfer.services import export_workflows
    from apps.triggers.models import EventTrigger
    from apps.triggers.services import create_schedule, create_webhook
    from apps.workflows.services import create_workflow
    from apps.workflows.subflows import create_subflow
    from apps.worklist.models import WorkItem

    with django_db_blocker.unblock(), transaction.atomic():
        alice = _user("alice")
        users = {
            OWNER: alice, STRANGER: _user("charlie"), VIEWER: _user("vic"), EDITOR: _user("bob"),
            SUPERUSER: User.objects.create_superuser("root", "root@example.com", "root-password-1"),
        }
        for actor in (ROLE_VIEWER, ROLE_BUILDER, ROLE_OPERATOR, ROLE_ADMIN):
            users[actor] = _user(actor.replace("-", ""))
            roles.assign_role(users[actor], actor.removeprefix("role-"))
        workflow = create_workflow(owner=alice, name="Zanzibar-matrix-workflow", definition=WAITING)
        share_workflow(workflow, users[VIEWER], "view", acting_user=alice)
        share_workflow(workflow, users[EDITOR], "change", acting_user=alice)
        run = start_execution(workflow, {"note": "zanzibar-run-input"}, acting_user=alice)
        step = StepRun.objects.create(execution=run, node_id="wait", node_type="signal_wait", status="waiting", input={"note": "zanzibar-run-input"})
        Execution.objects.filter(pk=run.pk).update(definition={**run.definition, "nodes": [*run.definition["nodes"], {"id": "build", "type": "dynamic", "items": [], "activity": "noop"}], "edges": [{"from": "wait", "to": "build"}]})
        StepRun.objects.create(execution=run, node_id="build", node_type="dynamic", status="waiting", state=build_state([{"id": "a"}], {}))
        item = WorkItem.objects.create(execution=run, step=step, workflow=workflow, node_id="wait", title="Approve zanzibar-run-input")
        item.offered_users.add(alice, users[EDITOR])
        comment = add_comment(workflow, author=alice, body="zanzibar-comment-body")
        template = create_template(owner=alice, name="zanzibar-template-name", definition=WAITING)
        credential = connectors.create_credential(owner=alice, name="svc", kind="bearer", secret="zanzibar-credential-secret", workflows=[workflow])
        schedule = create_schedule(workflow, cron="0 3 * * *", input={"note": "zanzibar-run-input"}, acting_user=alice)
        trigger = EventTrigger.objects.create(workflow=workflow, event_type="zanzibar.event", created_by=alice)
        webhook, _secret = create_webhook(workflow, name="zanzibar-hook", acting_user=alice)
        key, _plain = create_api_key(alice, "zanzibar-key")
        notification = notify(alice, "comment", "zanzibar-comment-body notification")
        subflow = create_subflow(owner=alice, slug="zanzibar-sub", name="zanzibar sub", graph=SUBFLOW_GRAPH)
        elsewhere = create_workflow(owner=users[SUPERUSER], name="plain", slug="plain", definition=PLAIN)
        export = export_workflows([elsewhere])
        as_alice = APIClient()
        as_alice.force_authenticate(alice)
        as_alice.post(f"/api/v1/templates/{template.pk}/shares/", {"user": users[VIEWER].username, "level": "view"}, format="json")
        ids = {
            "workflow": workflow.pk, "run": run.pk, "step": step.pk, "item": item.pk, "comment": comment.pk,
            "template": template.pk, "credential": credential.pk, "schedule": schedule.pk, "trigger": trigger.pk,
            "webhook": webhook.pk, "webhook_token": webhook.token, "key_prefix": key.prefix,
            "notification": notification.pk if notification else 0, "subflow": subflow.slug,
            "version": _first_id(as_alice.get(f"/api/v1/workflows/{workflow.pk}/versions/").json()),
            "template_version": _first_id(as_alice.get(f"/api/v1/templates/{template.pk}/versions/").json()),
            "workflow_share": f"user-{users[VIEWER].pk}",
            "template_share": f"user-{users[VIEWER].pk}",
            "export": export,
        }
        sessions = {}
        for actor, user in users.items():
            session = SessionStore()
            session["_auth_user_id"] = str(user.pk)
            session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
            session["_auth_user_hash"] = user.get_session_auth_hash()
            session.create()
            sessions[actor] = session.session_key
        ai = {name: getattr(settings, name) for name in ("AI_BASE_URL", "AI_MODEL", "AI_API_KEY")}
        settings.AI_BASE_URL, settings.AI_MODEL, settings.AI_API_KEY = session_provider.url("/v1"), "stand-in-1", "matrix-key"
        routes = dict(session_provider.routes)
        answer = json.dumps({"definition": PLAIN, "explanation": "Waits for go.", "confidence": 0.5})
        session_provider.routes["POST /v1/chat/completions"] = lambda received: (200, {}, completion(answer))
        try:
            yield World(users, ids, sessions)
        finally:
            for name, value in ai.items():
                setattr(settings, name, value)
            session_provider.routes.clear()
            session_provider.routes.update(routes)
            transaction.set_rollback(True)


#
# The endpoints
#


def api_operations() -> list[tuple[str, str, str]]:
    """(operationId, method, path template) for every operation of the generated schema."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (operation["operationId"], method.upper(), path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def page_urls() -> list[tuple[str, str]]:
    """(URL name, route) of every page: the resolver walked, the API, its schema and the admin left out."""

    def walk(patterns, prefix: str, namespace: str | None):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                inner = ":".join(n for n in (namespace, entry.namespace) if n) or None
                yield from walk(entry.url_patterns, prefix + str(entry.pattern), inner)
            elif isinstance(entry, URLPattern):
                name = entry.name or str(entry.pattern)
                yield (f"{namespace}:{name}" if namespace else name), prefix + str(entry.pattern)

    return [(name, route) for name, route in walk(get_resolver().url_patterns, "", None) if not route.startswith(("api/v1/", "admin/"))]


def _api_path(template: str, ids: dict) -> str:
    nested = template.removeprefix("/api/v1/").split("{workflow_pk}/")[-1]
    own_id = {
        "event-triggers": ids["trigger"], "schedules": ids["schedule"], "webhooks": ids["webhook"],
        "executions": ids["run"], "credentials": ids["credential"], "templates": ids["template"],
        "work-items": ids["item"], "workflows": ids["workflow"],
    }[nested.strip("/").split("/")[0]] if "{id}" in template else None
    values = {
        "id": own_id, "workflow_pk": ids["workflow"], "cid": ids["comment"], "prefix": ids["key_prefix"],
        "nid": ids["notification"], "token": ids["webhook_token"], "slug": ids["subflow"], "node_id": "build",
        "name": "go", "share_id": ids["template_share"] if template.startswith("/api/v1/templates/") else ids["workflow_share"],
        "vid": ids["template_version"] if template.startswith("/api/v1/templates/") else ids["version"],
    }
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), template)


def _page_path(name: str, route: str, ids: dict) -> str:
    namespace = name.split(":")[0]
    pk = {"executions": ids["run"], "workflow_templates": ids["template"], "worklist": ids["item"]}.get(namespace, ids["workflow"])
    if name in ("workflow_templates:share",):
        pk = ids["template"]
    if name == "workflow_templates:save-as":
        pk = ids["workflow"]
    values = {
        "pk": pk, "step_id": ids["step"], "node_id": "build" if namespace == "executions" else "wait", "item_id": "a", "action": "claim",
        "vid": ids["template_version"] if namespace == "workflow_templates" else ids["version"],
    }
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), route)


#
# Asking
#


def ask_page(world: World, actor: str, method: str, path: str, data: dict | None = None):
    client = Client()
    if actor != ANONYMOUS:
        client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[actor]
    return client.get(path) if method == "GET" else client.post(path, data or {})


def body_of(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def outcome_matches(expected: str, status: int, *, page: bool, location: str = "") -> bool:
    if status >= 500:
        return False
    if expected == ANY:
        return True
    if expected == DENIED:
        return status in (401, 403) or (page and status == 302 and settings.LOGIN_URL in location)
    if expected == HIDDEN:
        return status in (403, 404)
    return status not in (401, 403, 404)


#
# The rules: one per API operation (by operationId) and per page (by URL name and method)
#

# alice's template is shared with vic (view) only; bob, who edits her workflow, has no share of it.
TEMPLATE_VIEW = rule(VIEWER, OWNER, SUPERUSER)
TEMPLATE_ADMIN = rule(ADMINISTERS)
# The work item is offered to alice and bob; superusers see every item.
WORK_ITEM = rule(EDITOR, OWNER, SUPERUSER)
WORK_ITEM_OFFERED = rule(EDITOR, OWNER)
NOBODY = rule()  # nobody in this world may (the own-thing and right-state cases are tested elsewhere)

API_RULES: dict[str, Rule] = {
    # Signing in, and what describes the API: anyone (wrong or missing credentials get a 4xx).
    **dict.fromkeys(["auth_jwt_create", "auth_jwt_refresh_create", "auth_jwt_revoke_create", "auth_token_create"], PUBLIC),
    **dict.fromkeys(["schema_export.json_retrieve", "schema_workflow_definition.json_retrieve"], PUBLIC),
    # A webhook delivery proves itself with its signature, not a session (401 unsigned).
    "hooks_create": PUBLIC,
    # One's own things: every signed-in user, filtered to what they may see.
    **dict.fromkeys([
        "activity_list", "ai_capabilities_retrieve", "ai_interpret_create", "ai_test_create", "ai_usage_retrieve", "ai_validate_create",
        "api_keys_list", "api_keys_create", "auth_token_revoke_create", "auth_token_rotate_create", "credentials_list",
        "executions_list", "work_items_list", "workflows_list", "templates_list", "templates_create",
        "metrics_anomalies_retrieve", "metrics_export.csv_retrieve", "metrics_failures_retrieve", "metrics_slowest_steps_retrieve",
        "metrics_summary_retrieve", "metrics_timeseries_retrieve",
        "notifications_list", "notifications_preferences_retrieve", "notifications_preferences_update",
        "notifications_preferences_partial_update", "notifications_mark_read", "notifications_unread_count_retrieve",
        "work_profile_retrieve", "work_profile_partial_update", "workflows_export_retrieve", "workflows_export_create",
        # Subflows are a library every signed-in user may read and add to; versions only by their owner.
        "subflows_list", "subflows_create", "subflows_retrieve",
    ], ANY_USER),
    **dict.fromkeys(["api_keys_retrieve", "api_keys_revoke_create", "notification_mark_read"], OWNER_ONLY),
    # Credentials are their owner's alone (superusers manage them in the admin site).
    **dict.fromkeys(["credentials_retrieve", "credentials_update", "credentials_partial_update", "credentials_destroy"], OWNER_ONLY),
    "credentials_create": rule(BUILDERS),
    "workflows_create": CREATE,
    "workflows_import_create": CREATE,
    "events_create": rule(RUNNERS),
    "subflows_versions_create": rule(ADMINISTERS),
    # alice's workflow and what hangs off it.
    **dict.fromkeys([
        "workflows_retrieve", "workflows_activity_list", "workflows_comments_list", "workflows_comments_retrieve",
        "workflows_comments_create", "workflows_validate_create", "workflows_versions_list", "workflows_versions_retrieve",
        "workflows_versions_diff_retrieve", "workflows_shares_list", "workflows_shares_retrieve", "workflows_save_as_template_create",
        "workflows_event_triggers_list", "workflows_event_triggers_retrieve", "workflows_schedules_list", "workflows_schedules_retrieve",
        "workflows_webhooks_list", "workflows_webhooks_retrieve",
        "executions_retrieve", "executions_chain_retrieve", "executions_dynamic_retrieve", "executions_events_list", "executions_state_retrieve",
    ], VIEW),
    # Only a comment's author changes or deletes it.
    **dict.fromkeys(["workflows_comments_partial_update", "workflows_comments_destroy"], OWNER_ONLY),
    **dict.fromkeys([
        "workflows_update", "workflows_partial_update", "workflows_edits_create", "workflows_versions_restore_create",
        "workflows_event_triggers_create", "workflows_event_triggers_update", "workflows_event_triggers_partial_update",
        "workflows_event_triggers_destroy", "workflows_schedules_create", "workflows_schedules_update", "workflows_schedules_partial_update",
        "workflows_schedules_destroy", "workflows_webhooks_create", "workflows_webhooks_update", "workflows_webhooks_partial_update",
        "workflows_webhooks_destroy", "workflows_webhooks_rotate_secret_create",
    ], CHANGE),
    "workflows_runs_create": RUN,
    **dict.fromkeys(["workflows_destroy", "workflows_shares_create", "workflows_shares_partial_update", "workflows_shares_destroy"], ADMIN),
    # Acting on alice's run: alice, or whoever administers the workflow (an editor needs the operator role).
    **dict.fromkeys([
        "executions_cancel_create", "executions_pause_create", "executions_resume_create", "executions_retry_create",
        "executions_retry_failed_create", "executions_retry_with_changes_create", "executions_signals_create",
    ], ACT_ON_RUN),
    # alice's template.
    **dict.fromkeys([
        "templates_retrieve", "templates_instantiate_create", "templates_reviews_list", "templates_reviews_create", "templates_reviews_destroy",
        "templates_shares_list", "templates_shares_retrieve", "templates_versions_list", "templates_versions_diff_retrieve",
    ], TEMPLATE_VIEW),
    **dict.fromkeys([
        "templates_update", "templates_partial_update", "templates_destroy", "templates_shares_create", "templates_shares_partial_update",
        "templates_shares_destroy", "templates_versions_restore_create",
    ], TEMPLATE_ADMIN),
    # The work item of alice's run.
    **dict.fromkeys(["work_items_retrieve", "work_items_complete_create", "work_items_release_create", "work_items_start_create"], WORK_ITEM),
    **dict.fromkeys(["work_items_claim_create", "work_items_decline_create"], WORK_ITEM_OFFERED),
    "work_items_reassign_create": rule(ADMINISTERS),
}

# Bodies that pass validation, for operations whose permission check comes after it (so that a
# refusal is the permission's, not the body's). Others get {}.
BODIES: dict[str, dict] = {
    "workflows_create": {"name": "another"},
    "templates_create": {"name": "another template", "definition": PLAIN},
    "credentials_create": {"name": "other", "kind": "bearer", "secret": "zanzibar-credential-secret"},
    "events_create": {"type": "zanzibar.event", "payload": {}},
    "subflows_versions_create": {"graph": SUBFLOW_GRAPH},
    "workflows_comments_partial_update": {"body": "edited"},
    "work_items_reassign_create": {"user": "bob"},
    "workflows_shares_create": {"user": "charlie", "level": "view"},
    "templates_shares_create": {"user": "charlie", "level": "view"},
    "workflows_shares_partial_update": {"level": "change"},
    "templates_shares_partial_update": {"level": "change"},
    "workflows_schedules_create": {"cron": "0 4 * * *"},
    "workflows_event_triggers_create": {"event_type": "zanzibar.other"},
}

NOT_SERVED = "not served"  # the page does not answer this method: 405 (or the login page first)


def page(get: Rule | str = NOT_SERVED, post: Rule | str = NOT_SERVED) -> dict[str, Rule | str]:
    return {"GET": get, "POST": post}


PAGE_RULES: dict[str, dict[str, Rule | str]] = {
    "schema": page(PUBLIC), "swagger-ui": page(PUBLIC),
    "login": page(PUBLIC, PUBLIC), "logout": page(post=PUBLIC), "favicon.ico": page(PUBLIC, PUBLIC),
    "healthz": page(PUBLIC),
    # Readiness answers 503 while no worker answers (as in these tests): a load balancer reads it.
    "readyz": page(HEALTH),
    # Prometheus scrapes with its token from an allowed address; a session is not enough.
    "prometheus-metrics": page(NOBODY),
    "home": page(ANY_USER), "workflows:list": page(ANY_USER), "workflows:help": page(ANY_USER),
    "executions:list": page(ANY_USER), "metrics:dashboard": page(ANY_USER), "worklist:inbox": page(ANY_USER),
    "worklist:availability": page(post=ANY_USER),
    "comments:activity": page(ANY_USER, ANY_USER), "comments:notifications": page(ANY_USER, ANY_USER),
    "transfer:export": page(ANY_USER, ANY_USER), "transfer:import": page(ANY_USER, CREATE),
    "workflow_templates:library": page(ANY_USER, ANY_USER),
    "workflows:create": page(CREATE, CREATE),
    **dict.fromkeys([
        "workflows:detail", "workflows:graph", "metrics:workflow-panel", "triggers:workflow-triggers",
        "executions:detail", "executions:live", "executions:step", "executions:dynamic", "executions:dynamic-item",
        "executions:replay", "executions:replay-export",
    ], page(VIEW)),
    **dict.fromkeys([
        "versions:history", "versions:diff-graph", "comments:workflow-comments", "comments:workflow-activity", "workflow_templates:save-as",
    ], page(VIEW, VIEW)),
    "workflows:canvas": page(VIEW, CHANGE), "workflows:json": page(VIEW, CHANGE), "workflows:edit": page(CHANGE),
    "workflows:settings": page(post=CHANGE), "workflows:node": page(CHANGE, CHANGE),
    **dict.fromkeys(["workflows:node-add", "workflows:node-delete", "workflows:edge-add", "workflows:edge-delete", "versions:restore"], page(post=CHANGE)),
    "workflows:run": page(RUN, RUN),
    "sharing:workflow": page(VIEW, ADMIN),
    **dict.fromkeys([
        "executions:cancel", "executions:retry", "executions:pin", "executions:pause", "executions:signal", "executions:retry-failed",
    ], page(post=ACT_ON_RUN)),
    "executions:retry-with-changes": page(ACT_ON_RUN, ACT_ON_RUN),
    **dict.fromkeys([
        "workflow_templates:detail", "workflow_templates:graph", "workflow_templates:history", "workflow_templates:history-graph",
    ], page(TEMPLATE_VIEW, TEMPLATE_VIEW)),
    "workflow_templates:use": page(post=TEMPLATE_VIEW),
    # Reviews need to have used the template first: nobody here has (tests/collab covers reviewing).
    "workflow_templates:review": page(post=NOBODY),
    "workflow_templates:restore": page(post=TEMPLATE_ADMIN),
    "workflow_templates:share": page(TEMPLATE_VIEW, TEMPLATE_ADMIN),
    "worklist:act": page(post=WORK_ITEM),
}


def _api_cases():
    return [pytest.param(op, method, path, actor, id=f"{op}-{actor}") for op, method, path in api_operations() for actor in ACTORS]


def _page_cases():
    return [
        pytest.param(name, method, route, actor, id=f"{name} {method}-{actor}")
        for name, route in page_urls() for method in ("GET", "POST") for actor in ACTORS
    ]


def test_every_endpoint_has_a_rule():
    """A new operation or page fails here until it is classified in API_RULES or PAGE_RULES."""
    operations = {op for op, _method, _path in api_operations()}
    pages = {name for name, _route in page_urls()}
    assert sorted(operations - API_RULES.keys()) == [], "classify these API operations in API_RULES (docs/security.md, Proof)"
    assert sorted(pages - PAGE_RULES.keys()) == [], "classify these pages in PAGE_RULES (docs/security.md, Proof)"
    assert sorted(API_RULES.keys() - operations) == [] and sorted(PAGE_RULES.keys() - pages) == [], "rules for endpoints that are gone"


def _check(response, rule_: Rule | str, actor: str, *, page: bool) -> None:
    expected = rule_ if isinstance(rule_, str) else rule_.expect(actor)
    body = body_of(response)
    status = response.status_code
    shown = f"{actor}: {status} {body[:300]!r}"
    for secret in SECRETS:
        assert secret.encode() not in body, f"a credential's secret in the answer to {shown}"
    if actor not in SEES:
        for marker in MARKERS:
            assert marker.encode() not in body, f"{marker!r} (alice's) in the answer to {shown}"
    if rule_ == NOT_SERVED:
        assert status == 405 or (actor == ANONYMOUS and outcome_matches(DENIED, status, page=True, location=response.get("Location", ""))), shown
        return
    if isinstance(rule_, Rule) and rule_.reports_down and status == 503:
        return
    assert outcome_matches(expected, status, page=page, location=response.get("Location", "")), f"expected {expected}; {shown}"


@pytest.mark.parametrize(("operation", "method", "path", "actor"), _api_cases())
def test_api_operation(world, operation, method, path, actor):
    rule_ = API_RULES.get(operation)
    if rule_ is None:
        pytest.fail(f"{operation} has no rule in API_RULES")
    client = APIClient()
    if actor != ANONYMOUS:
        client.force_authenticate(world.users[actor])
    body = None if method in ("GET", "DELETE") else BODIES.get(operation, {})
    if operation == "workflows_import_create":
        body = {"document": world.ids["export"]}
    url = _api_path(path, world.ids)
    response = client.generic(method, url, data=json.dumps(body) if body is not None else "", content_type="application/json")
    _check(response, rule_, actor, page=False)


@pytest.mark.parametrize(("name", "method", "route", "actor"), _page_cases())
def test_page(world, name, method, route, actor):
    rules_ = PAGE_RULES.get(name)
    if rules_ is None:
        pytest.fail(f"{name} has no rule in PAGE_RULES")
    rule_ = rules_[method]
    data = None
    if name == "transfer:import" and method == "POST":  # a real export, imported for real: the role check comes after the plan
        data = {"document": SimpleUploadedFile("export.json", json.dumps(world.ids["export"]).encode()), "mode": "import"}
    response = ask_page(world, actor, method, _page_path(name, route, world.ids), data)
    _check(response, rule_, actor, page=True)


def test_the_markers_are_there_for_whoever_may_see_them(world):
    """The check that strangers never get the markers means something only if those who may do."""
    client = APIClient()
    client.force_authenticate(world.users[VIEWER])
    ids = world.ids
    assert "Zanzibar-matrix-workflow" in client.get(f"/api/v1/workflows/{ids['workflow']}/").content.decode()
    assert "zanzibar-run-input" in client.get(f"/api/v1/executions/{ids['run']}/").content.decode()
    assert "zanzibar-comment-body" in client.get(f"/api/v1/workflows/{ids['workflow']}/comments/").content.decode()
    assert "zanzibar-template-name" in client.get(f"/api/v1/templates/{ids['template']}/").content.decode()
