"""deploy/Procfile is the one process list: honcho accepts it, `make run` starts its web, worker and beat,
and the tests' web server is its web line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "deploy" / "local"))
import run  # noqa: E402  deploy/local/run.py


def test_honcho_accepts_the_procfile_with_every_process_make_run_starts():
    result = subprocess.run([sys.executable, "-m", "honcho", "check", "-f", str(run.PROCFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    for process in run.PROCESSES:
        assert process in result.stderr + result.stdout
    assert run.honcho_argv(8123)[-3:] == ["web", "worker", "beat"]


def test_the_web_command_is_the_procfiles_with_its_variables_filled_in():
    argv = run.web_argv("python", "127.0.0.1", 8123, workers=1)
    assert argv[:4] == ["python", "-m", "uvicorn", "workflowsite.asgi:application"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "8123"
    assert argv[argv.index("--workers") + 1] == "1" and "--no-proxy-headers" in argv
    # Unset variables take the Procfile's defaults, as a shell would.
    production = run.procfile_argv("web", {}, "python")
    assert production[production.index("--host") + 1] == "0.0.0.0" and production[production.index("--port") + 1] == "8000"
    assert run.procfile_argv("worker", {"WB_WORKER_CONCURRENCY": "3"}, "python")[:3] == ["python", "-m", "celery"]
    assert "3" in run.procfile_argv("worker", {"WB_WORKER_CONCURRENCY": "3"}, "python")


def test_make_run_binds_the_web_to_loopback():
    env = run.procfile_env({"PATH": "/usr/bin"}, concurrency=4)
    assert env["WB_WEB_HOST"] == "127.0.0.1" and env["WB_WORKER_CONCURRENCY"] == "4"
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
