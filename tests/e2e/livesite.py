"""A live server in a thread and the browser settings, for the end-to-end tests."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

from werkzeug.serving import make_server

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PHONE = {"width": 360, "height": 640}


def wedge(page, code: str) -> None:
    """What a handheld's scanner does: type the code into the focused Scan
    field, then Enter."""
    from playwright.sync_api import expect
    scan = page.get_by_label("Scan", exact=True)
    expect(scan).to_be_focused()
    scan.press_sequentially(code)
    scan.press("Enter")


def log_in(page, url: str, badge: str, pin: str) -> None:
    """The badge scanned at the login screen, then the PIN typed."""
    page.goto(url + "/login")
    wedge(page, badge)
    page.get_by_label("PIN").fill(pin)
    page.get_by_role("button", name="Log in").click()


def chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


class LiveServer:
    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="e2e-server", daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        hub = self.app.extensions.get("luyue.live")
        if hub is not None:
            hub.stop()
        self.app.extensions["luyue.db"].dispose()
