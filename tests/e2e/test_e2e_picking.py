"""A picker on a 360x640 handheld: log in, claim a batch, pick it by typing
barcodes into the Scan field and pressing Enter (as a wedge scanner does),
meet a wrong scan, declare a short pick, finish; then the order API shows
where the missing unit went."""
from __future__ import annotations

import json
import re
import time

import pytest
import support
import livesite
from livesite import LiveServer
from playwright.sync_api import expect
from sqlalchemy import select

from app import masterdata
from app.access import create_token, create_user
from app.barcodes import ean13
from app.fulfilment import intake
from app.models import Channel, Node

pytestmark = pytest.mark.e2e

EAN = {"SKU-A": ean13("690123400001"), "SKU-B": ean13("690123400002"), "SKU-C": ean13("690123400003")}


def load_floor(app) -> str:
    """Two warehouses, three SKUs, a picker; two orders reserved at SH-PD.
    Returns the sales channel's API token."""
    db = app.extensions["luyue.db"]
    support.add_nodes(db, {"SH-PD": support.PLACES["SH-PD"], "SH-JD": support.PLACES["SH-JD"]})
    with db.transaction() as s:
        for sku, code in EAN.items():
            masterdata.put_sku(s, sku, masterdata.SkuBody(name=f"商品 {sku}", barcodes=[code]))
        pd = s.scalar(select(Node).where(Node.code == "SH-PD"))
        masterdata.count_stock(s, pd, masterdata.StockBody(items=[
            masterdata.StockItem(location="A-01-01-1", sku="SKU-A", on_hand=5),
            # The books say 2; the picker will find 1.
            masterdata.StockItem(location="A-01-04-1", sku="SKU-B", on_hand=2),
            masterdata.StockItem(location="A-02-03-1", sku="SKU-C", on_hand=5)]))
        jd = s.scalar(select(Node).where(Node.code == "SH-JD"))
        masterdata.count_stock(s, jd, masterdata.StockBody(items=[
            masterdata.StockItem(location="J-01-01-1", sku="SKU-B", on_hand=9)]))
        create_user(s, "P2", "Tom Wilson", "picker", "2222", "SH-PD", "en")
        token = create_token(s, "shop")
    for external_id, lines, promised in (("E2E-1", [("SKU-A", 2), ("SKU-C", 1)], "2026-11-25T12:00:00+08:00"),
                                         ("E2E-2", [("SKU-B", 2)], "2026-11-25T18:00:00+08:00")):
        body = support.order_body(external_id, lines, promised_by=promised)
        with db.transaction() as s:
            channel = s.scalar(select(Channel).where(Channel.name == "shop"))
            intake.submit(s, channel, json.dumps(body).encode())
    return token


