"""python manage.py run_workflow SLUG_OR_PATH.json --input '{...}' [--wait] [--json]"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.executions.engine import orchestrator
from apps.executions.engine.redaction import redact
from apps.executions.models import Execution
from apps.workflows import jsontext
from apps.workflows.definition.validator import DefinitionError
from apps.workflows.models import Workflow
from apps.workflows.seeding import ExampleError, read_example, seed_example


class Command(BaseCommand):
    help = "Start a run of a workflow (by slug, or from a JSON file that is registered first); optionally wait for it."

    def add_arguments(self, parser):
        parser.add_argument(
            "workflow", help="A workflow slug, or a path to a workflow JSON file (name, slug, definition)."
        )
        parser.add_argument("--input", default="{}", help="The run input as JSON (or @file.json).")
        parser.add_argument(
            "--wait", action="store_true", help="Wait for the run to finish; exit 0 only if it completed."
        )
        parser.add_argument("--timeout", type=float, default=600.0, help="Seconds to wait at most (with --wait).")
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print one JSON object (execution_id, status, output, error, duration_ms).",
        )
        parser.add_argument("--user", default=None, help="Run as this user (default: the workflow's owner).")

    def handle(self, *args, **options):
        workflow = self._workflow(options["workflow"], options["user"])
        raw = options["input"]
        if raw.startswith("@"):
            raw = Path(raw[1:]).read_text()
        try:
            data = jsontext.loads(raw)
        except ValueError as exc:
            raise CommandError(f"--input is not valid JSON: {exc}") from None
        user = self._user(options["user"]) or workflow.owner
        try:
            execution = orchestrator.start_execution(workflow, data, acting_user=user, trigger="command")
        except DefinitionError as exc:
            raise CommandError(
                "the workflow definition is invalid:\n  " + "\n  ".join(str(p) for p in exc.problems)
            ) from None
        except orchestrator.InputError as exc:
            raise CommandError(f"invalid input: {exc.field}: {exc.message}") from None
        if not options["wait"]:
            self._print(execution, options["json"])
            return
        deadline = time.monotonic() + options["timeout"]
        shown = 0
        while True:
            execution.refresh_from_db()
            if not options["json"]:
                done = execution.steps.filter(status__in=["completed", "skipped"]).count()
                if done != shown:
                    shown = done
                    self.stderr.write(f"\r  {done} steps done ({execution.status})", ending="")
            if execution.is_finished:
                break
            if time.monotonic() > deadline:
                if not options["json"]:
                    self.stderr.write("")
                raise CommandError(f"execution {execution.pk} still {execution.status} after {options['timeout']:g} s")
            time.sleep(0.05)
        if not options["json"]:
            self.stderr.write("")
        self._print(execution, options["json"])
        if execution.status != "completed":
            sys.exit(1)

    def _print(self, execution: Execution, as_json: bool) -> None:
        body = {
            "execution_id": execution.pk,
            "workflow": execution.workflow.slug,
            "status": execution.status,
            "output": redact(execution.output),
            "error": redact(execution.error),
            "duration_ms": execution.duration_ms,
        }
        if as_json:
            self.stdout.write(json.dumps(body, default=str))
            return
        self.stdout.write(f"execution {execution.pk} of {execution.workflow.slug}: {execution.status}")
        if execution.duration_ms is not None:
            self.stdout.write(f"duration: {execution.duration_ms} ms")
        if execution.output is not None:
            self.stdout.write("output: " + json.dumps(body["output"], indent=2, default=str))
        if execution.error:
            self.stdout.write(
                f"error: {execution.error.get('type')}: {execution.error.get('message')} (node "
                f"{execution.error.get('node', '?')})"
            )

    def _user(self, username):
        if not username:
            return None
        try:
            return get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named {username!r}") from None

    def _workflow(self, ref: str, username) -> Workflow:
        path = Path(ref)
        if ref.endswith(".json") or path.exists():
            if not path.exists():
                raise CommandError(f"no such file: {ref}")

            try:
                example = read_example(path)
            except ExampleError as exc:
                raise CommandError(str(exc)) from None
            if example is None:
                raise CommandError(f"{ref}: a workflow file needs 'name' and 'definition'")
            owner = self._user(username) or get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
            if owner is None:
                raise CommandError("no user to own the workflow: pass --user or create a superuser")
            workflow, outcome = seed_example(example, owner=owner)
            self.stderr.write(f"workflow {workflow.slug} ({outcome})")
            return workflow
        try:
            return Workflow.objects.get(slug=ref)
        except Workflow.DoesNotExist:
            raise CommandError(f"no workflow with slug {ref!r} (and no such file)") from None
