"""A node to pick at: bins over three aisles, SKUs with barcodes, floor users,
and orders taken through the order API, so fulfilments are `reserved` there."""
from __future__ import annotations

import pytest
import support
from handhelds import BARCODES, BINS, EXTRA_BARCODES, USERS, Floor
from sqlalchemy import select

from app import masterdata
from app.access import create_user
from app.models import Node


@pytest.fixture(autouse=True)
def quick_pins(monkeypatch):
    """PINs hashed cheaply here: scrypt's cost is for real badges, not tests."""
    import functools

    from werkzeug.security import generate_password_hash

    from app import access
    monkeypatch.setattr(access, "generate_password_hash",
                        functools.partial(generate_password_hash, method="pbkdf2:sha256:1000"))


@pytest.fixture
def floor(db, headers) -> "Floor":
    support.add_nodes(db, {"SH-PD": support.PLACES["SH-PD"], "SH-JD": support.PLACES["SH-JD"]})
    with db.transaction() as s:
        for sku, code in BARCODES.items():
            masterdata.put_sku(s, sku, masterdata.SkuBody(name=f"商品 {sku}", barcodes=[code] + EXTRA_BARCODES.get(sku, [])))
        pd = s.scalar(select(Node).where(Node.code == "SH-PD"))
        masterdata.count_stock(s, pd, masterdata.StockBody(items=[
            masterdata.StockItem(location=loc, sku=sku, on_hand=n) for loc, sku, n in BINS]))
        jd = s.scalar(select(Node).where(Node.code == "SH-JD"))
        masterdata.count_stock(s, jd, masterdata.StockBody(items=[
            masterdata.StockItem(location="J-01-01-1", sku=sku, on_hand=20) for sku in ("SKU-A", "SKU-B", "SKU-C")]))
        for code, name, role, pin, node, language in USERS:
            create_user(s, code, name, role, pin, node, language)
    return Floor(db, headers)