def test_a_picker_picks_a_batch_with_a_wrong_scan_and_a_short_pick(live_app, phone):
    started = time.perf_counter()
    token = load_floor(live_app)
    with LiveServer(live_app) as server:
        page = phone
        scan = page.get_by_label("Scan", exact=True)

        def wedge(code: str) -> None:
            livesite.wedge(page, code)

        page.goto(server.url + "/")
        expect(page.get_by_role("heading", name="Scan your badge")).to_be_visible()
        expect(scan).to_have_attribute("inputmode", "none")
        wedge("P2")
        page.get_by_label("PIN").fill("2222")
        page.get_by_role("button", name="Log in").click()

        expect(page.locator("#waiting")).to_have_text(re.compile(r"^\s*2\s*orders waiting\s*$"))
        page.get_by_role("button", name="Pick a batch (up to 4 orders)").click()

        expect(page.get_by_role("heading", name="Scan an empty tote")).to_be_visible()
        expect(page.locator("#screen")).to_contain_text("Slot 1 of 2")
        wedge("TOTE-01")
        expect(page.locator("#screen")).to_contain_text("Slot 2 of 2")
        wedge("TOTE-02")

        line = page.locator("#screen")
        expect(line).to_have_attribute("data-step", "location")
        expect(line).to_contain_text("A-01-01-1")

        # A wrong location: refused in place, with what was expected, and a buzz.
        wedge("A-02-03-1")
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("Wrong location: you scanned A-02-03-1. Go to A-01-01-1")
        expect(page.locator("html")).to_have_attribute("data-last-scan", "refused")
        expect(line).to_have_attribute("data-step", "location")

        wedge("A-01-01-1")
        expect(line).to_have_attribute("data-step", "product")
        expect(page.locator("html")).to_have_attribute("data-last-scan", "accepted")
        wedge(EAN["SKU-A"])
        expect(line).to_have_attribute("data-step", "quantity")
        wedge(EAN["SKU-A"])
        expect(line).to_have_attribute("data-step", "tote")
        wedge("TOTE-01")

        # SKU-B: two wanted, one in the bin. Pick it, then report the bin short.
        expect(line).to_contain_text("A-01-04-1")
        wedge("A-01-04-1")
        expect(line).to_have_attribute("data-step", "product")
        wedge(EAN["SKU-B"])
        expect(line).to_have_attribute("data-step", "quantity")
        page.get_by_role("link", name="Bin short").click()
        expect(page.get_by_role("heading", name="Is the bin short?")).to_be_visible()
        page.get_by_role("button", name="Yes, report 1 short").click()
        expect(page.get_by_role("status")).to_contain_text("Short reported: 1 re-dispatched.")
        expect(line).to_have_attribute("data-step", "tote")
        wedge("TOTE-02")

        # The last line, at the far end of aisle A-02.
        expect(line).to_contain_text("A-02-03-1")
        wedge("A-02-03-1")
        wedge(EAN["SKU-C"])
        expect(line).to_have_attribute("data-step", "tote")
        wedge("TOTE-01")
        expect(page.get_by_role("heading", name=re.compile(r"List PL-\d+ finished"))).to_be_visible()
        expect(page).to_have_url(re.compile(r"/pick/done/PL-\d+$"))

        # The order API: the missing unit went to SH-JD, the rest is picked here.
        answer = page.request.get(server.url + "/api/v1/orders/E2E-2", headers={"Authorization": f"Bearer {token}"})
        assert answer.ok
        fulfilments = answer.json()["fulfilments"]
        assert [(f["node"], f["status"], f["lines"]) for f in fulfilments] == [
            ("SH-PD", "picked", [{"sku": "SKU-B", "quantity": 1}]),
            ("SH-JD", "reserved", [{"sku": "SKU-B", "quantity": 1}]),
        ]
        assert fulfilments[1]["redispatched_from"] == fulfilments[0]["id"]
        assert fulfilments[1]["dispatch_reason"]["trigger"] == "short_pick"
        first = page.request.get(server.url + "/api/v1/orders/E2E-1", headers={"Authorization": f"Bearer {token}"})
        assert [f["status"] for f in first.json()["fulfilments"]] == ["picked"]
    assert time.perf_counter() - started < 60


def test_the_picker_reloads_mid_line_and_carries_on(live_app, phone):
    load_floor(live_app)
    with LiveServer(live_app) as server:
        page = phone
        scan = page.get_by_label("Scan", exact=True)
        page.goto(server.url + "/login")
        scan.press_sequentially("P2")
        scan.press("Tab")  # some scanners end with Tab instead of Enter
        page.get_by_label("PIN").fill("2222")
        page.get_by_label("PIN").press("Enter")
        page.get_by_role("button", name="Pick one order").click()
        scan.press_sequentially("TOTE-07")
        scan.press("Tab")
        scan.press_sequentially("A-01-01-1")
        scan.press("Enter")
        scan.press_sequentially(EAN["SKU-A"])
        scan.press("Enter")
        expect(page.locator("#screen")).to_have_attribute("data-step", "quantity")

        page.reload()
        expect(page.locator("#screen")).to_have_attribute("data-step", "quantity")
        expect(page.locator("#screen")).to_contain_text("1 / 2")
        expect(scan).to_be_focused()


def test_the_home_screen_counts_new_orders_as_they_arrive(live_app, phone):
    token = load_floor(live_app)
    with LiveServer(live_app) as server:
        page = phone
        scan = page.get_by_label("Scan", exact=True)
        page.goto(server.url + "/login")
        scan.press_sequentially("P2")
        scan.press("Enter")
        page.get_by_label("PIN").fill("2222")
        page.get_by_label("PIN").press("Enter")
        waiting = page.locator("#waiting")
        expect(waiting).to_have_text(re.compile(r"^\s*2\s*orders waiting\s*$"))
        # An order arrives through the API; the websocket pushes the new count.
        body = support.order_body("E2E-3", [("SKU-A", 1)], promised_by="2026-11-25T20:00:00+08:00")
        answer = page.request.post(server.url + "/api/v1/orders", data=body,
                                   headers={"Authorization": f"Bearer {token}"})
        assert answer.status == 201
        expect(waiting).to_have_text(re.compile(r"^\s*3\s*orders waiting\s*$"))
