"""python manage.py signal EXECUTION NAME --payload '{...}'"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.executions.engine.signals import SignalRejected
from apps.executions.models import Execution
from apps.executions.orchestration import send_signal_to_chain
from apps.workflows import jsontext


class Command(BaseCommand):
    help = "Send a signal (declared in the workflow, or pause / resume / cancel) to a run."

    def add_arguments(self, parser):
        parser.add_argument("execution", type=int)
        parser.add_argument("name")
        parser.add_argument("--payload", default="{}", help="The payload as JSON.")
        parser.add_argument("--as", dest="actor", default="cli", help="Who sends it (recorded in the history).")

    def handle(self, *args, execution: int, name: str, payload: str, actor: str, **options):
        try:
            data = jsontext.loads(payload)
        except ValueError as exc:
            raise CommandError(f"--payload is not valid JSON: {exc}") from None
        run = Execution.objects.filter(pk=execution).first()
        if run is None:
            raise CommandError(f"no execution {execution}")
        try:
            target, result = send_signal_to_chain(run, name, data, actor=actor)
        except SignalRejected as exc:
            raise CommandError((f"{exc.field}: " if exc.field else "") + exc.message) from None
        via = f" (it continued as new: sent to execution {target.pk})" if target.pk != run.pk else ""
        self.stdout.write(f"signal {name} sent to execution {execution}{via}: {result['delivered']}")
