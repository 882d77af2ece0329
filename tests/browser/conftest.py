"""Browser tests: a real ASGI server (uvicorn, as `make run`; websockets work) on the test database, the
session's real Celery worker, and Debian's chromium driven by Playwright.

pytest-django's live_server is WSGI-only, hence the ASGI server in a subprocess, pointed at the test
database and the worker's queue exactly as the worker is (conftest._worker_env).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, _worker_env

# Playwright's sync API keeps an event loop in this thread; Django's ORM calls made by the tests
# themselves (fixtures, asserts) are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AsgiServer:
    def __init__(self, queue: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = ROOT / ".data" / "logs" / f"test-web-{queue}.log"
        self.env = {**_worker_env(queue), "DEBUG": "true"}
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        # The server `make run` uses (deploy/local/run.py), so the live pages' websockets are tested on it.
        sys.path.insert(0, str(ROOT / "deploy" / "local"))
        import run

        self.proc = subprocess.Popen(
            run.web_argv(sys.executable, "127.0.0.1", self.port, workers=1), cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the web server exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/accounts/login/", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the web server did not answer within 60 s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed at /usr/bin/chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def server(worker, worker_queue):
    """A fresh server per test, with the real worker and a transactional database both can see.

    Per test because a transactional test's flush re-creates the content types under new ids,
    and a long-lived server would keep the old ones cached (guardian's permission lookups use them).
    """
    asgi = AsgiServer(worker_queue)
    asgi.start()
    yield asgi
    asgi.stop()


@pytest.fixture
def new_page(browser, server):
    """Open a fresh browser context (its own cookies); collects console errors and CSP violations."""
    contexts = []

    def make(width: int = 1280, height: int = 900):
        context = browser.new_context(viewport={"width": width, "height": height}, base_url=server.url)
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.console_errors = []  # type: ignore[attr-defined]
        page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))  # type: ignore[attr-defined]
        contexts.append(context)
        return page

    yield make
    for context in contexts:
        context.close()


def log_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")


def screenshot(page, name: str) -> None:
    """Save a screenshot when WB_SCREENSHOTS names a folder (for looking at the pages)."""
    folder = os.environ.get("WB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)
