"""Helpers of the delivery tests: take an order from intake to packed or
shipped through the real pipeline (picking stood in by set_status), and an
HTTP receiver on loopback for webhooks."""
from __future__ import annotations

import json

from sqlalchemy import select

from app import access
from app.fulfilment import intake, pack, ship
from app.models import FulfilmentStatus, Node, Order, User
from support import order_body, set_status

PREFIX = "6901234"
GTIN = {"SKU-A": "6901234567892", "SKU-B": "6901234000016"}


def user(s, code: str) -> User:
    return s.scalar(select(User).where(User.code == code))


def order_of(s, external_id: str) -> Order:
    return s.scalar(select(Order).where(Order.external_id == external_id))


def submit(db, external_id: str, lines, delivery: str = "express", channel: str = "shop", **extra) -> None:
    with db.transaction() as s:
        intake.submit(s, access.channel_named(s, channel),
                      json.dumps(order_body(external_id, lines, delivery=delivery, **extra)).encode())


def packed(db, external_id: str, lines=(("SKU-A", 1),), delivery: str = "express", parcels: int = 1,
           **extra) -> list[str]:
    """Intake, picked (stand-in), packed in `parcels` parcels; tracking numbers."""
    submit(db, external_id, lines, delivery, **extra)
    set_status(db, external_id, FulfilmentStatus.picked)
    units = [GTIN[sku] for sku, q in lines for _ in range(q)]
    assert len(units) >= parcels
    size = -(-len(units) // parcels)
    numbers = []
    with db.transaction() as s:
        f = order_of(s, external_id).fulfilments[0]
        packer = user(s, "K002" if delivery == "same_city" else "K001")
        for start in range(0, len(units), size):
            for code in units[start:start + size]:
                pack.scan_item(s, f, code)
            numbers.append(pack.close_parcel(s, f, 500, packer, PREFIX).tracking_number)
    return numbers


def shipped(db, external_id: str, lines=(("SKU-A", 1),), parcels: int = 1, **extra) -> list[str]:
    """Express: packed at SH-PD and scanned out on a ly-express handover."""
    numbers = packed(db, external_id, lines, "express", parcels, **extra)
    with db.transaction() as s:
        node = s.scalar(select(Node).where(Node.code == "SH-PD"))
        dock = user(s, "D001")
        handover = ship.open_handover(s, node, "ly-express", dock)
        for number in numbers:
            ship.scan_parcel(s, handover, number, dock)
    return numbers


def code_of(db, number: str, key: str = "test") -> str:
    """The delivery code of the parcel (the test app's secret key is "test")."""
    from app.fulfilment import tracking
    from app.models import Parcel
    with db.reading() as s:
        return tracking.delivery_code(key, s.scalar(select(Parcel).where(Parcel.tracking_number == number)))
