"""Browser tests: a real ASGI server (uvicorn, as `make run`; websockets work) on the test database, the
session's real Celery worker, and Debian's chromium driven by Playwright.

pytest-django's live_server is WSGI-only, hence the ASGI server in a subprocess, pointed at the test
database and the worker's queue exactly as the worker is (conftest._worker_env).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import WebProcess, _worker_env

# Playwright's sync API keeps an event loop in this thread; Django's ORM calls made by the tests
# themselves (fixtures, asserts) are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


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
    asgi = WebProcess(
        {**_worker_env(worker_queue), "DEBUG": "true"}, f"test-web-{worker_queue}.log", ready_path="/accounts/login/"
    )
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
