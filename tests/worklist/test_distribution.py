"""Work distribution on the real worker: capabilities and availability, offers filtered by team,
capability and open-item count, allocation strategies (offer to all, round robin, shortest
queue, random), re-offer on decline and on claim timeout, and why each person got an item."""

from __future__ import annotations

from collections import Counter

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from apps.executions.models import Execution
from apps.sharing.services import share_workflow
from apps.workflows.services import create_workflow
from apps.worklist.models import WorkerProfile, WorkItem
from tests.helpers import wait_until

from .conftest import approval_definition

pytestmark = pytest.mark.worker


@pytest.fixture
def reviewers(db):
    """carol, dave and erin, the 'reviewers' team."""
    team = Group.objects.create(name="reviewers")
    people = []
    for name in ("carol", "dave", "erin"):
        user = User.objects.create_user(name, f"{name}@example.com", f"{name}-password-1")
        user.groups.add(team)
        people.append(user)
    return people


def shared(alice, workflow):
    """Work is offered only to people who may view the workflow: share it with the reviewers."""
    share_workflow(workflow, Group.objects.get(name="reviewers"), "view", acting_user=alice)
    return workflow


def allocated(alice, allocation: dict, **kwargs):
    definition = approval_definition(groups=kwargs.pop("groups", ["reviewers"]), **kwargs)
    definition["nodes"][1]["allocation"] = allocation
    return shared(alice, create_workflow(owner=alice, name=f"distribute {allocation.get('strategy', 'x')} {Execution.objects.count()}", definition=definition))


def start_runs(api, workflow, n: int) -> list[WorkItem]:
    """Start n runs through the API, one after another; return their work items in order."""
    items = []
    for i in range(n):
        response = api.post(f"/api/v1/workflows/{workflow.pk}/runs", {"input": {"order": f"A-{i}", "amount": 10}}, format="json")
        assert response.status_code == 201, response.content
        items.append(wait_until(lambda: WorkItem.objects.filter(execution_id=response.json()["id"]).first(), message="the work item"))
    return items


def offered_to(item: WorkItem) -> list[str]:
    return sorted(u.username for u in WorkItem.objects.get(pk=item.pk).offered_users.all())


def test_round_robin_spreads_six_approvals_over_three_people_two_each(worker, alice, api, api_as, reviewers):
    workflow = allocated(alice, {"strategy": "round_robin"})
    items = start_runs(api, workflow, 6)
    assert [offered_to(i) for i in items] == [["carol"], ["dave"], ["erin"], ["carol"], ["dave"], ["erin"]]
    assert Counter(name for i in items for name in offered_to(i)) == {"carol": 2, "dave": 2, "erin": 2}
    # Six runs started at once offer at the same moment on the worker's threads: still two each.
    started = [api.post(f"/api/v1/workflows/{workflow.pk}/runs", {"input": {"order": f"B-{i}", "amount": 10}}, format="json").json()["id"] for i in range(6)]
    at_once = wait_until(lambda: (lambda found: found if len(found) == 6 else None)(list(WorkItem.objects.filter(execution_id__in=started))), message="six work items")
    assert Counter(name for i in at_once for name in offered_to(i)) == {"carol": 2, "dave": 2, "erin": 2}
    carol = [i for i in api_as(reviewers[0]).get("/api/v1/work-items").json()["results"] if i["id"] in {w.pk for w in items}]
    assert len(carol) == 2 and all("round robin" in i["why"] and "team reviewers" in i["why"] for i in carol)
    assert carol[0]["allocation"] is None  # the details are for the workflow's admins
    mine = api.get(f"/api/v1/work-items/{items[1].pk}").json()
    assert mine["allocation"]["strategy"] == "round_robin" and mine["allocation"]["reasons"]["dave"].startswith("round robin: next after carol")


