"""Inputs schemathesis found answered with a 5xx (tests/security/test_schemathesis.py): each now
gets a 4xx that names the field."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_a_workload_limit_beyond_the_column_is_refused_by_name(api, alice):
    response = api.patch("/api/v1/work-profile/", {"max_open_items": 8796093022208}, format="json")
    assert response.status_code == 400 and "max_open_items" in response.json()
    assert api.get("/api/v1/work-profile/").json()["max_open_items"] is None  # nothing was saved


@pytest.mark.parametrize("report", ["summary", "anomalies", "timeseries", "failures", "slowest-steps", "export.csv"])
def test_a_metrics_range_near_the_beginning_of_time_is_refused_by_name(api, alice, report):
    # The summary compares with the period before; anomalies look 7 days further back.
    response = api.get(f"/api/v1/metrics/{report}", {"from": "0001-01-07T07:00:29+01:00", "to": "0015-01-01T03:26:20Z"})
    assert response.status_code == 400 and "from" in response.json()


@pytest.mark.parametrize(("field", "value"), [("to", "9999-12-31T23:59:59Z"), ("from", "2026-02-30")])
def test_a_metrics_moment_out_of_range_or_impossible_is_refused_by_name(api, alice, field, value):
    params = {"from": "2026-01-01", field: value}
    response = api.get("/api/v1/metrics/summary", params)
    assert response.status_code == 400 and field in response.json()
