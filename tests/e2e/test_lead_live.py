"""A lead's dashboard on a tablet follows a picker on a handheld, live: counts
move as the picker claims and picks, a short pick shows up in the
exceptions; the lead's connection drops, the picker goes on, and the page
reconnects by itself with its last seq and is sent what it missed, once."""
from __future__ import annotations

import json
import re

import pytest
import support
import livesite
from livesite import PHONE, LiveServer, log_in
from playwright.sync_api import expect
from sqlalchemy import select

from app import masterdata
from app.access import create_token, create_user
from app.barcodes import ean13
from app.fulfilment import intake
from app.models import Channel, Node

pytestmark = pytest.mark.e2e

EAN = {"SKU-A": ean13("690123400001"), "SKU-B": ean13("690123400002")}
TABLET = {"width": 1024, "height": 768}


def load_floor(app) -> None:
    """SH-PD with two SKUs (SKU-B's bin holds fewer than the books say), SH-JD
    to take what is short; a picker and a lead; two orders reserved at SH-PD."""
    db = app.extensions["luyue.db"]
    support.add_nodes(db, {"SH-PD": support.PLACES["SH-PD"], "SH-JD": support.PLACES["SH-JD"]})
    with db.transaction() as s:
        for sku, code in EAN.items():
            masterdata.put_sku(s, sku, masterdata.SkuBody(name=f"商品 {sku}", barcodes=[code]))
        pd = s.scalar(select(Node).where(Node.code == "SH-PD"))
        masterdata.count_stock(s, pd, masterdata.StockBody(items=[
            masterdata.StockItem(location="A-01-01-1", sku="SKU-A", on_hand=5),
            masterdata.StockItem(location="A-01-04-1", sku="SKU-B", on_hand=2)]))
        jd = s.scalar(select(Node).where(Node.code == "SH-JD"))
        masterdata.count_stock(s, jd, masterdata.StockBody(items=[
            masterdata.StockItem(location="J-01-01-1", sku="SKU-B", on_hand=9)]))
        create_user(s, "P2", "Tom Wilson", "picker", "2222", "SH-PD", "en")
        create_user(s, "L1", "Lena Lead", "lead", "3333", "SH-PD", "en")
        create_token(s, "shop")
    for external_id, lines in (("E2E-1", [("SKU-A", 1)]), ("E2E-2", [("SKU-B", 2)])):
        body = support.order_body(external_id, lines)
        with db.transaction() as s:
            intake.submit(s, s.scalar(select(Channel).where(Channel.name == "shop")), json.dumps(body).encode())


def test_the_dashboard_follows_a_picker_and_recovers_a_dropped_connection(live_app, browser):
    load_floor(live_app)
    with LiveServer(live_app) as server:
        tablet = browser.new_context(viewport=TABLET, locale="en-US")
        handheld = browser.new_context(viewport=PHONE, locale="en-US", has_touch=True)
        try:
            lead, picker = tablet.new_page(), handheld.new_page()
            for page in (lead, picker):
                page.set_default_timeout(5000)

            # Every socket the dashboard opens passes here: the test can cut it
            # and keep the page from reconnecting for a while.
            urls, state = [], {"blocked": False, "socket": None}

            def route(ws):
                urls.append(ws.url)
                if state["blocked"]:
                    ws.close(code=1013, reason="try again later")  # the ws extension retries
                    return
                ws.connect_to_server()
                state["socket"] = ws

            lead.route_web_socket(re.compile(r"/lead/live"), route)

            def stage(key: str):
                return lead.locator(f'[data-stage="{key}"] .stage-count')

            log_in(lead, server.url, "L1", "3333")
            expect(lead).to_have_url(re.compile(r"/lead$"))
            expect(lead.locator("#lead-conn")).to_have_attribute("data-state", "connected")
            expect(lead.locator("#lead-conn")).to_have_text("Live")
            expect(stage("to_pick")).to_have_text("2")

            # The picker claims both orders: the dashboard moves them to picking.
            log_in(picker, server.url, "P2", "2222")
            picker.get_by_role("button", name="Pick a batch (up to 4 orders)").click()
            expect(stage("picking")).to_have_text("2")
            expect(stage("to_pick")).to_have_text("0")
            expect(lead.locator("#lead-lists")).to_contain_text("Tom Wilson")

            def wedge(code: str) -> None:
                livesite.wedge(picker, code)

            line = picker.locator("#screen")
            wedge("T-1")
            expect(line).to_contain_text("Slot 2 of 2")
            wedge("T-2")
            for code, step in (("A-01-01-1", "product"), (EAN["SKU-A"], "tote")):
                expect(line).to_have_attribute("data-step", "location" if step == "product" else "product")
                wedge(code)
                expect(line).to_have_attribute("data-step", step)
            wedge("T-1")
            expect(line).to_contain_text("A-01-04-1")
            expect(stage("to_pack")).to_have_text("1")
            expect(stage("picking")).to_have_text("1")
            seen = int(lead.locator("#lead-seq").get_attribute("data-seq"))

            # The connection drops; the page cannot get back for now. (Its
            # retries come quickly here: the backoff is not what is tested.)
            lead.evaluate("htmx.config.wsReconnectDelay = () => 200")
            state["blocked"] = True
            state["socket"].close(code=1012, reason="restart")
            expect(lead.locator("#lead-conn")).to_have_attribute("data-state", "reconnecting")

            # Meanwhile the picker finds SKU-B short and finishes the list.
            wedge("A-01-04-1")
            expect(line).to_have_attribute("data-step", "product")
            wedge(EAN["SKU-B"])
            expect(line).to_have_attribute("data-step", "quantity")
            picker.get_by_role("link", name="Bin short").click()
            picker.get_by_role("button", name="Yes, report 1 short").click()
            expect(picker.get_by_role("status")).to_contain_text("Short reported: 1 re-dispatched.")
            expect(line).to_have_attribute("data-step", "tote")
            wedge("T-2")
            expect(picker.get_by_role("heading", name=re.compile(r"List PL-\d+ finished"))).to_be_visible()
            expect(stage("to_pack")).to_have_text("1")  # not live: still what it was

            state["blocked"] = False
            expect(lead.locator("#lead-conn")).to_have_attribute("data-state", "connected", timeout=15000)
            expect(stage("to_pack")).to_have_text("2")
            expect(stage("picking")).to_have_text("0")
            # Exactly one entry for the short pick, replayed from the outbox.
            expect(lead.locator('#lead-exceptions li[data-type="pick.short"]')).to_have_count(1)
            expect(lead.locator("#lead-exceptions li")).to_have_count(1)
            expect(lead.locator("#lead-exceptions")).to_contain_text("SKU-B")
            # The page asked from the last seq it had seen.
            assert re.search(rf"after={seen}(&|$)", urls[-1]), urls
        finally:
            tablet.close()
            handheld.close()