def test_a_decline_re_offers_to_the_next_person_until_nobody_is_left(worker, alice, api, api_as, reviewers):
    carol, dave, erin = reviewers
    (item,) = start_runs(api, allocated(alice, {"strategy": "round_robin"}), 1)
    assert offered_to(item) == ["carol"]
    assert api_as(dave).get("/api/v1/work-items").json()["results"] == []
    assert api_as(carol).post(f"/api/v1/work-items/{item.pk}/decline").status_code == 200
    assert offered_to(item) == ["dave"]
    assert api_as(carol).get("/api/v1/work-items").json()["results"] == []
    (dave_sees,) = api_as(dave).get("/api/v1/work-items").json()["results"]
    assert dave_sees["id"] == item.pk and dave_sees["why"].startswith("re-offered after carol")
    # Dave claims, then declines: it goes on to erin; when erin declines too nobody is left.
    api_as(dave).post(f"/api/v1/work-items/{item.pk}/claim")
    api_as(dave).post(f"/api/v1/work-items/{item.pk}/decline")
    assert offered_to(item) == ["erin"] and WorkItem.objects.get(pk=item.pk).state == "offered"
    api_as(erin).post(f"/api/v1/work-items/{item.pk}/decline")
    item.refresh_from_db()
    assert "nobody left" in item.notes and [e["event"] for e in item.allocation["log"]] == ["offered", "declined", "re-offered", "declined", "re-offered", "declined", "re-offer failed"]
    # The owner can still hand it to someone.
    assert api.post(f"/api/v1/work-items/{item.pk}/reassign", {"user": "carol"}, format="json").json()["why"] is None  # alice is not offered it
    assert api_as(carol).get(f"/api/v1/work-items/{item.pk}").json()["why"] == "reassigned to you by alice"


def test_a_claim_held_too_long_is_re_offered_to_the_next_person(worker, alice, api, api_as, reviewers):
    carol = reviewers[0]
    (item,) = start_runs(api, allocated(alice, {"strategy": "round_robin", "claim_timeout": 0.5}), 1)
    assert api_as(carol).post(f"/api/v1/work-items/{item.pk}/claim").json()["state"] == "claimed"
    wait_until(lambda: offered_to(item) == ["dave"], message="the re-offer to dave")
    item.refresh_from_db()
    assert item.state == "offered" and item.claimed_by is None
    assert [e["event"] for e in item.allocation["log"]][-2:] == ["claim timed out", "re-offered"]
    assert api_as(carol).get("/api/v1/work-items").json()["results"] == []


def test_offers_are_filtered_by_capability_availability_and_open_items(worker, alice, api, reviewers):
    carol, dave, erin = reviewers
    frank = User.objects.create_user("frank", "frank@example.com", "frank-password-1")
    frank.groups.add(Group.objects.get(name="reviewers"))
    WorkerProfile.objects.create(user=carol, capabilities=["finance"])
    WorkerProfile.objects.create(user=dave, capabilities=["finance"], available=False)
    WorkerProfile.objects.create(user=erin, capabilities=["german"])
    WorkerProfile.objects.create(user=frank, capabilities=["finance", "german"], max_open_items=1)
    start_runs(api, shared(alice, create_workflow(owner=alice, name="frank's own", definition=approval_definition(users=["frank"]))), 1)
    (item,) = start_runs(api, allocated(alice, {"strategy": "offer_all", "capabilities": ["Finance"]}), 1)
    assert offered_to(item) == ["carol"]
    skipped = item.allocation["skipped"]
    assert skipped == {"dave": "unavailable", "erin": "lacks finance", "frank": "1 open items (limit 1)"}
    assert "offered to everyone eligible" in item.allocation["reasons"]["carol"] and "has finance" in item.allocation["reasons"]["carol"]


def test_shortest_queue_picks_whoever_has_the_fewest_open_items(worker, alice, api, reviewers):
    start_runs(api, shared(alice, create_workflow(owner=alice, name="carol's own", definition=approval_definition(users=["carol"]))), 1)
    items = start_runs(api, allocated(alice, {"strategy": "shortest_queue"}), 3)
    assert [offered_to(i) for i in items] == [["dave"], ["erin"], ["carol"]]
    assert items[0].allocation["reasons"]["dave"].startswith("shortest queue: 0 open items")


