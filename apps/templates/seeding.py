"""Built-in templates from examples/templates/*.json, loaded idempotently by slug
(by `manage.py seed_examples`), public and owned by the admin user.

Each file: name, slug, category (a Category value or label), description, tags,
definition, sample_input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from django.contrib.auth.models import User
from django.db import transaction

from apps.workflows.definition.validator import validate
from apps.workflows.seeding import SLUG_RE, ExampleError

from . import services
from .models import Category, WorkflowTemplate

Outcome = Literal["created", "updated", "unchanged"]
FIELDS = ("name", "category", "description", "tags", "definition", "sample_input")


def read_template_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExampleError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ExampleError(f"{path}: must be a JSON object")
    for key in ("name", "slug", "definition"):
        if key not in data:
            raise ExampleError(f"{path}: {key!r} is required")
    if not isinstance(data["slug"], str) or not SLUG_RE.match(data["slug"]):
        raise ExampleError(f"{path}: 'slug' must use only letters, digits, '-' and '_'")
    labels = {label.lower(): value for value, label in Category.choices}
    category = data.get("category", Category.CUSTOM)
    category = labels.get(str(category).lower(), category)
    if category not in Category.values:
        raise ExampleError(f"{path}: 'category' must be one of {', '.join(Category.labels)}")
    problems = validate(data["definition"])
    if problems:
        raise ExampleError(f"{path}: definition: {problems[0]}")
    return {
        "path": path,
        "slug": data["slug"],
        "name": data["name"],
        "category": category,
        "description": data.get("description", ""),
        "tags": list(data.get("tags", [])),
        "definition": data["definition"],
        "sample_input": data.get("sample_input", {}),
    }


def read_templates(directory: Path) -> list[dict[str, Any]]:
    if not directory.is_dir():
        return []
    specs, slugs = [], set()
    for path in sorted(directory.glob("*.json")):
        spec = read_template_file(path)
        if spec["slug"] in slugs:
            raise ExampleError(f"{path}: template slug {spec['slug']!r} is used twice")
        slugs.add(spec["slug"])
        specs.append(spec)
    return specs


def seed_template(spec: dict[str, Any], *, owner: User) -> tuple[WorkflowTemplate, Outcome]:
    with transaction.atomic():
        template = WorkflowTemplate.objects.select_for_update().filter(slug=spec["slug"]).first()
        fields = {key: spec[key] for key in FIELDS}
        if template is None:
            template = services.create_template(
                owner=owner, slug=spec["slug"], is_public=True, comment=f"Created from {spec['path'].name}", **fields
            )
            return template, "created"
        changes = {key: value for key, value in fields.items() if getattr(template, key) != value}
        if not template.is_public:
            changes["is_public"] = True
        if not changes:
            return template, "unchanged"
        services.update_template(template, acting_user=owner, comment=f"Updated from {spec['path'].name}", **changes)
        return template, "updated"
