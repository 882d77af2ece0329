"""Templates: history, diff and restore outside the admin (pages and API), and ratings and
short reviews by people who used the template, shown in the library and usable as a sort."""

from __future__ import annotations

import copy

import pytest
from django.test import Client

from apps.sharing.shares import grant
from apps.templates.models import TemplateReview, WorkflowTemplate
from apps.templates.services import create_template, instantiate_template, update_template

from .conftest import DEFINITION

pytestmark = pytest.mark.django_db


def page_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def template(alice) -> WorkflowTemplate:
    """A public template with two versions: the second renames a node's message and adds a node."""
    template = create_template(owner=alice, name="Greeter", definition=DEFINITION, is_public=True, description="Says hi")
    changed = copy.deepcopy(DEFINITION)
    changed["nodes"][0]["params"]["message"] = "hello"
    changed["nodes"].append({"id": "bye", "type": "activity", "activity": "log", "params": {"message": "bye"}})
    changed["edges"].append({"from": "done", "to": "bye"})
    update_template(template, acting_user=alice, definition=changed, description="Says hi and bye")
    return template


#
# History
#


def test_the_history_page_lists_versions_and_shows_the_diff(alice, bob, template):
    page = page_client(bob).get(f"/templates/{template.pk}/versions/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Changes from version 1 to 2" in html
    assert "node <code>bye</code>" in html and "added" in html
    assert "params.message" in html and "Says hi and bye" in html
    assert "Restore" not in html  # bob may view, not change
    graph = page_client(bob).get(f"/templates/{template.pk}/versions/diff.svg")
    assert graph.status_code == 200 and graph["Content-Type"] == "image/svg+xml"
    assert f'href="/templates/{template.pk}/versions/"' in page_client(bob).get(f"/templates/{template.pk}/").content.decode()


def test_the_owner_restores_an_old_version_as_a_new_one(alice, template):
    from apps.templates.services import template_versions

    versions = list(template_versions(template))
    oldest = versions[-1]
    client = page_client(alice)
    assert "Restore" in client.get(f"/templates/{template.pk}/versions/").content.decode()
    response = client.post(f"/templates/{template.pk}/versions/{oldest.pk}/restore/")
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.definition == DEFINITION and template.description == "Says hi"
    html = client.get(f"/templates/{template.pk}/versions/").content.decode()
    assert "Restored version 1" in html and len(versions) == 2


def test_only_editors_restore_and_strangers_see_no_history(alice, bob, charlie, template):
    from apps.templates.services import template_versions

    oldest = list(template_versions(template))[-1]
    assert page_client(bob).post(f"/templates/{template.pk}/versions/{oldest.pk}/restore/").status_code == 403
    template.is_public = False
    template.save()
    for url in (f"/templates/{template.pk}/versions/", f"/templates/{template.pk}/versions/diff.svg"):
        assert page_client(charlie).get(url).status_code == 404
    assert page_client(charlie).post(f"/templates/{template.pk}/versions/{oldest.pk}/restore/").status_code == 404
    assert Client().get(f"/templates/{template.pk}/versions/").status_code == 302  # to the login page
    grant(template, bob, "change", acting_user=alice)
    assert page_client(bob).post(f"/templates/{template.pk}/versions/{oldest.pk}/restore/").status_code == 302


def test_the_history_api_lists_diffs_and_restores(api, api_as, charlie, template):
    versions = api.get(f"/api/v1/templates/{template.pk}/versions").json()
    assert [v["number"] for v in versions] == [2, 1] and versions[0]["author"] == "alice"
    old, new = versions[1]["id"], versions[0]["id"]
    diff = api.get(f"/api/v1/templates/{template.pk}/versions/diff", {"from": old, "to": new}).json()
    assert diff["summary"]["added"] >= 1 and any(f["field"] == "description" for f in diff["fields"])
    assert api.get(f"/api/v1/templates/{template.pk}/versions/diff").status_code == 400
    restored = api.post(f"/api/v1/templates/{template.pk}/versions/{old}/restore")
    assert restored.status_code == 201 and restored.json()["version"]["comment"] == "Restored version 1"
    template.is_public = False
    template.save()
    assert api_as(charlie).get(f"/api/v1/templates/{template.pk}/versions").status_code == 404
    assert api_as(charlie).post(f"/api/v1/templates/{template.pk}/versions/{old}/restore").status_code == 404


#
# Reviews
#


def test_someone_who_used_the_template_rates_and_reviews_it(bob, template):
    instantiate_template(template, user=bob)
    client = page_client(bob)
    assert "Rate this template" in client.get(f"/templates/{template.pk}/").content.decode()
    response = client.post(f"/templates/{template.pk}/review/", {"rating": "4", "text": "  Saved me an hour.  "})
    assert response.status_code == 302
    html = client.get(f"/templates/{template.pk}/").content.decode()
    assert "Saved me an hour." in html and "4.0 ★" in html and "from 1 review" in html and "Update review" in html
    # Posting again replaces the review.
    client.post(f"/templates/{template.pk}/review/", {"rating": "2", "text": ""})
    assert list(TemplateReview.objects.values_list("user__username", "rating", "text")) == [("bob", 2, "")]
    client.post(f"/templates/{template.pk}/review/", {"delete": "1"})
    assert not TemplateReview.objects.exists()


def test_a_bad_review_names_the_field_and_stores_nothing(bob, template):
    instantiate_template(template, user=bob)
    client = page_client(bob)
    response = client.post(f"/templates/{template.pk}/review/", {"rating": "9", "text": "x" * 600})
    assert response.status_code == 422
    html = response.content.decode()
    assert "from 1 to 5" in html and "500 characters" in html
    assert not TemplateReview.objects.exists()


def test_only_people_who_used_it_may_review(alice, bob, charlie, template, api_as):
    assert "can rate and review" in page_client(bob).get(f"/templates/{template.pk}/").content.decode()
    assert page_client(bob).post(f"/templates/{template.pk}/review/", {"rating": "5"}).status_code == 403
    assert api_as(bob).post(f"/api/v1/templates/{template.pk}/reviews", {"rating": 5}, format="json").status_code == 403
    template.is_public = False
    template.save()
    assert page_client(charlie).post(f"/templates/{template.pk}/review/", {"rating": "5"}).status_code == 404
    assert api_as(charlie).get(f"/api/v1/templates/{template.pk}/reviews").status_code == 404
    assert not TemplateReview.objects.exists()


def test_the_reviews_api(api_as, bob, template):
    instantiate_template(template, user=bob)
    client = api_as(bob)
    bad = client.post(f"/api/v1/templates/{template.pk}/reviews", {"rating": 0}, format="json")
    assert bad.status_code == 400 and "rating" in bad.json()
    made = client.post(f"/api/v1/templates/{template.pk}/reviews", {"rating": 5, "text": "Great"}, format="json")
    assert made.status_code == 201 and made.json()["user"] == "bob"
    assert client.get(f"/api/v1/templates/{template.pk}/reviews").json()[0]["text"] == "Great"
    body = client.get(f"/api/v1/templates/{template.pk}/").json()
    assert body["rating"] == 5.0 and body["review_count"] == 1
    assert client.delete(f"/api/v1/templates/{template.pk}/reviews").status_code == 204
    assert client.get(f"/api/v1/templates/{template.pk}/").json()["rating"] is None


def test_the_library_shows_ratings_and_sorts_by_them(alice, bob, charlie, api_as):
    names = {}
    for name, stars in (("Alpha", [2]), ("Bravo", [5, 4]), ("Charlie", [])):
        names[name] = create_template(owner=alice, name=name, definition=DEFINITION, is_public=True)
        for user, rating in zip((bob, charlie), stars):
            instantiate_template(names[name], user=user)
            TemplateReview.objects.create(template=names[name], user=user, rating=rating)
    html = page_client(bob).get("/templates/", {"sort": "rating", "view": "list"}).content.decode()
    assert html.index("Bravo") < html.index("Alpha") < html.index("Charlie")
    assert "4.5 ★" in html and "(2 reviews)" in html
    html = page_client(bob).get("/templates/", {"view": "list"}).content.decode()
    assert html.index("Alpha") < html.index("Bravo") < html.index("Charlie")
    listed = api_as(bob).get("/api/v1/templates/", {"ordering": "-rating"}).json()["results"]
    assert [t["name"] for t in listed] == ["Bravo", "Alpha", "Charlie"] and listed[0]["rating"] == 4.5


def test_the_library_query_count_does_not_grow_with_reviews(alice, bob, django_assert_max_num_queries):
    for i in range(5):
        t = create_template(owner=alice, name=f"T{i}", definition=DEFINITION, is_public=True)
        instantiate_template(t, user=bob)
        TemplateReview.objects.create(template=t, user=bob, rating=3)
    client = page_client(bob)
    with django_assert_max_num_queries(12):
        assert client.get("/templates/", {"sort": "rating"}).status_code == 200
