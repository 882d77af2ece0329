"""The JSON Schema of an export document (format_version 1), published at
/api/v1/schema/export.json and in docs/export-schema.json."""

from __future__ import annotations

FORMAT = "workflow-builder-export"
FORMAT_VERSION = 1

EXECUTION = {
    "type": "object",
    "description": "One past run (secrets redacted). Kept for the record; import does not recreate runs.",
    "properties": {
        "id": {"type": "integer"},
        "status": {"type": "string"},
        "trigger": {"type": "string"},
        "input": {},
        "output": {},
        "error": {},
        "created_at": {"type": "string"},
        "started_at": {"type": ["string", "null"]},
        "finished_at": {"type": ["string", "null"]},
        "steps": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["status"],
}

WORKFLOW = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "slug": {"type": "string", "pattern": r"^[-a-zA-Z0-9_]+$", "maxLength": 200},
        "description": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 50}},
        "definition": {
            "type": "object",
            "description": "A workflow definition (see /api/v1/schema/workflow-definition.json).",
        },
        "is_active": {"type": "boolean"},
        "triggers": {"type": "array", "items": {"type": "object"}},
        "executions": {"type": "array", "items": EXECUTION},
    },
    "required": ["name", "slug", "definition"],
    "additionalProperties": False,
}

EXPORT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "/api/v1/schema/export.json",
    "title": "Workflow Builder export document, format_version 1",
    "type": "object",
    "properties": {
        "format": {"const": FORMAT},
        "format_version": {"const": FORMAT_VERSION},
        "exported_at": {"type": "string", "description": "ISO 8601 time of the export."},
        "exported_by": {"type": "string"},
        "workflows": {"type": "array", "items": WORKFLOW, "minItems": 1},
    },
    "required": ["format", "format_version", "workflows"],
    "additionalProperties": False,
}


def published_export_schema() -> dict:
    return EXPORT_SCHEMA
