from celery import shared_task

from . import services


@shared_task(name=services.RUN_SCHEDULE_TASK, ignore_result=True)
def run_schedule(schedule_id: int) -> int | None:
    """Called by celery beat (a PeriodicTask per schedule)."""
    execution = services.run_schedule(schedule_id)
    return execution.pk if execution else None
