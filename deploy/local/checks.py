"""`make check`: the static checks on apps/ and workflowsite/; `make test` runs them before pytest.

    ruff check          lint (rules in pyproject.toml, [tool.ruff.lint])
    ruff format --check formatting (pyproject.toml, [tool.ruff.format])
    mypy                types, with the django-stubs and DRF plugins ([tool.mypy])

Each check runs even when an earlier one failed, so one run shows every finding; the exit
status is non-zero when any check has a finding. Nothing here needs the database or Redis:
mypy's Django plugin imports the settings, so placeholder URLs are set when none are.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PATHS = ["apps", "workflowsite"]

def checks() -> list[tuple[str, list[str]]]:
    ruff = str(BIN / "ruff")
    return [
        ("ruff check", [ruff, "check", *PATHS]),
        ("ruff format", [ruff, "format", "--check", *PATHS]),
        ("mypy", [str(BIN / "mypy"), *PATHS]),
    ]


def main() -> int:
    env = {
        "DATABASE_URL": "postgres://checks@localhost/checks",
        "REDIS_URL": "redis://localhost:6379/0",
        **os.environ,
    }
    failed = []
    for name, args in checks():
        print(f"[checks] {name}", flush=True)
        if subprocess.call(args, cwd=ROOT, env=env) != 0:
            failed.append(name)
    if failed:
        print(f"[checks] failed: {', '.join(failed)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
