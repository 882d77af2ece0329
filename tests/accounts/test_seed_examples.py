"""`manage.py seed_examples` loads examples/**/*.json as workflows, idempotently by slug."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from reversion.models import Version

from apps.workflows.models import Workflow
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db

HELLO = {
    "name": "Hello",
    "slug": "hello-test",
    "definition": {"format_version": 1, "nodes": [{"id": "greet", "type": "activity", "activity": "log"}], "edges": []},
    "tags": ["demo"],
}


def _seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_examples", *args, stdout=out)
    return out.getvalue()


def _write(folder: Path, name: str, data) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def examples(tmp_path) -> Path:
    _write(tmp_path, "hello.json", HELLO)
    _write(tmp_path, "nested/orders.json", {"name": "Order pipeline", "definition": {"format_version": 1, "nodes": [], "edges": []}})
    _write(tmp_path, "nested/orders-input.json", {"order_id": 7, "items": []})  # a data file
    _write(tmp_path, "list-data.json", [1, 2, 3])
    return tmp_path


def test_it_creates_a_workflow_per_example_owned_by_the_admin(examples, admin_user):
    output = _seed("--dir", str(examples))
    hello = Workflow.objects.get(slug="hello-test")
    assert hello.owner == admin_user
    assert hello.tags == ["demo"]
    assert Workflow.objects.get(slug="order-pipeline").name == "Order pipeline"  # slug from the name
    assert Workflow.objects.count() == 2
    assert f"created   #{hello.pk:<5} hello-test" in output
    assert "2 created, 0 updated, 0 unchanged; 2 data file(s) skipped" in output
    assert admin_user.has_perm("workflows.admin_workflow", hello)


def test_running_it_again_changes_nothing(examples, admin_user):
    _seed("--dir", str(examples))
    hello = Workflow.objects.get(slug="hello-test")
    updated_at = hello.updated_at
    output = _seed("--dir", str(examples))
    assert "0 created, 0 updated, 2 unchanged" in output
    assert Workflow.objects.count() == 2
    hello.refresh_from_db()
    assert hello.updated_at == updated_at
    assert Version.objects.get_for_object(hello).count() == 1


def test_a_changed_definition_updates_the_workflow_and_records_a_version(examples, admin_user):
    _seed("--dir", str(examples))
    changed = {**HELLO, "definition": {**HELLO["definition"], "nodes": []}}
    _write(examples, "hello.json", changed)
    output = _seed("--dir", str(examples))
    hello = Workflow.objects.get(slug="hello-test")
    assert hello.definition["nodes"] == []
    assert f"updated   #{hello.pk:<5} hello-test" in output
    versions = Version.objects.get_for_object(hello)
    assert versions.count() == 2
    assert "definition" in versions.first().revision.comment


def test_without_an_admin_it_uses_the_first_superuser(examples, alice):
    boss = User.objects.create_superuser("boss", "", "boss-password-1")
    _seed("--dir", str(examples))
    assert set(Workflow.objects.values_list("owner__username", flat=True)) == {boss.username}


def test_without_any_superuser_it_creates_a_demo_user_who_cannot_log_in(examples):
    _seed("--dir", str(examples))
    demo = User.objects.get(username="demo")
    assert not demo.has_usable_password()
    assert Workflow.objects.filter(owner=demo).count() == 2


def test_a_bad_example_stops_it_naming_file_and_field_before_writing(examples, admin_user):
    _write(examples, "zz-broken.json", {"name": "Broken", "definition": {}, "tags": "not-a-list"})
    with pytest.raises(CommandError, match=r"zz-broken\.json: 'tags' must be a list of strings"):
        _seed("--dir", str(examples))
    assert not Workflow.objects.exists()


def test_invalid_json_stops_it_naming_the_file(examples, admin_user):
    (examples / "bad.json").write_text("{ nope")
    with pytest.raises(CommandError, match=r"bad\.json: not valid JSON"):
        _seed("--dir", str(examples))


def test_two_files_with_one_slug_are_refused(examples, admin_user):
    _write(examples, "copy.json", HELLO)
    with pytest.raises(CommandError, match="slug 'hello-test' is already used by"):
        _seed("--dir", str(examples))


def test_an_unknown_owner_is_refused(examples):
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        _seed("--dir", str(examples), "--owner", "ghost")


def test_the_shipped_examples_load_and_reload_cleanly(admin_user):
    first = _seed()
    assert Workflow.objects.filter(slug="hello").exists()
    hello = Workflow.objects.get(slug="hello")
    assert hello.definition["nodes"][0]["params"]["message"] == 'Hello {{ $.input.name | "world" }}'
    assert "0 updated" in first and "0 unchanged" in first
    second = _seed()
    count = Workflow.objects.count()
    assert f"0 created, 0 updated, {count} unchanged" in second
    assert (ROOT / "examples" / "hello.json").exists()
