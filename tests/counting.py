"""What the count tests share: a busy bin (orders picked into totes, packed,
shipped through the real pick, pack and outbound steps) and the figures a
count is judged by. Imported as `counting`."""
from __future__ import annotations

import datetime as dt
import json
import uuid

from sqlalchemy import select

from app import access
from app.fulfilment import count, intake, pack, pick, ship
from app.models import Barcode, BinStock, Fulfilment, Location, Node, Order, Sku, User
from support import order_body, world

GTIN = "6901234567892"   # SKU-A
BIN = "A-01-01-1"
PREFIX = "6901234"


def busy_floor(db, units: int) -> None:
    """SH-PD with `units` of SKU-A in bin A-01-01-1 and staff: picker P1,
    packer K1, dock D1, lead L1, counter C1 (a picker)."""
    world(db, {"SH-PD": {"SKU-A": units}})
    with db.transaction() as s:
        s.add(Barcode(code=GTIN, sku_id=s.scalar(select(Sku.id).where(Sku.code == "SKU-A"))))
        access.create_user(s, "P1", "Picker", "picker", "1234", "SH-PD", "en")
        access.create_user(s, "K1", "Packer", "packer", "1234", "SH-PD", "en")
        access.create_user(s, "D1", "Dock", "dock", "1234", "SH-PD", "en")
        access.create_user(s, "L1", "Lead", "lead", "1234", "SH-PD", "en")
        access.create_user(s, "C1", "Counter", "picker", "1234", "SH-PD", "en")


def user(s, code: str) -> User:
    return s.scalar(select(User).where(User.code == code))


def order(db, external_id: str, units: int) -> str:
    with db.transaction() as s:
        intake.submit(s, access.channel_named(s, "shop"),
                      json.dumps(order_body(external_id, [("SKU-A", units)])).encode())
        return s.scalar(select(Order).where(Order.external_id == external_id)).fulfilments[0].ref


def pick_all(db, tote: str, picker: str = "P1", units: int | None = None) -> None:
    """P1 claims the next list (one order) and picks it scan by scan into
    `tote`; with `units`, stops after that many units are in hand."""
    with db.transaction() as s:
        pick.claim_next(s, user(s, picker), 1)
    in_hand = 0
    for _ in range(500):
        with db.transaction() as s:
            p = user(s, picker)
            pl = pick.held_by(s, p)
            if pl is None:
                return
            if pick.next_tote_slot(pl) is not None:
                code = tote
            else:
                line = pick.current_line(pl)
                if line.step.value in ("product", "quantity"):
                    if units is not None and in_hand >= units:
                        return
                    in_hand += 1
                code = {"location": line.location.code, "product": GTIN, "quantity": GTIN,
                        "tote": pick.slot_of(pl, line).tote}[line.step.value]
            pick.scan(s, p, "t-" + uuid.uuid4().hex, code)


def pack_all(db, ref: str, units: int) -> str:
    """K1 packs the fulfilment into one parcel; returns its tracking number."""
    with db.transaction() as s:
        f = s.scalar(select(Fulfilment).where(Fulfilment.ref == ref))
        pack.scan_item(s, f, GTIN, quantity=units)
        return pack.close_parcel(s, f, 500, user(s, "K1"), PREFIX).tracking_number


def ship_parcel(s, tracking: str) -> None:
    """D1 scans the parcel onto the ly-express handover: it ships."""
    dock = user(s, "D1")
    handover = ship.open_handover(s, s.get(Node, dock.node_id), "ly-express", dock)
    ship.scan_parcel(s, handover, tracking, dock)


def bin_on_hand(db, code: str = BIN) -> int:
    with db.reading() as s:
        return s.scalar(select(BinStock.on_hand).join(Location, Location.id == BinStock.location_id)
                        .join(Sku, Sku.id == BinStock.sku_id).where(Location.code == code, Sku.code == "SKU-A"))


def units_in_totes(db, code: str = BIN) -> int:
    with db.reading() as s:
        location = s.scalar(select(Location).where(Location.code == code))
        return count.in_totes(s, location.id, s.scalar(select(Sku.id).where(Sku.code == "SKU-A")))


def now() -> dt.datetime:
    """When the counter scanned the bin: picks before it are no concern."""
    return dt.datetime.now(dt.timezone.utc)
