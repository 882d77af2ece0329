"""Inputs schemathesis found answered with a 5xx (tests/security/test_schemathesis.py): each now
gets a 4xx that names the field."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_a_workload_limit_beyond_the_column_is_refused_by_name(api, alice):
    response = api.patch("/api/v1/work-profile/", {"max_open_items": 8796093022208}, format="json")
    assert response.status_code == 400 and "max_open_items" in response.json()
    assert api.get("/api/v1/work-profile/").json()["max_open_items"] is None  # nothing was saved
