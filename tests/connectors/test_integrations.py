"""The integrations framework: a package registers activities (entry point or registry),
their params schema is used by the validator, and they run like built-ins."""

from __future__ import annotations

import sys
import textwrap

import pytest

from apps.executions.activities.plugins import GROUP, load_entry_points
from apps.workflows.definition.registry import get_activity
from apps.workflows.definition.validator import validate

from . import thirdparty_activity  # noqa: F401  (registers acme.greet)


def test_a_registered_activity_is_known_with_its_schema():
    spec = get_activity("acme.greet")
    assert spec is not None and spec.local and spec.params_schema["required"] == ["name"]


def test_the_validator_checks_its_params_against_its_schema():
    node = {"id": "g", "type": "activity", "activity": "acme.greet", "params": {"shout": "loud"}}
    problems = validate({"format_version": 1, "nodes": [node]})
    fields = {p.field for p in problems}
    assert {"params.name", "params.shout"} <= fields
    node["params"] = {"name": "$.input.who", "shout": True}
    assert validate({"format_version": 1, "nodes": [node]}) == []


def test_a_package_entry_point_is_loaded(tmp_path, monkeypatch):
    package = tmp_path / "acme_plugin_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent('''
        from apps.workflows.definition.registry import register_activity

        @register_activity("acme.ping", params_schema={"type": "object", "additionalProperties": False}, description="Ping.")
        def ping(params, ctx):
            return "pong"
    '''))
    dist = tmp_path / "acme_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{GROUP}]\nacme = acme_plugin_pkg\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert "acme" in load_entry_points()
        spec = get_activity("acme.ping")
        assert spec is not None and spec.fn({}, None) == "pong"
    finally:
        sys.modules.pop("acme_plugin_pkg", None)


@pytest.mark.django_db
def test_capabilities_and_the_dry_run_include_it(api):
    assert "acme.greet" in {a["name"] for a in api.get("/api/v1/ai/capabilities").json()["activities"]}
    definition = {"format_version": 1, "nodes": [{"id": "g", "type": "activity", "activity": "acme.greet", "params": {"name": "$.input.who"}, "output": "hello"}]}
    body = api.post("/api/v1/ai/test", {"definition": definition, "input": {"who": "Ada"}}, format="json").json()
    assert body["variables"]["hello"] == {"greeting": "Hello, Ada!"}
