"""Demo workflows from `examples/**/*.json`, loaded idempotently by slug.

An example file is a JSON object with "name" and "definition" (and optionally
"slug", "description", "tags"). Other JSON files under examples/ (inputs, data
for the examples) have no "definition" and are skipped.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils.text import slugify

from . import services
from .models import Subflow, Workflow
from .subflows import check_graph, create_subflow, publish_version

SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]+$")
Outcome = Literal["created", "updated", "unchanged"]


class ExampleError(ValueError):
    """An example file that cannot be loaded; the message names the file and the field."""


@dataclass(frozen=True)
class Example:
    path: Path
    name: str
    slug: str
    definition: dict[str, Any]
    description: str = ""
    tags: list[str] = field(default_factory=list)

    def fields(self) -> dict[str, Any]:
        """The workflow fields this example sets (everything but the slug)."""
        return {"name": self.name, "description": self.description, "tags": self.tags, "definition": self.definition}


def read_example(path: Path) -> Example | None:
    """Parse one file; return None for a data file (not an object with "name" and "definition").

    Raises ExampleError for unreadable JSON or an example whose fields have the wrong shape.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExampleError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "definition" not in data or "name" not in data:
        return None

    def fail(key: str, expected: str) -> ExampleError:
        return ExampleError(f"{path}: {key!r} must be {expected}, not {type(data.get(key)).__name__}")

    name = data["name"]
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise fail("name", "a non-empty string of at most 200 characters")
    definition = data["definition"]
    if not isinstance(definition, dict):
        raise fail("definition", "a JSON object")
    slug = data.get("slug") or slugify(name)
    if not isinstance(slug, str) or not SLUG_RE.match(slug) or len(slug) > 200:
        raise ExampleError(f"{path}: 'slug' must use only letters, digits, '-' and '_' (got {slug!r})")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("description", "a string")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise fail("tags", "a list of strings")
    return Example(path=path, name=name.strip(), slug=slug, definition=definition, description=description, tags=tags)


# examples/templates/ holds workflow templates (loaded by apps.templates.seeding), not workflows;
# examples/subflows/ holds shared subflows (seed_subflows, loaded before the workflows using them).
TEMPLATES_DIR = "templates"
SUBFLOWS_DIR = "subflows"


def read_examples(directory: Path) -> tuple[list[Example], list[Path]]:
    """Every example under `directory` (sorted by path, templates/ excluded) and the data files skipped.

    Raises ExampleError for a bad file or two files claiming the same slug, before
    anything is written.
    """
    examples: list[Example] = []
    skipped: list[Path] = []
    by_slug: dict[str, Path] = {}
    for path in sorted(directory.rglob("*.json")):
        if path.relative_to(directory).parts[0] in (TEMPLATES_DIR, SUBFLOWS_DIR):
            continue
        example = read_example(path)
        if example is None:
            skipped.append(path)
            continue
        if example.slug in by_slug:
            raise ExampleError(f"{path}: slug {example.slug!r} is already used by {by_slug[example.slug]}")
        by_slug[example.slug] = path
        examples.append(example)
    return examples, skipped


def seed_owner(username: str | None = None) -> User:
    """Who owns seeded workflows: `username` (must exist), else the admin user
    (WB_ADMIN_USER, default "admin"), else the first superuser, else a `demo` user (created, no password).
    """
    User = get_user_model()
    if username:
        try:
            return User.objects.get(username=username)
        except User.DoesNotExist:
            raise ExampleError(f"owner: there is no user named {username!r}") from None
    admin = User.objects.filter(username=os.environ.get("WB_ADMIN_USER") or "admin", is_superuser=True).first()
    if admin is None:
        admin = User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
    if admin is None:
        admin, created = User.objects.get_or_create(username="demo")
        if created:
            admin.set_unusable_password()
            admin.save(update_fields=["password"])
    return admin


def seed_example(example: Example, *, owner: User) -> tuple[Workflow, Outcome]:
    """Create the example's workflow, or bring the existing one (same slug) up to date.

    Changes are recorded as a new version authored by `owner`; an unchanged
    workflow is left alone (no new version). Takes the workflow's row lock.
    """
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().filter(slug=example.slug).first()
        if workflow is None:
            workflow = services.create_workflow(
                owner=owner,
                acting_user=owner,
                slug=example.slug,
                comment=f"Created from {example.path.name}",
                **example.fields(),
            )
            return workflow, "created"
        changes = {key: value for key, value in example.fields().items() if getattr(workflow, key) != value}
        if not changes:
            return workflow, "unchanged"
        services.update_workflow(
            workflow,
            acting_user=owner,
            comment=f"Updated {', '.join(sorted(changes))} from {example.path.name}",
            **changes,
        )
        return workflow, "updated"


def seed_subflows(directory: Path, *, owner: User) -> list[tuple[str, int, Outcome]]:
    """Load every `<directory>/*.json` ({"subflow": slug, "name", "description"?, "graph"}): a new
    slug is created as version 1, a changed graph is published as the next version, an unchanged
    one is left alone. Returns (slug, latest version, outcome) per file; raises ExampleError
    naming the file for a bad one (before writing anything)."""
    specs = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ExampleError(f"{path}: not valid JSON ({exc})") from None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("subflow"), str)
            or not isinstance(data.get("name"), str)
        ):
            raise ExampleError(f"{path}: a subflow file needs 'subflow' (its slug), 'name' and 'graph'")
        problems = check_graph(data.get("graph"))
        if problems:
            raise ExampleError(f"{path}: " + "; ".join(map(str, problems)))
        specs.append(data)
    done: list[tuple[str, int, Outcome]] = []
    with transaction.atomic():
        for data in specs:
            subflow = Subflow.objects.filter(slug=data["subflow"]).first()
            if subflow is None:
                create_subflow(
                    owner=owner,
                    slug=data["subflow"],
                    name=data["name"],
                    description=data.get("description", ""),
                    graph=data["graph"],
                    note="From examples",
                )
                done.append((data["subflow"], 1, "created"))
                continue
            latest = subflow.versions.order_by("-number").first()
            if latest is not None and latest.graph == data["graph"]:
                done.append((subflow.slug, latest.number, "unchanged"))
                continue
            version = publish_version(subflow, graph=data["graph"], acting_user=owner, note="From examples")
            done.append((subflow.slug, version.number, "updated"))
    return done
