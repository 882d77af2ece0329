import logging
import os

from celery import Celery
from celery.signals import celeryd_after_setup

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflowsite.settings")

app = Celery("workflowsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger("workflow.capacity")

# Threads besides the pool's that hold a database connection in a worker process: the heartbeat,
# sweep and metrics loop (apps/executions/worker.py) and one spare for Celery's own callbacks.
WORKER_EXTRA_CONNECTIONS = 2


def worker_pool_size(concurrency: int, pool: str) -> int:
    """Database connections one worker process needs: a thread pool runs `concurrency` tasks at once in
    this process; prefork children (and solo) run one task each."""
    tasks_here = concurrency if any(kind in pool for kind in ("thread", "gevent", "eventlet")) else 1
    return tasks_here + WORKER_EXTRA_CONNECTIONS


@celeryd_after_setup.connect
def size_database_pool(sender=None, instance=None, **kwargs) -> None:
    """Give a worker's connection pool one connection per task it can run at once (plus its own threads),
    so a task never waits for a connection; WB_DB_POOL_MAX_SIZE sizes web processes."""
    from django.db import connections  # this module loads with workflowsite/__init__.py, before Django is set up

    db = connections["default"]
    options = db.settings_dict.get("OPTIONS", {}).get("pool")
    if not options or instance is None:
        return
    pool_cls = instance.pool_cls if isinstance(instance.pool_cls, str) else instance.pool_cls.__module__
    wanted = worker_pool_size(int(instance.concurrency or 1), pool_cls)
    if wanted <= options.get("max_size", 0):
        return
    options["max_size"] = wanted
    # The PostgreSQL backend's registry of open pools (private, so not in the stubs).
    pools = db._connection_pools  # type: ignore[attr-defined]
    if db.alias in pools:  # already opened (Django's checks at start-up): grow it in place
        pool = pools[db.alias]
        pool.resize(min(pool.min_size, wanted), wanted)
    logger.info("database pool of this worker: at most %s connections (%s x %s)", wanted, instance.concurrency, pool_cls)
