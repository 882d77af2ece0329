"""The whole local stack: `make run` (foreground), `make up` (background), `make down`.

    python deploy/local/run.py               # prepare, then the Procfile's web + worker + beat in the foreground
    python deploy/local/run.py --background  # the same, detached; returns once /healthz answers
    python deploy/local/run.py --stop        # stop that stack and the embedded servers

Preparing means: embedded PostgreSQL and Redis under .data/ (unless DATABASE_URL
/ REDIS_URL are set), `migrate`, `ensure_admin` and `seed_examples`. Running
means deploy/Procfile's `web`, `worker` and `beat` under honcho (a Procfile
runner): the process list exists once, in the Procfile production platforms
read too. honcho prefixes each line (`web.1 |`), stops every process on Ctrl-C
or SIGTERM (SIGKILL after 5 s), and stops the rest when one dies. Locally the
web listens on 127.0.0.1:$PORT (WB_WEB_HOST).

Database connections are budgeted before anything starts: web processes x WB_DB_POOL_MAX_SIZE + the
worker's concurrency + 2 + beat's 2 must stay under the embedded PostgreSQL's max_connections
(WB_PG_MAX_CONNECTIONS, less a reserve for psql, migrations and a test session); see docs/operations.md.

Running again reuses the data under .data/.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import devstack  # noqa: E402

ROOT = devstack.ROOT
DATA = devstack.DATA
LOG_DIR = DATA / "logs"
STACK_LOG = LOG_DIR / "stack.log"
PID_FILE = DATA / "stack.pid"
PASSWORD_FILE = DATA / "admin-password"
HOST = "127.0.0.1"
STOP_GRACE = 20.0  # seconds honcho gets to stop everything (it SIGKILLs after 5) before we kill it
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
# Running: the Procfile under honcho
#

PROCFILE = ROOT / "deploy" / "Procfile"
PROCESSES = ("web", "worker", "beat")  # not `release`: prepare() has done its work already
_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)")


def procfile_argv(process: str, env: dict[str, str], python: str = sys.executable) -> list[str]:
    """deploy/Procfile's command for `process` with its ${VAR:-default} expanded from `env`, as an argv
    whose program runs from this interpreter's environment (`python -m uvicorn`, `python -m celery`).
    The tests start their web server from this, so they run what `make run` and production run."""
    from honcho.environ import parse_procfile

    command = parse_procfile(PROCFILE.read_text()).processes[process]
    expanded = _VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(3)) or (m.group(2) or ""), command)
    program, *args = shlex.split(expanded)
    return [python, "-m", program, *args]


def web_argv(python: str, host: str, port: int, *, workers: int, server: str = "uvicorn") -> list[str]:
    """The Procfile's web command (uvicorn, HTTP and websockets) on host:port with `workers` processes.
    server="daphne" is for the load benchmark's comparison only (benchmarks/load/run.py servers): daphne
    has no worker processes of its own and is not what any deployment runs."""
    if server == "daphne":
        return [python, "-m", "daphne", "-b", host, "-p", str(port), "workflowsite.asgi:application"]
    if server != "uvicorn":
        raise SystemExit(f"[run] the web server is uvicorn or daphne, not {server!r}")
    return procfile_argv("web", {"WB_WEB_HOST": host, "PORT": str(port), "WB_WEB_WORKERS": str(workers)}, python)


def honcho_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "honcho", "start", "--procfile", str(PROCFILE), "--app-root", str(ROOT),
            "--port", str(port), *PROCESSES]


def procfile_env(env: dict[str, str], concurrency: int) -> dict[str, str]:
    """The stack's environment for honcho: this venv first on PATH (the Procfile says `uvicorn`, `celery`),
    the web on loopback only."""
    return {
        **env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "WB_WEB_HOST": env.get("WB_WEB_HOST") or HOST,
        "WB_WORKER_CONCURRENCY": str(concurrency),
    }


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc): honcho's own forks and, each in a session of its own,
    the processes they run (and theirs: uvicorn's workers)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


# Connections left for everything else on the server: psql, migrations, a test session, a benchmark.
RESERVED_CONNECTIONS = 60
BEAT_CONNECTIONS = 2


def connection_budget(concurrency: int) -> tuple[int, int | None]:
    """(connections this stack may open at most, the server's limit for it or None when not ours to know)."""
    web = env_int("WB_WEB_WORKERS", 2)
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


def announce_when_ready(port: int, honcho: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while honcho.poll() is None and time.monotonic() < deadline:
        if site_answers(port):
            print(banner(port), flush=True)
            return
        time.sleep(0.25)


def run_procfile(env: dict[str, str], port: int, concurrency: int) -> int:
    """honcho in the foreground (the terminal's Ctrl-C reaches it directly); returns its exit status."""
    if not port_free(port):
        raise SystemExit(f"[run] port {port} on {HOST} is in use; stop what uses it or set PORT")
    honcho = subprocess.Popen(honcho_argv(port), cwd=ROOT, env=procfile_env(env, concurrency))
    PID_FILE.parent.mkdir(parents=True, exist_ok=True)
    PID_FILE.write_text(f"{honcho.pid}\n")
    # honcho stops the processes; we only pass on what the terminal does not send it itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: honcho.send_signal(signal.SIGTERM))
    threading.Thread(target=announce_when_ready, args=(port, honcho), name="ready", daemon=True).start()
    try:
        return honcho.wait()
    finally:
        PID_FILE.unlink(missing_ok=True)


#
# Commands
#


def run_foreground(port: int, concurrency: int) -> int:
    if (pid := running_stack_pid()) is not None:
        raise SystemExit(f"[run] a stack from this checkout is already running (pid {pid}); `make down` stops it")
    check_budget(concurrency)
    env = stack_env()
    prepare(env)
    return run_procfile(env, port, concurrency)


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
            honcho_argv(port), cwd=ROOT, env=procfile_env(env, concurrency), stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the terminal that started it
        )
    PID_FILE.write_text(f"{proc.pid}\n")
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
        say(f"stopping the stack (honcho, pid {pid})")
        children = descendants(pid)
        os.kill(pid, signal.SIGTERM)  # honcho: SIGTERM to each process, SIGKILL after 5 s
        deadline = time.monotonic() + STOP_GRACE
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):
            say("it did not stop in time: killing it and its processes")
            os.kill(pid, signal.SIGKILL)
        for child in children:
            if pid_alive(child):
                say(f"killing leftover process {child}")
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    PID_FILE.unlink(missing_ok=True)
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
    return run_foreground(args.port, args.concurrency)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:  # Ctrl-C while preparing, before the children exist
        print("\n[run] interrupted", file=sys.stderr)
        sys.exit(130)
