"""`make test`: start the embedded servers, make sure a browser (and promtool) is there, run pytest.

Arguments are passed to pytest. WB_TEST_WORKERS sets the number of xdist
processes (default 2; 0 runs in one process).

The static checks (deploy/local/checks.py: ruff and mypy) run first and a finding stops the run
before pytest starts. WB_SKIP_CHECKS=1 skips them for a quick local run; CI (CI set) always runs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import checks  # noqa: E402
import devstack  # noqa: E402

ROOT = devstack.ROOT
CHROMIUM = "/usr/bin/chromium"


def ensure_chromium() -> None:
    """Browser tests drive Debian's chromium; install it when missing and we can."""
    if os.path.exists(CHROMIUM) or os.environ.get("WB_SKIP_BROWSER_INSTALL"):
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("[testrun] installing chromium (apt-get)...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, check=False)
    if not os.path.exists(CHROMIUM):
        print("[testrun] chromium is not available: browser tests will fail", flush=True)


def ensure_promtool() -> None:
    """tests/ops checks the alert rules with promtool (Debian's prometheus package) when it is there."""
    if shutil.which("promtool") or os.environ.get("WB_SKIP_PROMTOOL_INSTALL"):
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("[testrun] installing promtool (apt-get install prometheus)...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        result = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"], env=env, check=False)
        if result.returncode != 0:  # an old package list: refresh it once and try again
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
            subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"], env=env, check=False)
    if not shutil.which("promtool"):
        print("[testrun] promtool is not available: the alert rules are checked without it", flush=True)

def run_checks() -> int:
    if os.environ.get("WB_SKIP_CHECKS") and not os.environ.get("CI"):
        print("[testrun] static checks skipped (WB_SKIP_CHECKS)", flush=True)
        return 0
    return checks.main()


def main(argv: list[str]) -> int:
    if run_checks() != 0:
        print("[testrun] static checks failed: fix the findings above (`make check` runs them alone)", flush=True)
        return 1
    ensure_chromium()
    ensure_promtool()
    env = {**os.environ, **devstack.ensure_env()}
    workers = env.get("WB_TEST_WORKERS", "2")
    base = [sys.executable, "-m", "pytest"]
    parallel = ["-n", workers, "--dist", "loadgroup"] if workers != "0" else []
    if argv:
        args = base + parallel + argv
        print("[testrun] " + " ".join(args[1:]), flush=True)
        return subprocess.call(args, cwd=ROOT, env=env)
    # The whole suite: everything but the browser tests in parallel, then the browser tests
    # in one process of their own (Playwright keeps an event loop in its thread, which the
    # websocket-consumer tests must not share).
    runs = [base + parallel + ["--ignore=tests/browser"], base + ["tests/browser"]]
    status = 0
    for args in runs:
        print("[testrun] " + " ".join(args[1:]), flush=True)
        code = subprocess.call(args, cwd=ROOT, env=env)
        status = status or code
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
