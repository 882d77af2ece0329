import logging
import os

from celery import Celery
from celery.signals import celeryd_after_setup
from kombu.transport import redis as kombu_redis

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
    logger.info(
        "database pool of this worker: at most %s connections (%s x %s)", wanted, instance.concurrency, pool_cls
    )


def _survive_broker_loss_with_unacked_messages() -> None:
    """Keep a worker alive when Redis goes away while it holds unacknowledged messages.

    On a lost broker connection Celery closes the connection, and kombu's Redis transport (5.7) then
    (1) tries to put the worker's unacknowledged messages back in the queue, and (2) when a task that was
    running meanwhile finishes, acknowledges its message, both through the closed channel, whose
    connection is gone: `AttributeError: 'NoneType' object has no attribute 'hostname'` (or `'client'`),
    which Celery treats as unrecoverable, and the worker exits. tests/capacity/test_faults.py saw it every
    time steps were running when Redis stopped.

    Neither can be done through a closed channel, and neither is needed: the messages stay in Redis's
    unacked hash (restored after the visibility timeout, and then a duplicate the engine ignores), the
    engine's sweep sends a step that was dispatched but not started again after WB_REDISPATCH_AFTER, and
    a step that was running finishes in its thread and records its result in PostgreSQL. So skip them,
    say so, and let Celery reconnect.
    """
    qos = kombu_redis.QoS
    if getattr(qos, "_wb_tolerant", False):
        return

    def gone(channel) -> bool:
        return getattr(channel.connection, "client", None) is None

    original_restore, original_ack, original_reject = qos.restore_unacked, qos.ack, qos.reject

    def restore_unacked(self, client=None):
        if client is None and gone(self.channel):
            logger.warning(
                "broker connection lost: %s unacknowledged message(s) left in Redis for the sweep to recover",
                len(self._delivered),
            )
            self._delivered.clear()
            return None
        return original_restore(self, client)

    def ack(self, delivery_tag):
        if gone(self.channel):
            logger.warning(
                "a message of a closed broker connection was not acknowledged "
                "(its task finished after the connection was lost)"
            )
            self._delivered.pop(delivery_tag, None)
            return None
        return original_ack(self, delivery_tag)

    def reject(self, delivery_tag, requeue=False):
        if gone(self.channel):
            logger.warning(
                "a message of a closed broker connection was not rejected "
                "(its task finished after the connection was lost)"
            )
            self._delivered.pop(delivery_tag, None)
            return None
        return original_reject(self, delivery_tag, requeue=requeue)

    # Patching kombu's QoS in place (see the docstring): mypy rightly calls this unusual.
    qos.restore_unacked, qos.ack, qos.reject = restore_unacked, ack, reject  # type: ignore[method-assign]
    qos._wb_tolerant = True  # type: ignore[attr-defined]


_survive_broker_loss_with_unacked_messages()
