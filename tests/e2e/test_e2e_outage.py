"""A handheld while the system cannot reach its database: the server answers
503 `unavailable` with Retry-After; the scan is kept and sent again with the
same scan id (so it counts once), scans made meanwhile follow in order, and
when the outage lasts, the scan is put back in the field to be scanned again.

The outage is played by the app itself: for as many requests as asked, a
scan raises the error psycopg raises when the server refuses connections.
"""
from __future__ import annotations

import re

import psycopg
import pytest
import livesite
from flask import request
from livesite import LiveServer
from playwright.sync_api import expect
from sqlalchemy.exc import OperationalError
from test_e2e_picking import load_floor

pytestmark = pytest.mark.e2e


class Outage:
    """The next `left` scans at the pick screen meet a database that is down."""

    def __init__(self, app):
        self.left = 0
        self.seen: list[tuple[str, str, int]] = []  # (scan, scan_id, status)
        app.before_request(self._before)
        app.after_request(self._after)
        app.config["LUYUE"].unavailable_retry_after_seconds = 1

    def _before(self):
        if request.path == "/pick/scan" and self.left > 0:
            self.left -= 1
            raise OperationalError("SELECT 1", {}, psycopg.OperationalError(
                'connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused'))

    def _after(self, response):
        if request.path == "/pick/scan":
            self.seen.append((request.form.get("scan", ""), request.form["scan_id"], response.status_code))
        return response


def claimed(page, server) -> None:
    livesite.log_in(page, server.url, "P2", "2222")
    page.get_by_role("button", name="Pick a batch (up to 4 orders)").click()
    expect(page.get_by_role("heading", name="Scan an empty tote")).to_be_visible()
    expect(page.locator("#screen")).to_contain_text("Slot 1 of 2")


def test_a_scan_met_by_an_outage_is_sent_again_with_its_id_and_the_next_scan_follows(live_app, phone):
    load_floor(live_app)
    outage = Outage(live_app)
    with LiveServer(live_app) as server:
        page = phone
        claimed(page, server)
        outage.left = 2
        livesite.wedge(page, "TOTE-01")
        expect(page.get_by_role("alert")).to_contain_text("The system is reconnecting. The scan is kept")
        livesite.wedge(page, "TOTE-02")  # scanned meanwhile: it waits its turn
        line = page.locator("#screen")
        expect(line).to_have_attribute("data-step", "location", timeout=10000)
        expect(line).to_contain_text("A-01-01-1")
    totes = [(scan, status) for scan, _, status in outage.seen]
    assert totes == [("TOTE-01", 503), ("TOTE-01", 503), ("TOTE-01", 200), ("TOTE-02", 200)]
    ids = [scan_id for _, scan_id, _ in outage.seen]
    assert ids[0] == ids[1] == ids[2] != ids[3]


def test_a_scan_that_meets_a_long_outage_goes_back_in_the_field_and_counts_once_when_scanned_again(live_app, phone):
    load_floor(live_app)
    outage = Outage(live_app)
    with LiveServer(live_app) as server:
        page = phone
        claimed(page, server)
        outage.left = 100
        livesite.wedge(page, "TOTE-01")
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("The system is still reconnecting; the scan was not recorded.", timeout=15000)
        scan = page.get_by_label("Scan", exact=True)
        expect(scan).to_have_value("TOTE-01")
        expect(page.locator("html")).to_have_attribute("data-last-scan", "refused")
        outage.left = 0
        scan.press("Enter")
        expect(page.locator("#screen")).to_contain_text("Slot 2 of 2")
    assert [status for _, _, status in outage.seen] == [503] * 6 + [200]
    assert len({scan_id for _, scan_id, _ in outage.seen}) == 1


def test_a_screen_opened_during_an_outage_says_the_system_is_reconnecting_and_comes_back_by_itself(live_app, phone):
    load_floor(live_app)
    with LiveServer(live_app) as server:
        page = phone
        livesite.log_in(page, server.url, "P2", "2222")
        expect(page.get_by_role("button", name="Pick a batch (up to 4 orders)")).to_be_visible()
        db = live_app.extensions["luyue.db"]
        live_app.config["LUYUE"].unavailable_retry_after_seconds = 1
        real = db.reading

        def down():
            raise OperationalError("SELECT 1", {}, psycopg.OperationalError("connection timeout expired"))
        db.reading = down
        try:
            page.goto(server.url + "/pick")
            expect(page.get_by_role("heading", name="Reconnecting…")).to_be_visible()
            expect(page.get_by_role("alert")).to_contain_text("cannot reach its database")
            expect(page.locator("#screen")).to_contain_text("tries again by itself every 1 second.")
            # Its style and scripts load without the database (the worker is not looked up for them).
            assert page.request.get(server.url + "/static/css/app.css").status == 200
        finally:
            db.reading = real
        # The page reloads itself: the picker's screen is back.
        expect(page.get_by_role("button", name="Pick a batch (up to 4 orders)")).to_be_visible(timeout=5000)
        expect(page).to_have_url(re.compile(r"/pick$"))
