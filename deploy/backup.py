"""Back up and restore Workflow Builder's PostgreSQL database (pg_dump / pg_restore, custom format).

    python deploy/backup.py dump [FILE]                   # DATABASE_URL (or the embedded server) -> FILE
    python deploy/backup.py restore FILE                  # FILE -> DATABASE_URL, replacing what is there
    python deploy/backup.py restore FILE --database-url postgresql://.../wb_restored --create

FILE defaults to .data/backups/workflow-builder-<UTC time>.dump. The database is the whole durable
state: workflows, versions, runs and their event history, schedules, users, keys and the encrypted
credentials. Redis holds only queued messages and caches: after a restore the engine's sweep
re-dispatches the steps of running runs (WB_REDISPATCH_AFTER). Keep SECRET_KEY and CREDENTIALS_KEY
with the backups: stored credentials cannot be read without the key they were encrypted with.

`restore` drops and recreates every object of the dump in the target (`pg_restore --clean
--if-exists`) in one transaction, so a failed restore leaves the target as it was; `--create` first
creates the target database when it does not exist. Stop the web, worker and beat processes first
(or point the restore at a new database and switch DATABASE_URL to it afterwards).

The PostgreSQL client programs are taken from WB_PG_BIN (a directory), else from the embedded
server's package (pgserver, installed by `make install`: the same version as the local server), else
from PATH. pg_dump must be at least the server's major version.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / ".data" / "backups"


def say(message: str) -> None:
    print(f"[backup] {message}", file=sys.stderr, flush=True)


def pg_program(name: str) -> str:
    """The path of a PostgreSQL client program (see the module docstring for the order)."""
    if os.environ.get("WB_PG_BIN"):
        candidate = Path(os.environ["WB_PG_BIN"]) / name
        if not candidate.exists():
            raise SystemExit(f"[backup] WB_PG_BIN has no {name}: {candidate}")
        return str(candidate)
    try:
        import pgserver  # the local extra's embedded PostgreSQL, with its client programs
    except ImportError:
        pass
    else:
        candidate = Path(pgserver.__file__).parent / "pginstall" / "bin" / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"[backup] {name} not found: install the PostgreSQL client or set WB_PG_BIN")
    return found


def database_url(explicit: str | None) -> str:
    """--database-url, else DATABASE_URL, else the embedded server of deploy/local/devstack.py."""
    if explicit:
        return explicit
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    sys.path.insert(0, str(ROOT / "deploy" / "local"))
    import devstack

    return devstack.ensure_env().get("DATABASE_URL") or os.environ["DATABASE_URL"]


def libpq_url(url: str) -> str:
    """A URL libpq reads: the scheme `postgres(ql)://` (dj-database-url also takes `pgsql://` and the
    like), Django-only query options dropped."""
    parts = urlsplit(url)
    query = "&".join(item for item in parts.query.split("&") if item and not item.startswith(("pool", "conn_max_age", "conn_health_checks")))
    return urlunsplit(("postgresql", parts.netloc, parts.path, query, parts.fragment))


def database_name(url: str) -> str:
    name = urlsplit(url).path.lstrip("/")
    if not name:
        raise SystemExit(f"[backup] the database URL names no database: {url}")
    return name


def dump(url: str, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    started = time.monotonic()
    result = subprocess.run(
        [pg_program("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "--file", str(partial), "--dbname", libpq_url(url)],
    )
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise SystemExit(f"[backup] pg_dump failed (exit {result.returncode})")
    partial.rename(out)  # never a half-written file under the final name
    say(f"dumped {database_name(url)} to {out} ({out.stat().st_size} bytes, {time.monotonic() - started:.1f} s)")
    return out


def create_database(url: str) -> None:
    """CREATE DATABASE for the URL's database unless it exists (connecting to the server's `postgres`)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(libpq_url(url))
    maintenance = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, parts.fragment))
    name = database_name(url)
    with psycopg.connect(maintenance, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        say(f"created database {name}")


def restore(url: str, source: Path, *, create: bool) -> None:
    if not source.is_file():
        raise SystemExit(f"[backup] no such file: {source}")
    if create:
        create_database(url)
    started = time.monotonic()
    result = subprocess.run(
        [pg_program("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
         "--exit-on-error", "--dbname", libpq_url(url), str(source)],
    )
    if result.returncode != 0:
        raise SystemExit(f"[backup] pg_restore failed (exit {result.returncode}); the target is unchanged")
    say(f"restored {source} into {database_name(url)} ({time.monotonic() - started:.1f} s)")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    dump_cmd = sub.add_parser("dump", help="write a custom-format dump of the database")
    dump_cmd.add_argument("file", nargs="?", type=Path, help="where to write it (default: .data/backups/...)")
    dump_cmd.add_argument("--database-url", help="the database to dump (default: DATABASE_URL or the embedded server)")
    restore_cmd = sub.add_parser("restore", help="restore a dump, replacing the objects it contains")
    restore_cmd.add_argument("file", type=Path)
    restore_cmd.add_argument("--database-url", help="the database to restore into (default: DATABASE_URL or the embedded server)")
    restore_cmd.add_argument("--create", action="store_true", help="create the target database first when it does not exist")
    args = parser.parse_args(argv)
    url = database_url(args.database_url)
    if args.command == "dump":
        out = args.file or DEFAULT_DIR / f"workflow-builder-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.dump"
        dump(url, out)
        print(out)
        return 0
    restore(url, args.file, create=args.create)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
