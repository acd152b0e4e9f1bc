"""A packer and dock staff on 360x640 handhelds: a picked tote is packed by
typing barcodes into the Scan field and pressing Enter (as a wedge scanner
does), a wrong item is refused on the way, the weight goes in and the label
PDF comes out; then the dock opens a handover, scans the parcel out, meets a
cancelled order's parcel (intercepted, with the alarm), closes the handover
and gets the manifest."""
from __future__ import annotations

import io
import json
import re
import time

import pytest
import support
import livesite
from livesite import LiveServer
from playwright.sync_api import expect
from pypdf import PdfReader
from sqlalchemy import select

from app import masterdata
from app.access import create_token, create_user
from app.barcodes import ean13
from app.fulfilment import intake, pick
from app.models import Channel, Node, User

pytestmark = pytest.mark.e2e

EAN = {"SKU-A": ean13("690123400001"), "SKU-B": ean13("690123400002"), "SKU-C": ean13("690123400003")}


def load_floor(app) -> str:
    """SH-PD with three SKUs, a picker, a packer and dock staff; two orders
    picked into totes TOTE-1 and TOTE-2 (through the pick domain). Returns
    the sales channel's API token."""
    db = app.extensions["luyue.db"]
    support.add_nodes(db, {"SH-PD": support.PLACES["SH-PD"]})
    with db.transaction() as s:
        for sku, code in EAN.items():
            masterdata.put_sku(s, sku, masterdata.SkuBody(name=f"商品 {sku}", barcodes=[code]))
        pd = s.scalar(select(Node).where(Node.code == "SH-PD"))
        masterdata.count_stock(s, pd, masterdata.StockBody(items=[
            masterdata.StockItem(location=f"A-01-0{i}-1", sku=sku, on_hand=5) for i, sku in enumerate(EAN, 1)]))
        create_user(s, "P2", "Tom Wilson", "picker", "2222", "SH-PD", "en")
        create_user(s, "K1", "Kim", "packer", "5555", "SH-PD", "en")
        create_user(s, "D1", "Dora", "dock", "6666", "SH-PD", "en")
        token = create_token(s, "shop")
    for external_id, lines in (("E2E-1", [("SKU-A", 2), ("SKU-B", 1)]), ("E2E-2", [("SKU-C", 1)])):
        body = support.order_body(external_id, lines, promised_by="2026-11-25T18:00:00+08:00")
        with db.transaction() as s:
            intake.submit(s, s.scalar(select(Channel).where(Channel.name == "shop")), json.dumps(body).encode())
    with db.transaction() as s:
        pick.claim_next(s, s.scalar(select(User).where(User.code == "P2")), 2)
    for n in range(100):
        with db.transaction() as s:
            picker = s.scalar(select(User).where(User.code == "P2"))
            pl = pick.held_by(s, picker)
            if pl is None:
                break
            slot = pick.next_tote_slot(pl)
            if slot is not None:
                code = f"TOTE-{slot.slot}"
            else:
                line = pick.current_line(pl)
                code = {"location": line.location.code, "product": EAN[line.sku.code],
                        "quantity": EAN[line.sku.code], "tote": pick.slot_of(pl, line).tote}[line.step.value]
            pick.scan(s, picker, f"e2e-pick-{n:04d}", code)
    return token


