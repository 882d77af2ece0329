"""`manage.py import_workflows FILE [--on-conflict rename|skip] [--dry-run] [--owner NAME]`"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.transfer.services import import_document
from apps.workflows import jsontext
from apps.workflows.seeding import ExampleError, seed_owner


class Command(BaseCommand):
    help = "Import an export document; nothing is created when any problem is found (exit status 1)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path, help="The export document (JSON), or - for stdin.")
        parser.add_argument("--on-conflict", choices=["rename", "skip"], default="rename")
        parser.add_argument("--dry-run", action="store_true", help="Show what would happen; write nothing.")
        parser.add_argument("--owner", help="Username owning the new workflows (default: the admin user).")

    def handle(self, *args, **options) -> None:
        path: Path = options["file"]
        try:
            text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
            document = jsontext.loads(text)
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{path}: cannot read ({exc})") from None
        except ValueError as exc:
            raise CommandError(f"{path}: not valid JSON ({exc})") from None
        try:
            owner = seed_owner(options["owner"])
        except ExampleError as exc:
            raise CommandError(str(exc)) from None

        def progress(n: int, total: int, planned) -> None:
            self.stdout.write(f"[{n}/{total}] {planned.action:<7} {planned.slug}")

        result = import_document(
            document, user=owner, on_conflict=options["on_conflict"], dry_run=options["dry_run"], progress=progress
        )
        for problem in result.problems:
            self.stderr.write(self.style.ERROR(str(problem)))
        if not result.ok:
            raise CommandError(f"refused: {len(result.problems)} problem(s); nothing was imported")
        for note in result.notes:
            self.stdout.write(note)
        counts = result.counts
        if result.dry_run:
            for planned in result.plan:
                self.stdout.write(
                    f"would {planned.action:<7} {planned.original_slug}"
                    + (f" -> {planned.slug}" if planned.action == "rename" else "")
                )
        verb = "would import" if result.dry_run else "imported"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {counts['create'] + counts['rename']} workflow(s) owned by {owner.get_username()} "
                f"({counts['create']} new, {counts['rename']} renamed, {counts['skip']} skipped)"
            )
        )