def test_random_offers_each_item_to_one_eligible_person(worker, alice, api, reviewers):
    items = start_runs(api, allocated(alice, {"strategy": "random", "max_open_items": 5}), 3)
    for item in items:
        (name,) = offered_to(item)
        assert name in {"carol", "dave", "erin"} and item.allocation["reasons"][name].startswith("random pick among 3 eligible")


def test_the_inbox_and_the_admin_say_why(worker, alice, api, reviewers, admin_user):
    (item,) = start_runs(api, allocated(alice, {"strategy": "round_robin"}), 1)
    client = Client()
    client.force_login(reviewers[0])
    html = client.get("/inbox/").content.decode()
    assert "Why you:" in html and "round robin: first in turn among 3 eligible (team reviewers)" in html
    client.force_login(admin_user)
    page = client.get(f"/admin/worklist/workitem/{item.pk}/change/").content.decode()
    assert "Why these people" in page and "round robin: first in turn" in page
    assert "round_robin" in client.get("/admin/worklist/workitem/").content.decode()


@pytest.mark.django_db
class TestDefinitionAndProfile:
    pytestmark = []

    def test_the_validator_names_the_allocation_field(self, api):
        definition = approval_definition(groups=["reviewers"])
        definition["nodes"][1]["allocation"] = {"strategy": "loudest"}
        problems = api.post("/api/v1/ai/validate", {"definition": definition}, format="json").json()["problems"]
        assert any(p["node"] == "review" and p["field"].startswith("allocation") for p in problems), problems
        definition = approval_definition()
        definition["nodes"][1]["allocation"] = {"strategy": "random"}
        problems = api.post("/api/v1/ai/validate", {"definition": definition}, format="json").json()["problems"]
        assert [(p["node"], p["field"]) for p in problems] == [("review", "assignees")]

    def test_people_set_their_availability_and_workload_limit(self, api, alice):
        assert api.get("/api/v1/work-profile").json() == {"username": "alice", "available": True, "away_until": None, "max_open_items": None, "capabilities": [], "open_items": 0}
        body = api.patch("/api/v1/work-profile", {"available": False, "max_open_items": 3, "capabilities": ["boss"]}, format="json").json()
        assert body["available"] is False and body["max_open_items"] == 3 and body["capabilities"] == []  # staff set capabilities
        bad = api.patch("/api/v1/work-profile", {"max_open_items": 0}, format="json")
        assert bad.status_code == 400 and "max_open_items" in bad.json()
        assert WorkerProfile.objects.get(user=alice).max_open_items == 3

    def test_the_inbox_form_sets_availability_and_names_a_bad_field(self, alice):
        client = Client()
        client.force_login(alice)
        assert client.post("/inbox/availability/", {"max_open_items": "2", "away_until": "2030-01-31T18:00"}).status_code == 302
        profile = WorkerProfile.objects.get(user=alice)
        assert profile.available is False and profile.max_open_items == 2 and profile.away_until.year == 2030
        response = client.post("/inbox/availability/", {"available": "on", "away_until": "next tuesday"})
        assert response.status_code == 422 and "Give a date and time" in response.content.decode()
        assert WorkerProfile.objects.get(user=alice).available is False  # nothing half-written

    def test_strangers_get_nothing(self, anon_api):
        assert anon_api.get("/api/v1/work-profile").status_code in (401, 403)
        assert anon_api.patch("/api/v1/work-profile", {"available": False}, format="json").status_code in (401, 403)
        assert Client().post("/inbox/availability/", {"available": "on"}).status_code == 302  # to the login page
        assert not WorkerProfile.objects.exists()

    def test_operators_edit_capabilities_in_the_admin(self, admin_user, alice):
        client = Client()
        client.force_login(admin_user)
        response = client.post("/admin/worklist/workerprofile/add/", {"user": alice.pk, "capabilities": "Finance, german ,finance", "available": "on"})
        assert response.status_code == 302, response.content.decode()[:2000]
        assert WorkerProfile.objects.get(user=alice).capabilities == ["finance", "german"]
        assert "finance, german" in client.get("/admin/worklist/workerprofile/").content.decode()
