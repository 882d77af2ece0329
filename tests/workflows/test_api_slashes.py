"""Every API endpoint answers with or without its trailing slash (integrations guess; a POST must
never meet APPEND_SLASH, which is a 500 under DEBUG and a body-dropping redirect otherwise)."""

from __future__ import annotations

import pytest

from apps.templates.services import create_template
from apps.workflows.services import create_workflow

pytestmark = pytest.mark.django_db

DEFINITION = {"format_version": 1, "nodes": [{"id": "hello", "type": "activity", "activity": "log", "params": {"message": "hi"}}]}


@pytest.fixture
def workflow(alice):
    return create_workflow(owner=alice, name="Slashes", definition=DEFINITION)


def test_posts_work_in_both_spellings(api, alice, workflow):
    template = create_template(owner=alice, name="T", definition=DEFINITION, category="custom")
    for path, body, ok in [
        ("/api/v1/workflows", {"name": "No slash"}, 201),
        (f"/api/v1/workflows/{workflow.pk}/comments", {"body": "no slash"}, 201),
        (f"/api/v1/templates/{template.pk}/instantiate", {"name": "From T"}, 201),
        ("/api/v1/api-keys", {"name": "ci"}, 201),
        (f"/api/v1/workflows/{workflow.pk}/validate/", {}, 200),
        (f"/api/v1/workflows/{workflow.pk}/runs/", {"input": {}}, 201),
    ]:
        response = api.post(path, body, format="json")
        assert response.status_code == ok, (path, response.status_code, response.content[:300])


def test_gets_work_in_both_spellings_and_urls_keep_their_form(api, workflow):
    assert api.get("/api/v1/workflows").status_code == 200
    body = api.get(f"/api/v1/workflows/{workflow.pk}").json()
    assert body["url"].endswith(f"/api/v1/workflows/{workflow.pk}/")
    assert api.get(f"/api/v1/workflows/{workflow.pk}/versions").status_code == 200
    assert api.get("/api/v1/nothing-here").status_code == 404
