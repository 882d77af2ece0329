"""python manage.py validate_workflow PATH.json — print every problem; exit 1 if any."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.workflows import jsontext
from apps.workflows.definition.validator import validate


class Command(BaseCommand):
    help = "Validate a workflow definition file (a definition, or a workflow file with a 'definition' key)."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--json", action="store_true", help="Print the problems as JSON.")

    def handle(self, *args, path: str, **options):
        try:
            data = jsontext.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise CommandError(f"{path} is not valid JSON: {exc}") from None
        definition = data.get("definition", data) if isinstance(data, dict) else data
        problems = validate(definition)
        if options["json"]:
            self.stdout.write(json.dumps([p.as_dict() for p in problems], indent=2))
        elif problems:
            self.stdout.write(f"{path}: {len(problems)} problem{'s' if len(problems) != 1 else ''}")
            for problem in problems:
                self.stdout.write(f"  - {problem}")
        else:
            self.stdout.write(f"{path}: valid")
        if problems:
            raise SystemExit(1)
