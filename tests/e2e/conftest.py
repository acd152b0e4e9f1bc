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
        watch_csp(browser)
        yield browser
        browser.close()


# What the Content-Security-Policy blocked in any page of the current test.
_csp_violations: list[str] = []
# Runs in every page before its own scripts (injected by the browser, so the
# policy does not apply to it): a blocked script, style or connection is
# reported as a console error the test can see.
_REPORT_VIOLATIONS = """document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
                " at " + e.sourceFile + ":" + e.lineNumber);
});"""


def watch_csp(browser) -> None:
    """Every context the tests open reports CSP violations into _csp_violations."""
    new_context = browser.new_context

    def watched(**options):
        context = new_context(**options)
        context.add_init_script(_REPORT_VIOLATIONS)
        context.on("console", lambda m: _csp_violations.append(m.text) if m.type == "error" and (
            "Content Security Policy" in m.text or m.text.startswith("CSP violation")) else None)
        return context
    browser.new_context = watched


@pytest.fixture(autouse=True)
def no_csp_violations():
    """A test whose pages broke the Content-Security-Policy fails."""
    _csp_violations.clear()
    yield
    assert _csp_violations == [], "the Content-Security-Policy blocked something:\n" + "\n".join(_csp_violations)


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