def test_a_picked_tote_is_packed_labelled_and_scanned_out_and_a_cancelled_one_intercepted(live_app, phone):
    started = time.perf_counter()
    token = load_floor(live_app)
    auth = {"Authorization": f"Bearer {token}"}
    with LiveServer(live_app) as server:
        page = phone
        screen = page.locator("#screen")

        def wedge(code: str) -> None:
            livesite.wedge(page, code)

        def log_in(badge: str, pin: str) -> None:
            livesite.log_in(page, server.url, badge, pin)

        # --- the pack bench: E2E-1 in TOTE-1 --------------------------------------------
        log_in("K1", "5555")
        expect(page).to_have_url(re.compile(r"/pack$"))
        expect(screen).to_contain_text(re.compile(r"2\s*totes waiting to be packed"))
        wedge("TOTE-1")
        expect(screen).to_have_attribute("data-step", "items")
        expect(screen).to_contain_text("3 units left")
        wedge(EAN["SKU-A"])
        expect(page.get_by_role("status")).to_contain_text("SKU-A packed.")
        expect(page.locator("html")).to_have_attribute("data-last-scan", "accepted")

        # A unit of another order: refused in place, with what to do, and a buzz.
        wedge(EAN["SKU-C"])
        expect(page.get_by_role("alert")).to_contain_text("SKU-C is not in")
        expect(page.get_by_role("alert")).to_contain_text("Set it aside")
        expect(page.locator("html")).to_have_attribute("data-last-scan", "refused")
        expect(screen).to_contain_text("2 units left")

        wedge(EAN["SKU-A"])
        wedge(EAN["SKU-B"])
        expect(screen).to_have_attribute("data-step", "weight")
        weight = page.get_by_label("Weight in grams (or from the scale)")
        expect(weight).to_be_focused()
        weight.press_sequentially("1250")
        # Closing prints: the label PDF is loaded for the browser's print dialog.
        with page.expect_response(re.compile(r"/pack/parcels/LY\d{12}/label\.pdf")) as label:
            weight.press("Enter")
        expect(screen).to_have_attribute("data-step", "done")
        assert label.value.ok and label.value.headers["content-type"] == "application/pdf"
        tracking = re.search(r"/parcels/(LY\d{12})/", label.value.url).group(1)
        # (The frame holds Chromium's PDF viewer; the same address read directly is the label.)
        pdf = page.request.get(label.value.url).body()
        words = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
        assert tracking in words and "E2E-1" in words and "138****0000" in words
        expect(screen).to_contain_text(f"{tracking}")
        expect(screen).to_contain_text("1 of 1 · 1.25 kg · packed")

        # E2E-2 from TOTE-2, straight from the done screen's Scan field.
        wedge("TOTE-2")
        expect(screen).to_have_attribute("data-step", "items")
        wedge(EAN["SKU-C"])
        expect(screen).to_have_attribute("data-step", "weight")
        # (Chromium's PDF viewer may fetch the first label again meanwhile: wait for another one.)
        with page.expect_response(lambda r: "/label.pdf" in r.url and tracking not in r.url) as second:
            page.get_by_label("Weight in grams (or from the scale)").press_sequentially("400")
            page.get_by_role("button", name="Close and print").click()
        expect(screen).to_have_attribute("data-step", "done")
        cancelled = re.search(r"/parcels/(LY\d{12})/", second.value.url).group(1)
        # ...and then its order is cancelled: the parcel must not leave.
        assert page.request.post(server.url + "/api/v1/orders/E2E-2/cancel", headers=auth).ok
        page.get_by_role("button", name="Log out").click()

        # --- the dock -----------------------------------------------------------------
        log_in("D1", "6666")
        expect(page).to_have_url(re.compile(r"/ship$"))
        page.locator("[data-carrier='ly-express']").get_by_role("button", name="Open a handover").click()
        expect(screen).to_have_attribute("data-step", "scan")
        count = page.locator("[data-count]")
        expect(count).to_have_text("0")
        wedge(tracking)
        expect(page.get_by_role("status")).to_contain_text(f"{tracking} loaded.")
        expect(count).to_have_text("1")

        wedge(cancelled)
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text(f"STOP: parcel {cancelled}")
        expect(alert).to_contain_text("Do not load it")
        expect(page.locator("html")).to_have_attribute("data-alarm", "intercepted")
        expect(page.locator("html")).to_have_attribute("data-last-scan", "refused")
        expect(count).to_have_text("1")

        wedge(tracking)  # the same parcel again: counted once
        expect(page.get_by_role("status")).to_contain_text("already on this handover; counted once.")
        expect(count).to_have_text("1")

        page.get_by_role("link", name="Close handover").click()
        expect(screen).to_have_attribute("data-step", "confirm")
        with page.expect_response(re.compile(r"/ship/h/[^/]+/manifest\.pdf")) as manifest:
            page.get_by_role("button", name="Yes, close with 1 parcel").click()
        expect(screen).to_have_attribute("data-step", "closed")
        expect(page.get_by_role("heading")).to_have_text("Handover closed: 1 parcel")
        assert manifest.value.ok and manifest.value.headers["content-type"] == "application/pdf"

        shipped = page.request.get(server.url + "/api/v1/orders/E2E-1", headers=auth).json()
        assert [f["status"] for f in shipped["fulfilments"]] == ["shipped"]
        stopped = page.request.get(server.url + "/api/v1/orders/E2E-2", headers=auth).json()
        assert [f["status"] for f in stopped["fulfilments"]] == ["cancelled"]
    assert time.perf_counter() - started < 60
