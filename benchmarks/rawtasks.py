"""Raw Celery tasks the engine benchmark compares against (imported by the benchmark's worker
with ``--include benchmarks.rawtasks``). Same app, broker, result backend and acks_late settings
as the engine's tasks; only the work differs: none at all."""

from __future__ import annotations

from workflowsite.celery import app


@app.task(name="bench.noop", ignore_result=False)
def noop(*args, **kwargs):
    return None
