"""End-to-end: Debian's chromium driven by Playwright against a live server.

The server runs in a thread on 127.0.0.1 (a free port) over a fresh SQLite
database. Without chromium the tests skip, unless LUYUE_REQUIRE_BROWSER=1
(CI sets it): then a missing browser is a failure.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from livesite import CHROMIUM_ARGS, PHONE, chromium_path
from sqlalchemy import create_engine

from app import create_app
from app.models import Base


def _no_browser(reason: str):
    if os.environ.get("LUYUE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (LUYUE_REQUIRE_BROWSER=1: end-to-end tests must run here)")
    pytest.skip(f"{reason}; install Debian's chromium (apt-get install chromium) to run the end-to-end tests")


@pytest.fixture(scope="session")
def browser() -> Iterator:
    path = chromium_path()
    if path is None:
        _no_browser("chromium is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _no_browser("playwright is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live_app(tmp_path):
    """An app on its own SQLite file; load data, then serve it with livesite.LiveServer."""
    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    app = create_app({"database_url": url, "secret_key": "e2e"})
    app.instance_path = str(tmp_path / "instance")
    return app


@pytest.fixture
def phone(browser):
    """A fresh browser context the size of a handheld."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, locale="en-US", has_touch=True)
    context.set_default_timeout(5000)
    page = context.new_page()
    yield page
    context.close()
