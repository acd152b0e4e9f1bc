"""The delivery tests' floor: SH-PD (a warehouse, express) and SH-STORE (a
store with an 8 km same-city radius), two SKUs with barcodes (SKU-A at the
warehouse, SKU-B at the store), packers, dock staff, two riders and a lead;
and a carrier's token."""
from __future__ import annotations

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from app import access
from app.models import Barcode, Node, Role, Sku, User
from deliveries import GTIN
from support import PLACES, world


@pytest.fixture
def floor(db):
    nodes = {"SH-PD": PLACES["SH-PD"], "SH-STORE": {**PLACES["SH-STORE"], "kind": "store",
                                                    "same_city_radius_km": 8}}
    # Express orders take SKU-A (only SH-PD has it), same-city ones SKU-B (only the store).
    world(db, {"SH-PD": {"SKU-A": 50}, "SH-STORE": {"SKU-B": 50}}, nodes=nodes)
    with db.transaction() as s:
        for sku, code in GTIN.items():
            s.add(Barcode(code=code, sku_id=s.scalar(select(Sku.id).where(Sku.code == sku))))
        nodes = {n.code: n.id for n in s.scalars(select(Node))}
        for code, name, role, node, language in USERS:
            # PIN 1234, hashed cheaply once: scrypt per user would dominate the run.
            s.add(User(code=code, name=name, role=Role(role), node_id=nodes[node], pin_hash=PIN_HASH,
                       language=language))
    return db


PIN_HASH = generate_password_hash("1234", "pbkdf2:sha256:1000")
USERS = [("K001", "打包员", "packer", "SH-PD", "zh"), ("D001", "出库员", "dock", "SH-PD", "zh"),
         ("K002", "门店打包", "packer", "SH-STORE", "zh"), ("R001", "骑手小李", "rider", "SH-STORE", "zh"),
         ("R002", "Rider Sam", "rider", "SH-STORE", "en"), ("L001", "组长", "lead", "SH-STORE", "zh")]


@pytest.fixture
def carrier_headers(db) -> dict[str, str]:
    with db.transaction() as s:
        token = access.create_carrier_token(s, "ly-express")
    return {"Authorization": f"Bearer {token}"}
