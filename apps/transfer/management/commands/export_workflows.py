"""`manage.py export_workflows SLUG … | --all [-o FILE] [--history]`"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from apps.transfer.services import export_workflows
from apps.workflows.models import Workflow


class Command(BaseCommand):
    help = "Write workflows (by slug, or --all) as one export document (JSON) to stdout or -o FILE."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slugs", nargs="*", help="Slugs of the workflows to export.")
        parser.add_argument("--all", action="store_true", help="Export every workflow.")
        parser.add_argument("-o", "--output", help="File to write (default: stdout).")
        parser.add_argument("--history", action="store_true", help="Include past runs (secrets redacted).")

    def handle(self, *args, **options) -> None:
        if options["all"] == bool(options["slugs"]):
            raise CommandError("give workflow slugs or --all (not both)")
        if options["all"]:
            workflows = list(Workflow.objects.order_by("pk"))
        else:
            by_slug = {w.slug: w for w in Workflow.objects.filter(slug__in=options["slugs"])}
            missing = [s for s in options["slugs"] if s not in by_slug]
            if missing:
                raise CommandError("no such workflow: " + ", ".join(missing))
            workflows = [by_slug[s] for s in options["slugs"]]
        document = export_workflows(workflows, include_history=options["history"], exported_by="manage.py")
        text = json.dumps(document, indent=2, ensure_ascii=False)
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
            self.stderr.write(self.style.SUCCESS(f"exported {len(workflows)} workflow(s) to {options['output']}"))
        else:
            sys.stdout.write(text + "\n")
