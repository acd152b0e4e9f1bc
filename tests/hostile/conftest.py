"""A node with every kind of worker logged in on their own handheld, a
picker holding a list, a dock with an open handover."""
from __future__ import annotations

import functools
import re

import pytest
import support
from hostile import USERS, Site
from sqlalchemy import select

from app import masterdata
from app.access import create_user
from app.barcodes import ean13
from app.models import Node

BARCODES = {"SKU-A": ean13("690123400001"), "SKU-B": ean13("690123400002")}
BINS = [("A-01-01-1", "SKU-A", 10), ("A-01-05-1", "SKU-B", 10)]


@pytest.fixture(autouse=True)
def quick_pins(monkeypatch):
    """PINs hashed cheaply here: scrypt's cost is for real badges, not tests."""
    from werkzeug.security import generate_password_hash

    from app import access
    monkeypatch.setattr(access, "generate_password_hash",
                        functools.partial(generate_password_hash, method="pbkdf2:sha256:1000"))


@pytest.fixture
def site(app, db, client, headers, admin_headers, token_for) -> Site:
    support.add_nodes(db, {"SH-PD": support.PLACES["SH-PD"]})
    with db.transaction() as s:
        for sku, code in BARCODES.items():
            masterdata.put_sku(s, sku, masterdata.SkuBody(name=f"商品 {sku}", barcodes=[code]))
        node = s.scalar(select(Node).where(Node.code == "SH-PD"))
        masterdata.count_stock(s, node, masterdata.StockBody(items=[
            masterdata.StockItem(location=loc, sku=sku, on_hand=n) for loc, sku, n in BINS]))
        for code, name, role, pin, language in USERS:
            create_user(s, code, name, role, pin, "SH-PD", language)
    refs = []
    for n, sku in enumerate(("SKU-A", "SKU-B")):
        answer = client.post("/api/v1/orders", headers=headers, json=support.order_body(
            f"H-{n}", [(sku, 1)], promised_by="2026-12-30T18:00:00+08:00"))
        assert answer.status_code == 201, answer.get_json()
        refs.append(answer.get_json()["fulfilments"][0]["id"])
    carrier = {"Authorization": f"Bearer {_carrier_token(db)}"}
    site = Site(app, db, headers, admin_headers, carrier, refs, "", {u[0]: u[4] for u in USERS}, {})
    # The picker holds a one-order list; the dock has an open handover.
    assert site.client("P1").post("/pick/claim", data={"orders": "1"}).status_code == 200
    answer = site.client("D1").post("/ship/open", data={"carrier": "ly-express"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    site.handover = re.search(r"/ship/h/([^/\"]+)/", answer.get_data(as_text=True)).group(1)
    return site


def _carrier_token(db) -> str:
    from app.access import create_carrier_token
    with db.transaction() as s:
        return create_carrier_token(s, "ly-express")
