"""The whole local stack: `make run` (foreground), `make up` (background), `make down`.

    python deploy/local/run.py               # prepare, then web + worker + beat in the foreground
    python deploy/local/run.py --background  # the same, detached; returns once /healthz answers
    python deploy/local/run.py --stop        # stop that stack and the embedded servers

Preparing means: embedded PostgreSQL and Redis under .data/ (unless DATABASE_URL
/ REDIS_URL are set), `migrate`, `ensure_admin` and `seed_examples`. Running
means three child processes, their output interleaved with a prefix:

    web |     uvicorn (ASGI: HTTP and websockets), $WB_WEB_WORKERS processes (default 2) on 127.0.0.1:$PORT
              (default 8000); WB_WEB_SERVER=daphne for daphne (one process)
    worker |  celery worker, threads pool, $WB_WORKER_CONCURRENCY (default 8)
    beat |    celery beat (django_celery_beat's database scheduler)

Database connections are budgeted before anything starts: web processes x WB_DB_POOL_MAX_SIZE + the
worker's concurrency + 2 + beat's 2 must stay under the embedded PostgreSQL's max_connections
(WB_PG_MAX_CONNECTIONS, less a reserve for psql, migrations and a test session); see docs/operations.md.

Ctrl-C or SIGTERM stops every child; a child that dies stops the rest and the
stack exits non-zero. Running again reuses the data under .data/.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

sys.path.insert(0, str(Path(__file__).resolve().parent))
import devstack  # noqa: E402

ROOT = devstack.ROOT
DATA = devstack.DATA
LOG_DIR = DATA / "logs"
STACK_LOG = LOG_DIR / "stack.log"
PID_FILE = DATA / "stack.pid"
CHILDREN_FILE = DATA / "stack.children.json"
PASSWORD_FILE = DATA / "admin-password"
HOST = "127.0.0.1"
STOP_GRACE = 20.0  # seconds a child gets to finish (a worker finishing its tasks) before SIGKILL
READY_TIMEOUT = 180.0


def say(message: str) -> None:
    print(f"[run] {message}", flush=True)


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"[run] {name} must be an integer, not {raw!r}") from None


def relative(path: Path) -> str:
    """`path` relative to the checkout when inside it (shorter to read), else absolute."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_stack_pid() -> int | None:
    """The pid of a stack started from this checkout that is still running, else None."""
    try:
        pid = int(PID_FILE.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def site_answers(port: int, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def workers_ready(port: int, timeout: float = 3.0) -> bool:
    """/readyz says 200: database, Redis and at least one Celery worker answer."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


#
# Preparing: servers, schema, admin, demo data
#


def stack_env() -> dict[str, str]:
    """The environment every step and child runs with (starts the embedded servers when needed)."""
    env = {**os.environ, **devstack.ensure_env()}
    env.setdefault("DJANGO_SETTINGS_MODULE", "workflowsite.settings")
    env["PYTHONUNBUFFERED"] = "1"  # children's lines reach us as they are written
    return env


def manage(env: dict[str, str], *args: str) -> None:
    """Run one manage.py command in the foreground; exit non-zero naming it if it fails."""
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env)
    if result.returncode != 0:
        raise SystemExit(f"[run] `manage.py {' '.join(args)}` failed (exit {result.returncode})")


def prepare(env: dict[str, str]) -> None:
    say("migrating the database")
    manage(env, "migrate", "--noinput", "-v", "1")
    manage(env, "ensure_admin", "--password-file", str(PASSWORD_FILE))
    manage(env, "seed_examples")


def admin_credentials_hint() -> str:
    user = os.environ.get("WB_ADMIN_USER") or "admin"
    if os.environ.get("WB_ADMIN_PASSWORD"):
        return f"user {user}, password from WB_ADMIN_PASSWORD"
    if PASSWORD_FILE.exists():
        return f"user {user}, password in {relative(PASSWORD_FILE)}"
    return f"user {user} (password set before; `manage.py changepassword {user}` resets it)"


def banner(port: int) -> str:
    url = f"http://{HOST}:{port}/"
    return "\n".join(
        [
            f"Workflow Builder is ready at {url}",
            f"  admin     {url}admin/  ({admin_credentials_hint()})",
            f"  API docs  {url}api/docs/   schema {url}api/schema/",
        ]
    )


#
# Running: three children, supervised
#


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    pump: threading.Thread | None = field(default=None, repr=False)


WEB_SERVERS = ("uvicorn", "daphne")


def web_argv(python: str, host: str, port: int, *, workers: int, server: str | None = None) -> list[str]:
    """The ASGI server command (HTTP and websockets). uvicorn by default (measured against daphne, see
    benchmarks/README.md "HTTP server"); WB_WEB_SERVER=daphne for the other. daphne has no worker
    processes of its own: run more of them behind a proxy instead."""
    server = server or os.environ.get("WB_WEB_SERVER") or "uvicorn"
    if server not in WEB_SERVERS:
        raise SystemExit(f"[run] WB_WEB_SERVER must be one of {', '.join(WEB_SERVERS)}, not {server!r}")
    app = "workflowsite.asgi:application"
    if server == "daphne":
        return [python, "-m", "daphne", "-b", host, "-p", str(port), app]
    # Django speaks no lifespan protocol; the access log is ours (apps.metrics.middleware); X-Forwarded-For
    # is read by the app from WB_TRUSTED_PROXIES only (docs/security.md), so uvicorn must not rewrite the peer.
    return [python, "-m", "uvicorn", app, "--host", host, "--port", str(port), "--workers", str(workers),
            "--lifespan", "off", "--no-access-log", "--no-proxy-headers", "--timeout-graceful-shutdown", "10"]


def child_specs(port: int, concurrency: int) -> list[Child]:
    python = sys.executable
    return [
        Child("web", web_argv(python, HOST, port, workers=env_int("WB_WEB_WORKERS", 2))),
        Child(
            "worker",
            [python, "-m", "celery", "-A", "workflowsite", "worker", "-P", "threads", "-c", str(concurrency), "-l", "INFO"],
        ),
        # The scheduler class comes from settings (CELERY_BEAT_SCHEDULER); no pid or schedule file is needed.
        Child("beat", [python, "-m", "celery", "-A", "workflowsite", "beat", "-l", "INFO", "--pidfile="]),
    ]


class Supervisor:
    """Starts the children, prefixes their output, and stops them all together."""

    def __init__(self, children: list[Child], env: dict[str, str], port: int, out: IO[str]) -> None:
        self.children = children
        self.env = env
        self.port = port
        self.out = out
        self.write_lock = threading.Lock()
        self.stopping = threading.Event()
        self.signal_name: str | None = None

    def emit(self, prefix: str, line: str) -> None:
        with self.write_lock:
            self.out.write(f"{prefix} | {line.rstrip()}\n")
            self.out.flush()

    def _pump(self, child: Child) -> None:
        assert child.proc is not None and child.proc.stdout is not None
        for line in iter(child.proc.stdout.readline, ""):
            self.emit(child.name, line)

    def start(self) -> None:
        for child in self.children:
            # Each child in its own process group: Ctrl-C in the terminal reaches only us, and we
            # stop the children deliberately (SIGTERM, then SIGKILL after a grace period).
            child.proc = subprocess.Popen(
                child.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                process_group=0,
            )
            child.pump = threading.Thread(target=self._pump, args=(child,), name=f"pump-{child.name}", daemon=True)
            child.pump.start()
            self.emit("run", f"started {child.name} (pid {child.proc.pid}): {' '.join(child.argv[1:])}")
        CHILDREN_FILE.write_text(json.dumps({c.name: c.proc.pid for c in self.children if c.proc}))

    def _on_signal(self, signum: int, frame) -> None:
        self.signal_name = signal.Signals(signum).name
        self.stopping.set()

    def _announce_when_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.stopping.is_set() and time.monotonic() < deadline:
            if site_answers(self.port):
                for line in banner(self.port).splitlines():
                    self.emit("run", line)
                return
            time.sleep(0.25)

    def run(self) -> int:
        """Supervise until a signal (returns 0) or a child exits (returns 1)."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_signal)
        self.start()
        threading.Thread(target=self._announce_when_ready, name="ready", daemon=True).start()
        failed: Child | None = None
        while not self.stopping.wait(0.2):
            failed = next((c for c in self.children if c.proc and c.proc.poll() is not None), None)
            if failed is not None:
                break
        if failed is not None:
            self.emit("run", f"{failed.name} exited with status {failed.proc.returncode}: stopping the others")
        else:
            self.emit("run", f"{self.signal_name or 'stop'} received: stopping")
        self.stop()
        return 1 if failed is not None else 0

    def stop(self) -> None:
        live = [c for c in self.children if c.proc and c.proc.poll() is None]
        for child in live:
            try:
                os.killpg(child.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_GRACE
        for child in live:
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.emit("run", f"{child.name} did not stop within {STOP_GRACE:.0f} s: killing it")
                try:
                    os.killpg(child.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                child.proc.wait(5)
        for child in self.children:
            if child.pump is not None:
                child.pump.join(2)
        self.emit("run", "stopped")


# Connections left for everything else on the server: psql, migrations, a test session, a benchmark.
RESERVED_CONNECTIONS = 60
BEAT_CONNECTIONS = 2


def connection_budget(concurrency: int) -> tuple[int, int | None]:
    """(connections this stack may open at most, the server's limit for it or None when not ours to know)."""
    web = env_int("WB_WEB_WORKERS", 2) if (os.environ.get("WB_WEB_SERVER") or "uvicorn") == "uvicorn" else 1
    needed = web * env_int("WB_DB_POOL_MAX_SIZE", 10) + concurrency + 2 + BEAT_CONNECTIONS
    if os.environ.get("DATABASE_URL"):
        return needed, None  # an external server: its operator sizes max_connections
    return needed, devstack.max_connections_wanted() - RESERVED_CONNECTIONS


def check_budget(concurrency: int) -> None:
    needed, limit = connection_budget(concurrency)
    if limit is not None and needed > limit:
        raise SystemExit(
            f"[run] this stack could open {needed} database connections (web processes x WB_DB_POOL_MAX_SIZE + "
            f"worker concurrency + 2 + beat 2), more than the {limit} the embedded PostgreSQL leaves it "
            f"(WB_PG_MAX_CONNECTIONS - {RESERVED_CONNECTIONS}): lower one of them or raise WB_PG_MAX_CONNECTIONS"
        )
    say(f"database connections: at most {needed}" + (f" of {limit} available" if limit is not None else ""))


def supervise(env: dict[str, str], port: int, concurrency: int) -> int:
    """Run the children in this process until stopped; returns the exit status."""
    if not port_free(port):
        raise SystemExit(f"[run] port {port} on {HOST} is in use; stop what uses it or set PORT")
    PID_FILE.parent.mkdir(parents=True, exist_ok=True)
    PID_FILE.write_text(f"{os.getpid()}\n")
    try:
        return Supervisor(child_specs(port, concurrency), env, port, sys.stdout).run()
    finally:
        # Only remove what is ours (a stale file from a killed run may have been replaced meanwhile).
        for path in (PID_FILE, CHILDREN_FILE):
            try:
                if path == CHILDREN_FILE or path.read_text().strip() == str(os.getpid()):
                    path.unlink()
            except OSError:
                pass


#
# Commands
#


def run_foreground(port: int, concurrency: int) -> int:
    if (pid := running_stack_pid()) is not None:
        raise SystemExit(f"[run] a stack from this checkout is already running (pid {pid}); `make down` stops it")
    check_budget(concurrency)
    env = stack_env()
    prepare(env)
    return supervise(env, port, concurrency)


def run_background(port: int, concurrency: int) -> int:
    if (pid := running_stack_pid()) is not None:
        say(f"already running (pid {pid})")
        print(banner(port))
        return 0
    if not port_free(port):
        raise SystemExit(f"[run] port {port} on {HOST} is in use; stop what uses it or set PORT")
    check_budget(concurrency)
    started = time.monotonic()
    env = stack_env()
    prepare(env)  # in the foreground, so its output (and a new admin password) shows here
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(STACK_LOG, "a") as log:
        log.write(f"\n==== stack starting {time.strftime('%Y-%m-%d %H:%M:%S')} ====\n")
        log.flush()
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--supervise", "--port", str(port),
             "--concurrency", str(concurrency)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the terminal that started it
        )
    say(f"started in the background (pid {proc.pid}); waiting for http://{HOST}:{port}/healthz")
    deadline = time.monotonic() + READY_TIMEOUT
    while not site_answers(port):
        if proc.poll() is not None:
            say(f"the stack exited with status {proc.returncode}; the end of {relative(STACK_LOG)}:")
            for line in tail(STACK_LOG, 30):
                print("    " + line)
            return 1
        if time.monotonic() > deadline:
            say(f"no answer within {READY_TIMEOUT:.0f} s; see {relative(STACK_LOG)} (still starting? `make down` stops it)")
            return 1
        time.sleep(0.25)
    # The site answers before the worker does: wait (a little) until runs can actually run.
    worker_deadline = time.monotonic() + 30
    while not workers_ready(port) and time.monotonic() < worker_deadline and proc.poll() is None:
        time.sleep(0.5)
    if not workers_ready(port):
        say("the site answers but /readyz does not yet (the worker may still be starting)")
    print(banner(port))
    print(f"  logs      {relative(STACK_LOG)}")
    print("  stop      make down")
    say(f"ready in {time.monotonic() - started:.1f} s")
    return 0


def tail(path: Path, lines: int) -> Iterator[str]:
    try:
        yield from path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return


def stop_stack() -> int:
    pid = running_stack_pid()
    if pid is None:
        say("no stack running from this checkout")
    else:
        say(f"stopping the stack (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE + 15
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):
            say("it did not stop in time: killing it and its children")
            os.kill(pid, signal.SIGKILL)
    # Children left behind by a supervisor that was killed outright.
    try:
        children = json.loads(CHILDREN_FILE.read_text())
    except (OSError, ValueError):
        children = {}
    for name, child_pid in children.items():
        if pid_alive(child_pid):
            say(f"killing leftover {name} (pid {child_pid})")
            try:
                os.killpg(child_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for path in (PID_FILE, CHILDREN_FILE):
        path.unlink(missing_ok=True)
    # The embedded servers are ours only when no external ones were configured.
    if not os.environ.get("REDIS_URL"):
        devstack.stop_redis()
    if not os.environ.get("DATABASE_URL"):
        devstack.stop_postgres()
    say("stopped")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--background", action="store_true", help="run detached; return once the site answers")
    mode.add_argument("--stop", action="store_true", help="stop the background stack and the embedded servers")
    mode.add_argument("--supervise", action="store_true", help=argparse.SUPPRESS)  # the detached half of --background
    parser.add_argument("--port", type=int, default=env_int("PORT", 8000), help="HTTP port (env PORT, default 8000)")
    parser.add_argument(
        "--concurrency", type=int, default=env_int("WB_WORKER_CONCURRENCY", 8),
        help="worker threads (env WB_WORKER_CONCURRENCY, default 8)",
    )
    args = parser.parse_args(argv)
    if args.stop:
        return stop_stack()
    if args.background:
        return run_background(args.port, args.concurrency)
    if args.supervise:
        return supervise(stack_env(), args.port, args.concurrency)
    return run_foreground(args.port, args.concurrency)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:  # Ctrl-C while preparing, before the children exist
        print("\n[run] interrupted", file=sys.stderr)
        sys.exit(130)
