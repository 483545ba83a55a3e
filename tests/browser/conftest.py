"""The console in a real browser: the system's Chromium (Debian `chromium`, installed by
`make test` when missing) driven by Playwright, against the runner on a free loopback port.

Never `playwright install`: the browser is the machine's own, at `CHROMIUM` (override with
COSTGUARD_CHROMIUM). Every page records its JavaScript errors and failed requests; the tests
assert there were none.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Server, start_runner, stop_runner

CHROMIUM = os.environ.get("COSTGUARD_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = os.environ.get("COSTGUARD_SCREENSHOTS")
"""A folder to write the screenshots to (`docs` to refresh the ones in the docs)."""


@pytest.fixture(scope="package")
def server() -> Iterator[Server]:
    # no default quotas: each test sets the ones it looks at
    runner = start_runner({"COSTGUARD_DEFAULT_QUOTAS": '{"default": {}}'})
    try:
        yield runner
    finally:
        stop_runner(runner)


# Package scope, not session: Playwright's sync API keeps an asyncio loop running in this
# thread until it stops, and the client suite after this package calls asyncio.run().
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs the Debian package chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Tab:
    page: Any
    errors: list[str] = field(default_factory=list)

    @property
    def js_errors(self) -> list[str]:
        """Errors, less the browser's network line for an API answer the page handles (a
        401/403/429 it shows to the user, such as the admin probe of a tenant key at sign-in)."""
        handled = re.compile(r"Failed to load resource: .* status of 4\d\d .*\(https?://[^/]+/v1/")
        return [e for e in self.errors if not handled.search(e)]

    def shot(self, name: str) -> None:
        if SCREENSHOTS:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)


def open_tab(browser: Any, width: int = 1280, height: int = 900) -> Tab:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    tab = Tab(page)
    page.on("pageerror", lambda e: tab.errors.append(f"pageerror: {e}"))
    page.on(
        "console",
        lambda m: (
            tab.errors.append(f"console.{m.type}: {m.text} ({m.location.get('url')})")
            if m.type == "error"
            else None
        ),
    )
    page.on("requestfailed", lambda r: tab.errors.append(f"requestfailed: {r.url}"))
    return tab


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    t = open_tab(browser)
    try:
        yield t
    finally:
        t.page.context.close()
