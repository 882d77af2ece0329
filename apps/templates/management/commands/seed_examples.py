"""`manage.py seed_examples`: load the demo workflows in examples/ (idempotent)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.templates.seeding import read_templates, seed_template
from apps.workflows.seeding import (
    SUBFLOWS_DIR,
    TEMPLATES_DIR,
    ExampleError,
    read_examples,
    seed_example,
    seed_owner,
    seed_subflows,
)


class Command(BaseCommand):
    help = (
        "Create or update a workflow for every examples/**/*.json file holding a 'name' and a "
        "'definition', matched by slug. Other JSON files (data for the examples) are skipped."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dir",
            type=Path,
            default=Path(settings.BASE_DIR) / "examples",
            help="Folder to read (default: examples/).",
        )
        parser.add_argument("--owner", help="Username owning new workflows (default: the admin user).")

    def handle(self, *args, **options) -> None:
        directory: Path = options["dir"]
        if not directory.is_dir():
            raise CommandError(f"--dir: {directory} is not a folder")
        try:
            examples, skipped = read_examples(directory)
            templates = read_templates(directory / TEMPLATES_DIR)
            owner = seed_owner(options["owner"])
        except ExampleError as exc:
            raise CommandError(str(exc)) from None
        counts: Counter[str] = Counter()
        # All or nothing: a failure half-way leaves the stored workflows as they were.
        with transaction.atomic():
            try:
                # Subflows first: the example workflows that use them are validated against them.
                for slug, number, outcome in seed_subflows(directory / SUBFLOWS_DIR, owner=owner):
                    self.stdout.write(f"{outcome:<9} subflow {slug} v{number}")
            except ExampleError as exc:
                raise CommandError(str(exc)) from None
            for example in examples:
                workflow, outcome = seed_example(example, owner=owner)
                counts[outcome] += 1
                self.stdout.write(f"{outcome:<9} #{workflow.pk:<5} {workflow.slug}")
            template_counts: Counter[str] = Counter()
            for spec in templates:
                template, outcome = seed_template(spec, owner=owner)
                template_counts[outcome] += 1
                self.stdout.write(f"{outcome:<9} template #{template.pk:<5} {template.slug}")
        for path in skipped:
            if options["verbosity"] >= 2:
                self.stdout.write(f"skipped   {path.relative_to(directory)} (no name/definition: a data file)")
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(examples)} example workflow(s) owned by {owner.get_username()}: "
                f"{counts['created']} created, {counts['updated']} updated, {counts['unchanged']} unchanged"
                + (f"; {len(skipped)} data file(s) skipped" if skipped else "")
            )
        )
        if templates:
            self.stdout.write(
                self.style.SUCCESS(
                    f"{len(templates)} public template(s): {template_counts['created']} created, "
                    f"{template_counts['updated']} updated, {template_counts['unchanged']} unchanged"
                )
            )
