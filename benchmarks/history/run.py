"""A year of history: fill a database with 90 days of runs, then time the pages that read them.

    .venv/bin/python benchmarks/history/run.py                          # 90 days x 10,000 runs a day (900,000)
    .venv/bin/python benchmarks/history/run.py --days 9 --per-day 2000  # a quick, smaller one
    .venv/bin/python benchmarks/history/run.py --measure-only           # time the pages on what is there
    .venv/bin/python benchmarks/history/run.py --refill                 # empty the database and fill again

The history goes to a database of its own, `wb_bench_history` (--database) on the embedded PostgreSQL
(or $DATABASE_URL's server): never the dev data. It is filled once; later runs with the same size
only measure. Rows are written with COPY (psycopg): runs spread over --workflows workflows (20, of
2-6 steps, some much busier than others) owned by --users users (5, one team, every workflow shared
with the team), statuses mixed (about 88 % completed, 8 % failed after a retried step, 2.5 % cancelled,
a few retried steps in completed runs, the last minutes' runs still running or waiting), created_at
spread over the days, each with its step runs, its event history and its metrics rows (as the
collector writes them), then the hourly rollups (as the periodic task builds them). A progress
counter shows the days written.

Then, through Django's test client with a logged-in session (DEBUG off, as in production), each page
is requested --warmup times and then --repeat times: p50 and p95 per page, the queries it made, and a
verdict against the target (300 ms p95). Exit status 1 if a page missed it.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "deploy" / "local"))

from benchmarks.harness import percentile, use_database  # noqa: E402

TARGET_MS = 300.0
SEED = 20261202
ACTIVITIES = [
    # (activity, params, typical duration ms)
    ("set", {"values": {"stage": "{{ $.input.order_id }}"}}, 2),
    ("noop", {"value": "$.input.order_id"}, 1),
    ("log", {"message": "order {{ $.input.order_id }}"}, 2),
    ("delay", {"seconds": 1}, 1000),
]
ERRORS = [("HttpError", "HTTP 503 from https://api.example.com/orders"), ("StepTimeout", "the step took longer than 30 s"),
          ("ValueError", "total must be a number"), ("WorkerLost", "the worker running the step stopped answering")]


def say(message: str) -> None:
    print(f"[history] {message}", flush=True)


#
# The fill
#


def _ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


def _json(value) -> str:
    # COPY's text format: backslashes are escapes (tabs and newlines never occur in json.dumps output).
    return json.dumps(value, separators=(",", ":")).replace("\\", "\\\\")


def make_people_and_workflows(n_users: int, n_workflows: int):
    from django.contrib.auth.models import Group, User

    from apps.sharing.services import share_workflow
    from apps.workflows.models import Workflow
    from apps.workflows.services import create_workflow

    team, _ = Group.objects.get_or_create(name="history-team")
    users = []
    for i in range(1, n_users + 1):
        user, created = User.objects.get_or_create(username=f"history-{i}", defaults={"email": f"history-{i}@example.com"})
        if created:
            user.set_password("history-password-1")
            user.save()
        user.groups.add(team)
        users.append(user)
    admin, created = User.objects.get_or_create(username="history-admin", defaults={"is_superuser": True, "is_staff": True})
    rng = random.Random(SEED)
    workflows = list(Workflow.objects.filter(name__startswith="History ").order_by("pk"))
    for i in range(len(workflows), n_workflows):
        steps = rng.randint(2, 6)
        nodes = []
        for s in range(steps):
            activity, params, _ = ACTIVITIES[rng.randrange(len(ACTIVITIES))]
            nodes.append({"id": f"step{s + 1}", "type": "activity", "activity": activity, "params": params,
                          "retry": {"max_attempts": 2, "interval": 1}})
        definition = {"format_version": 1, "nodes": nodes, "edges": [{"from": f"step{s}", "to": f"step{s + 1}"} for s in range(1, steps)]}
        owner = users[i % len(users)]
        workflow = create_workflow(owner=owner, name=f"History {i + 1:02d} order sync", definition=definition)
        share_workflow(workflow, team, "view", acting_user=owner)
        workflows.append(workflow)
    return users, admin, workflows[:n_workflows]


class Ids:
    """Ids handed out here (COPY gives explicit ids); the sequences are moved past them at the end."""

    def __init__(self, cursor, table: str):
        self.table = table
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")
        self.next = cursor.fetchone()[0] + 1

    def take(self) -> int:
        value = self.next
        self.next += 1
        return value

    def sync(self, cursor) -> None:
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{self.table}', 'id'), %s)", [max(self.next - 1, 1)])


EXECUTION_COLUMNS = ("id, definition, status, trigger, input, variables, output, error, created_at, started_at, finished_at, last_seq, pinned, "
                     "correlation_id, created_by_id, workflow_id, pending_signals, queue")
STEP_COLUMNS = ("id, execution_id, node_id, node_type, activity, scope, attempt, status, input, output, error, state, logs, advanced, in_chord, "
                "task_id, worker, created_at, dispatched_at, started_at, heartbeat_at, finished_at")
EVENT_COLUMNS = "id, execution_id, seq, type, node_id, scope, step_id, payload, actor, created_at"
EMETRIC_COLUMNS = "execution_id, workflow_id, status, trigger, error_type, created_at, started_at, finished_at, duration_ms, step_count, correlation_id"
SMETRIC_COLUMNS = "execution_id, workflow_id, node_id, node_type, activity, attempt, status, error_type, started_at, finished_at, duration_ms, queue_wait_ms"


def fill_day(day: int, args, now: float, workflows, users, rng: random.Random, ids: dict, cursor) -> int:
    """Write one day's runs (day 0 is the oldest); returns the rows written."""
    day_start = now - (args.days - day) * 86400
    buffers = {name: io.StringIO() for name in ("execution", "step", "event", "emetric", "smetric")}
    ex_w, st_w, ev_w, em_w, sm_w = (buffers[n].write for n in ("execution", "step", "event", "emetric", "smetric"))
    rows = 0
    weights = [1.0 / (i + 1) for i in range(len(workflows))]  # a few busy workflows, a long tail of quiet ones
    picks = rng.choices(range(len(workflows)), weights=weights, k=args.per_day)
    created_times = sorted(day_start + rng.random() * 86400 for _ in range(args.per_day))
    worker_names = [f"celery@worker-{w}" for w in range(1, 5)]
    for n in range(args.per_day):
        workflow, definition, plan = workflows[picks[n]]
        user_id = users[(picks[n] + n) % len(users)]
        created = created_times[n]
        execution_id = ids["execution"].take()
        trigger = rng.choices(("manual", "api", "schedule", "webhook"), (30, 40, 25, 5))[0]
        correlation = f"req-{execution_id:x}"
        order = rng.randrange(10_000, 99_999)
        age = now - created
        roll = rng.random()
        if age < 900:  # the last quarter of an hour: still going
            status = "running" if roll < 0.7 else "waiting"
        elif roll < 0.08:
            status = "failed"
        elif roll < 0.105:
            status = "cancelled"
        else:
            status = "completed"
        started = created + rng.uniform(0.005, 0.05)
        clock = started
        seq = 1
        rows += 1
        ev_w(f"{ids['event'].take()}\t{execution_id}\t1\texecution_started\t\t\t\\N\t{_json({'input': {'order_id': order}, 'trigger': trigger})}\t\t{_ts(started)}\n")
        stop_at = len(plan) if status == "completed" else rng.randrange(len(plan)) if status in ("failed", "cancelled") else rng.randrange(len(plan))
        error = None
        step_count = 0
        for index, (node_id, activity, typical) in enumerate(plan):
            if index > stop_at:
                break
            last = index == stop_at
            if last and status == "completed":
                break
            # attempts: (outcome) per attempt
            if last and status == "failed":
                outcomes = ["failed", "failed"]
            elif last and status == "cancelled":
                outcomes = ["cancelled"]
            elif last:  # running or waiting
                outcomes = ["running" if status == "running" else "waiting"]
            elif rng.random() < 0.03:
                outcomes = ["failed", "completed"]
            else:
                outcomes = ["completed"]
            for attempt, outcome in enumerate(outcomes, start=1):
                step_id = ids["step"].take()
                dispatched = clock + rng.uniform(0.001, 0.01)
                step_started = dispatched + rng.uniform(0.001, 0.05)
                duration = typical / 1000 * rng.lognormvariate(0, 0.5)
                finished = step_started + duration if outcome in ("completed", "failed", "cancelled") else None
                error_type, message = ERRORS[rng.randrange(len(ERRORS))] if outcome == "failed" else (None, None)
                step_error = _json({"type": error_type, "message": message}) if error_type else "\\N"
                output = _json({"order_id": order, "ok": True}) if outcome == "completed" else "\\N"
                worker = rng.choice(worker_names)
                st_w(f"{step_id}\t{execution_id}\t{node_id}\tactivity\t{activity}\t\t{attempt}\t{outcome}\t{_json({'order_id': order})}\t{output}\t{step_error}\t"
                     f"{{}}\t[]\tt\tf\t{step_id:032x}\t{worker}\t{_ts(clock)}\t{_ts(dispatched)}\t{_ts(step_started)}\t"
                     f"{_ts(finished if finished else step_started)}\t{_ts(finished) if finished else chr(92) + 'N'}\n")
                seq += 1
                ev_w(f"{ids['event'].take()}\t{execution_id}\t{seq}\tstep_started\t{node_id}\t\t{step_id}\t{_json({'attempt': attempt, 'worker': worker})}\t\t{_ts(step_started)}\n")
                rows += 2
                if finished:
                    seq += 1
                    payload = {"attempt": attempt, "output": {"order_id": order, "ok": True}} if outcome == "completed" else \
                        {"attempt": attempt, "error": {"type": error_type, "message": message}} if outcome == "failed" else {"reason": "cancelled by a user"}
                    ev_w(f"{ids['event'].take()}\t{execution_id}\t{seq}\tstep_{outcome}\t{node_id}\t\t{step_id}\t{_json(payload)}\t"
                         f"{'history-1' if outcome == 'cancelled' else ''}\t{_ts(finished)}\n")
                    sm_w(f"{execution_id}\t{workflow}\t{node_id}\tactivity\t{activity}\t{attempt}\t{outcome}\t{error_type or ''}\t{_ts(step_started)}\t{_ts(finished)}\t"
                         f"{(finished - step_started) * 1000:.3f}\t{(step_started - dispatched) * 1000:.3f}\n")
                    step_count += 1
                    rows += 2
                    clock = finished + (1.0 if outcome == "failed" and attempt < len(outcomes) else 0)  # the retry's backoff
                if outcome == "failed" and attempt == len(outcomes):
                    error = {"type": error_type, "message": message, "node": node_id}
        finished_at = None
        if status in ("completed", "failed", "cancelled"):
            finished_at = clock + rng.uniform(0.001, 0.01)
            seq += 1
            ev_w(f"{ids['event'].take()}\t{execution_id}\t{seq}\texecution_{status}\t\t\t\\N\t"
                 f"{_json({'error': error} if error else {'output': {'order_id': order, 'status': 'synced'}} if status == 'completed' else {'reason': 'cancelled by a user'})}\t"
                 f"{'history-1' if status == 'cancelled' else ''}\t{_ts(finished_at)}\n")
            em_w(f"{execution_id}\t{workflow}\t{status}\t{trigger}\t{error['type'] if error else ''}\t{_ts(created)}\t{_ts(started)}\t{_ts(finished_at)}\t"
                 f"{(finished_at - started) * 1000:.3f}\t{step_count}\t{correlation}\n")
            rows += 2
        output = _json({"order_id": order, "status": "synced"}) if status == "completed" else "\\N"
        ex_w(f"{execution_id}\t{definition}\t{status}\t{trigger}\t{_json({'order_id': order})}\t{_json({'order_id': order, 'stage': order})}\t{output}\t"
             f"{_json(error) if error else chr(92) + 'N'}\t{_ts(created)}\t{_ts(started)}\t{_ts(finished_at) if finished_at else chr(92) + 'N'}\t{seq}\tf\t"
             f"{correlation}\t{user_id}\t{workflow}\t[]\t\n")
        rows += 1
    for table, columns, name in (
        ("executions_execution", EXECUTION_COLUMNS, "execution"),
        ("executions_steprun", STEP_COLUMNS, "step"),
        ("executions_executionevent", EVENT_COLUMNS, "event"),
        ("metrics_executionmetric", EMETRIC_COLUMNS, "emetric"),
        ("metrics_stepmetric", SMETRIC_COLUMNS, "smetric"),
    ):
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            copy.write(buffers[name].getvalue())
    return rows


