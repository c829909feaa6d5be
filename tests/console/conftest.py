"""Fixtures: one demo store and one served console per test session; a real Chromium (Debian's package) for
the journeys — skipped with a reason where it is missing, mandatory under CI=true."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.support import CHROMIUM, Served, copy_store, make_demo, serve, write_accounts
from tests.services import require

SCREENSHOTS = os.environ.get("CASECORE_CONSOLE_SCREENSHOTS")


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    return make_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def served(demo_db, tmp_path_factory) -> Iterator[Served]:
    where = tmp_path_factory.mktemp("served")
    server = serve(copy_store(demo_db, where), write_accounts(where / "accounts.json"))
    try:
        yield server
    finally:
        server.stop()


def chromium_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium fonts-wqy-zenhei)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium for a module's journeys, closed with the module: Playwright's synchronous API keeps an
    event loop running in this thread while it is open, and later tests run asyncio themselves (NATS)."""
    require(chromium_reason())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where the journeys' screenshots go: docs/console/ when CASECORE_CONSOLE_SCREENSHOTS names it."""
    return Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
