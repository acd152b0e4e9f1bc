"""Dock staff on a 360x640 handheld receive a parcel its carrier brought back:
from the dock home's Returns button, the label typed into the Scan field (as
a wedge scanner does), a wrong bin refused in place, a bin for each SKU, the
confirmation; the sales platform then reads the parcel as returned and the
units are on hand again."""
from __future__ import annotations

import datetime as dt
import re

import pytest
import support
import livesite
from livesite import LiveServer
from playwright.sync_api import expect
from sqlalchemy import select
from test_e2e_pack_and_ship import EAN, load_floor

from app.fulfilment import pack, ship, tracking
from app.models import Node, Order, Parcel, TrackingStatus, User

pytestmark = pytest.mark.e2e


def shipped_and_returned(app) -> str:
    """E2E-1 (picked into TOTE-1 by `load_floor`) packed, shipped and then
    reported returned by its carrier; its tracking number."""
    db = app.extensions["luyue.db"]
    with db.transaction() as s:
        f = s.scalar(select(Order).where(Order.external_id == "E2E-1")).fulfilments[0]
        for code in (EAN["SKU-A"], EAN["SKU-A"], EAN["SKU-B"]):
            pack.scan_item(s, f, code)
        number = pack.close_parcel(s, f, 1250, s.scalar(select(User).where(User.code == "K1")), "6901234") \
            .tracking_number
    with db.transaction() as s:
        dock = s.scalar(select(User).where(User.code == "D1"))
        handover = ship.open_handover(s, s.scalar(select(Node).where(Node.code == "SH-PD")), "ly-express", dock)
        ship.scan_parcel(s, handover, number, dock)
    with db.transaction() as s:
        parcel = s.scalar(select(Parcel).where(Parcel.tracking_number == number))
        tracking.report(s, parcel, TrackingStatus.returned, dt.datetime.now(dt.timezone.utc))
    return number


def test_a_returned_parcel_is_received_back_into_a_bin(live_app, phone):
    token = load_floor(live_app)
    number = shipped_and_returned(live_app)
    db = live_app.extensions["luyue.db"]
    before = support.stock_of(db, "SH-PD", "SKU-A")
    with LiveServer(live_app) as server:
        page = phone
        screen = page.locator("#screen")

        def wedge(code: str) -> None:
            livesite.wedge(page, code)

        livesite.log_in(page, server.url, "D1", "6666")
        expect(page).to_have_url(re.compile(r"/ship$"))

        page.get_by_role("link", name="Returns · 1 expected").click()
        expect(screen).to_have_attribute("data-step", "returns")
        expect(screen).to_contain_text("1 parcel reported returned by its carrier is not back yet.")
        wedge(number)
        expect(screen).to_have_attribute("data-step", "items")
        expect(page).to_have_url(re.compile(rf"/ship/returns/p/{number}$"))
        expect(screen).to_contain_text("SKU-A")
        expect(screen).to_contain_text("Usually in A-01-01-1")

        wedge("Z-99-99-9")  # no such bin here: refused in place, with what was expected
        expect(page.get_by_role("alert")).to_contain_text("Z-99-99-9")
        expect(page.locator("html")).to_have_attribute("data-last-scan", "refused")
        expect(screen).to_have_attribute("data-step", "items")

        wedge("A-01-01-1")  # SKU-A's bin; then SKU-B's, the same one
        expect(screen).to_have_attribute("data-step", "items")
        expect(screen).to_have_attribute("data-current-sku", "SKU-B")
        wedge("A-01-01-1")
        expect(screen).to_have_attribute("data-step", "putaway")
        page.get_by_role("button", name="Yes, put away 3 units").click()
        expect(screen).to_have_attribute("data-step", "returns")
        expect(page.get_by_role("status")).to_contain_text(f"{number} received back: 3 units into A-01-01-1.")
        expect(screen).not_to_contain_text("not back yet")

        document = page.request.get(server.url + "/api/v1/orders/E2E-1",
                                    headers={"Authorization": f"Bearer {token}"}).json()
        [parcel] = document["fulfilments"][0]["parcels"]
        assert parcel["status"] == "returned" and "returned_at" in parcel
    on_hand, reserved = support.stock_of(db, "SH-PD", "SKU-A")
    assert (on_hand, reserved) == (before[0] + 2, before[1])
    support.check_invariants(db)