def fill(args, database_url: str) -> None:
    import psycopg
    from django.db import connection

    from apps.executions.models import Execution

    users, _admin, workflows = make_people_and_workflows(args.users, args.workflows)
    have = Execution.objects.count()
    wanted = args.days * args.per_day
    if have and not args.refill:
        if have >= wanted:
            say(f"{have:,} runs already there (wanted {wanted:,}): not filling again (--refill to start over)")
            return
        say(f"{have:,} runs there, fewer than {wanted:,}: emptying and filling again")
    connection.close()
    plans = []
    for workflow in workflows:
        plan = [(node["id"], node["activity"], next(t for a, _, t in ACTIVITIES if a == node["activity"])) for node in workflow.definition["nodes"]]
        plans.append((workflow.pk, _json(workflow.definition), plan))
    user_ids = [u.pk for u in users]
    rng = random.Random(SEED)
    now = time.time()
    started = time.monotonic()
    total_rows = 0
    with psycopg.connect(database_url, autocommit=False) as conn, conn.cursor() as cursor:
        cursor.execute("TRUNCATE executions_execution, executions_steprun, executions_executionevent, metrics_executionmetric, "
                       "metrics_stepmetric, metrics_hourlyrollup, metrics_stephourlyrollup, metrics_dailyrollup, metrics_stepdailyrollup, "
                       "metrics_rollupstate CASCADE")
        conn.commit()
        ids = {name: Ids(cursor, table) for name, table in (("execution", "executions_execution"), ("step", "executions_steprun"),
                                                             ("event", "executions_executionevent"))}
        for day in range(args.days):
            total_rows += fill_day(day, args, now, plans, user_ids, rng, ids, cursor)
            for i in ids.values():
                i.sync(cursor)
            conn.commit()
            elapsed = time.monotonic() - started
            runs = (day + 1) * args.per_day
            eta = elapsed / (day + 1) * (args.days - day - 1)
            print(f"\r[history] day {day + 1}/{args.days}: {runs:,} runs, {total_rows:,} rows, {runs / elapsed:,.0f} runs/s, "
                  f"{elapsed:,.0f} s, about {eta:,.0f} s to go   ", end="", flush=True)
        print(flush=True)
        say(f"filled {args.days * args.per_day:,} runs ({total_rows:,} rows) in {time.monotonic() - started:,.0f} s; VACUUM ANALYZE")
        conn.autocommit = True
        for table in ("executions_execution", "executions_steprun", "executions_executionevent", "metrics_executionmetric", "metrics_stepmetric"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    say(f"fill done in {time.monotonic() - started:,.0f} s")


def ensure_rollups() -> None:
    """The hourly rollups (runs and steps) the periodic task `rollup_and_prune` keeps (every 10
    minutes) in a real installation: built here once, a day at a time, for the history that has
    none, then brought up to now and marked complete by the task's own roll_up_recent."""
    from django.db.models import Max, Min

    from apps.metrics import aggregation
    from apps.metrics.models import ExecutionMetric, StepDailyRollup, StepHourlyRollup

    if aggregation.rollups_complete_until() is not None and StepHourlyRollup.objects.exists() and StepDailyRollup.objects.exists():
        aggregation.roll_up_recent()
        return
    span = ExecutionMetric.objects.aggregate(first=Min("finished_at"), last=Max("finished_at"))
    if span["first"] is None:
        return
    start = span["first"].replace(minute=0, second=0, microsecond=0)
    days = math.ceil((span["last"] - start).total_seconds() / 86400)
    started = time.monotonic()
    for day in range(days + 1):
        aggregation.roll_up(start + timedelta(days=day), start + timedelta(days=day + 1))
        print(f"\r[history] hourly rollups (runs and steps): day {day + 1}/{days + 1}, {time.monotonic() - started:,.0f} s   ", end="", flush=True)
    print(flush=True)
    aggregation.mark_complete(start + timedelta(days=days + 1) - timedelta(days=1))
    aggregation.roll_up_recent()
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("metrics_hourlyrollup", "metrics_stephourlyrollup", "metrics_dailyrollup", "metrics_stepdailyrollup"):
            cursor.execute(f"VACUUM ANALYZE {table}")


#
# The measurements
#


def pages(workflows, run_id: int) -> list[tuple[str, str, str]]:
    """(group, name, url); the user pages as a team member, the admin as a superuser."""
    busy, quiet = workflows[0].pk, workflows[-1].pk
    return [
        ("ui", "executions list, first page", "/executions/"),
        ("ui", "executions list, status=failed", "/executions/?status=failed"),
        ("ui", "executions list, status=running (rare)", "/executions/?status=running"),
        ("ui", "executions list, one busy workflow", f"/executions/?workflow={busy}"),
        ("ui", "executions list, one quiet workflow, failed", f"/executions/?workflow={quiet}&status=failed"),
        ("ui", "executions list, page 10", "/executions/?page=10"),
        ("ui", "execution page (a finished run)", f"/executions/{run_id}/"),
        ("api", "API executions list, first page", "/api/v1/executions"),
        ("api", "API executions list, status=failed", "/api/v1/executions?status=failed"),
        ("api", "API executions list, one busy workflow", f"/api/v1/executions?workflow={busy}"),
        ("api", "API executions list, quiet workflow + failed", f"/api/v1/executions?workflow={quiet}&status=failed"),
        ("api", "API execution state", f"/api/v1/executions/{run_id}/state"),
        ("ui", "metrics dashboard, last day", "/metrics/"),
        ("ui", "metrics dashboard, last week", "/metrics/?range=week"),
        ("ui", "metrics dashboard, last month", "/metrics/?range=month"),
        ("ui", "metrics dashboard, last month, one workflow", f"/metrics/?range=month&workflow={busy}"),
        ("api", "API metrics summary, last day", "/api/v1/metrics/summary?range=day"),
        ("api", "API metrics summary, last month", "/api/v1/metrics/summary?range=month"),
        ("admin", "admin executions", "/admin/executions/execution/"),
        ("admin", "admin executions, status=failed", "/admin/executions/execution/?status__exact=failed"),
        ("admin", "admin executions, one workflow", f"/admin/executions/execution/?workflow__id__exact={busy}"),
        ("admin", "admin executions, search by id", f"/admin/executions/execution/?q={run_id}"),
        ("admin", "admin step runs", "/admin/executions/steprun/"),
        ("admin", "admin step runs, status=failed", "/admin/executions/steprun/?status__exact=failed"),
        ("admin", "admin step runs of one run", f"/admin/executions/steprun/?execution__id__exact={run_id}"),
        ("admin", "admin events", "/admin/executions/executionevent/"),
        ("admin", "admin events, type=step_failed", "/admin/executions/executionevent/?type__exact=step_failed"),
        ("admin", "admin events of one run", f"/admin/executions/executionevent/?execution__id__exact={run_id}"),
        ("admin", "admin execution metrics", "/admin/metrics/executionmetric/"),
        ("admin", "admin step metrics", "/admin/metrics/stepmetric/"),
        ("admin", "admin execution change page", f"/admin/executions/execution/{run_id}/change/"),
    ]


def measure(args) -> bool:
    from django.contrib.auth.models import User
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from apps.executions.models import Execution
    from apps.workflows.models import Workflow

    workflows = list(Workflow.objects.filter(name__startswith="History ").order_by("pk"))
    run = Execution.objects.filter(status="completed").order_by("-created_at").first()
    total = Execution.objects.count()
    say(f"measuring on {total:,} runs; {args.warmup} warm-up and {args.repeat} counted requests a page")
    user = Client()
    user.force_login(User.objects.get(username="history-1"))
    admin = Client()
    admin.force_login(User.objects.get(username="history-admin"))
    rows = []
    only = [s.lower() for s in args.only]
    for group, name, url in pages(workflows, run.pk):
        if only and not any(s in name.lower() for s in only):
            continue
        client = admin if group == "admin" else user
        for _ in range(args.warmup):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code, response.content[:500])
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        captured = list(queries.captured_queries)
        slowest = max(captured, key=lambda q: float(q["time"]), default=None)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        reset_queries()
        p50, p95 = percentile(times, 50), percentile(times, 95)
        rows.append((name, url, p50, p95, len(captured)))
        verdict = "holds" if p95 < TARGET_MS else "MISSED"
        print(f"  {name:52} p50 {p50:8.1f} ms  p95 {p95:8.1f} ms  {len(captured):3d} queries  {verdict}", flush=True)
        if args.explain and slowest:
            print(f"      slowest query {float(slowest['time']) * 1000:.0f} ms: {slowest['sql'][:400]}")
    missed = [r for r in rows if r[3] >= TARGET_MS]
    print()
    print(f"| page | URL | p50 ms | p95 ms | queries | target p95 | verdict |")
    print(f"|---|---|---|---|---|---|---|")
    for name, url, p50, p95, n in rows:
        print(f"| {name} | `{url}` | {p50:.1f} | {p95:.1f} | {n} | < {TARGET_MS:.0f} ms | {'holds' if p95 < TARGET_MS else '**missed**'} |")
    print()
    say(f"{len(rows) - len(missed)} of {len(rows)} pages under {TARGET_MS:.0f} ms p95" + (f"; missed: {', '.join(r[0] for r in missed)}" if missed else ""))
    return not missed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--per-day", type=int, default=10_000)
    parser.add_argument("--workflows", type=int, default=20)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--database", default="wb_bench_history")
    parser.add_argument("--refill", action="store_true", help="empty the database's runs and fill again")
    parser.add_argument("--fill-only", action="store_true")
    parser.add_argument("--measure-only", action="store_true")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--only", nargs="*", default=[], help="measure only pages whose name contains one of these")
    parser.add_argument("--explain", action="store_true", help="print each page's slowest query")
    args = parser.parse_args(argv)

    database_url = use_database(args.database)
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "workflowsite.settings",
        "DEBUG": "false",  # as in production: no query log, no debug toolbar
        "SECRET_KEY": os.environ.get("SECRET_KEY", "history-bench-only-" + "h" * 40),
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
        "API_THROTTLE_USER": "1000000/minute",
        "LOG_LEVEL": "WARNING",
    })
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not args.measure_only:
        fill(args, database_url)
    ensure_rollups()
    if args.fill_only:
        return 0
    return 0 if measure(args) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
