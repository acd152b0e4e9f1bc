"""Packing (打包): picked units go into parcels, each verified by scan.

A packer scans a tote or a fulfilment, then every unit into the open parcel;
a unit that is not in the fulfilment, or one more than it needs, is refused.
Closing a parcel weighs it, gives it a carrier by delivery mode, a tracking
number and an SSCC. When every unit is in a closed parcel the fulfilment is
`packed`. A fulfilment cancelled meanwhile is intercepted (拦截) here.
"""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.barcodes import read_scan
from app.fulfilment import events, orders
from app.fulfilment.carriers import carrier_for
from app.fulfilment.errors import Refusal
from app.models import (
    Barcode,
    Fulfilment,
    FulfilmentStatus,
    Node,
    Parcel,
    ParcelItem,
    ParcelStatus,
    PickListFulfilment,
    User,
    utcnow,
)
from printing.gs1 import make_sscc

MAX_PARCEL_WEIGHT_G = 70_000


def find_for_packing(session: Session, node: Node, code: str) -> Fulfilment:
    """The fulfilment a packer scanned: its reference, or the tote it was picked into."""
    code = read_scan(code).text
    f = session.scalar(select(Fulfilment).where(Fulfilment.ref == code, Fulfilment.node_id == node.id))
    if f is None:
        # A tote is reused once emptied: the latest fulfilment picked into it counts.
        f = session.scalar(
            select(Fulfilment).join(PickListFulfilment, PickListFulfilment.fulfilment_id == Fulfilment.id)
            .where(PickListFulfilment.tote == code, Fulfilment.node_id == node.id)
            .order_by(Fulfilment.updated_at.desc()).limit(1))
    if f is None:
        raise Refusal("pack_not_found", code=code)
    check_packable(f)
    return f


def check_packable(f: Fulfilment) -> None:
    if f.status == FulfilmentStatus.cancelled:
        raise Refusal("pack_intercepted", fulfilment=f.ref)
    if f.status != FulfilmentStatus.picked:
        raise Refusal("pack_not_picked", fulfilment=f.ref, status=f.status.value)


def packed_units(f: Fulfilment) -> dict[int, int]:
    units: dict[int, int] = defaultdict(int)
    for parcel in f.parcels:
        for item in parcel.items:
            units[item.sku_id] += item.quantity
    return units


def remaining(f: Fulfilment) -> dict[int, int]:
    """sku_id -> units still to go into a parcel."""
    packed = packed_units(f)
    return {line.sku_id: line.quantity - packed.get(line.sku_id, 0)
            for line in f.lines if line.quantity - packed.get(line.sku_id, 0) > 0}


def open_parcel(f: Fulfilment) -> Parcel:
    """The parcel being filled, a new one if the last was closed."""
    for parcel in f.parcels:
        if parcel.status == ParcelStatus.open:
            return parcel
    parcel = Parcel(number=len(f.parcels) + 1, status=ParcelStatus.open)
    f.parcels.append(parcel)
    return parcel


def scan_item(session: Session, f: Fulfilment, code: str, quantity: int = 1) -> ParcelItem:
    """One scanned unit (or `quantity` of them) into the open parcel."""
    check_packable(f)
    scan = read_scan(code)
    barcode = session.scalar(select(Barcode).where(Barcode.code.in_(scan.product_codes())).limit(1))
    if barcode is None:
        raise Refusal("pack_unknown_product", code=code)
    left = remaining(f)
    if barcode.sku_id not in {line.sku_id for line in f.lines if line.quantity}:
        raise Refusal("pack_wrong_product", sku=barcode.sku.code, fulfilment=f.ref)
    if left.get(barcode.sku_id, 0) < quantity:
        raise Refusal("pack_extra_item", sku=barcode.sku.code, needed=_needed(f, barcode.sku_id))
    parcel = open_parcel(f)
    for item in parcel.items:
        if item.sku_id == barcode.sku_id:
            item.quantity += quantity
            return item
    item = ParcelItem(sku_id=barcode.sku_id, quantity=quantity)
    parcel.items.append(item)
    return item


def _needed(f: Fulfilment, sku_id: int) -> int:
    return sum(line.quantity for line in f.lines if line.sku_id == sku_id)


def close_parcel(session: Session, f: Fulfilment, weight_g: int, packer: User, gs1_company_prefix: str) -> Parcel:
    """Weigh and label the open parcel; the fulfilment is packed once nothing is left."""
    check_packable(f)
    parcel = next((p for p in f.parcels if p.status == ParcelStatus.open), None)
    if parcel is None or not parcel.items:
        raise Refusal("pack_empty_parcel")
    if not 0 < weight_g <= MAX_PARCEL_WEIGHT_G:
        raise Refusal("pack_weight_needed", limit=MAX_PARCEL_WEIGHT_G)
    session.flush()  # the parcel id is its serial
    carrier = carrier_for(f.delivery)
    now = utcnow()
    parcel.status, parcel.weight_g, parcel.packed_at, parcel.packed_by_id = ParcelStatus.packed, weight_g, now, packer.id
    parcel.carrier = carrier.code
    parcel.tracking_number = carrier.tracking_number(parcel.id)
    parcel.sscc = make_sscc(gs1_company_prefix, parcel.id)
    events.record(session, "parcel.packed", fulfilment=f,
                  data={"parcel": parcel.number, "tracking_number": parcel.tracking_number,
                        "carrier": carrier.code, "weight_g": weight_g, "by": packer.code})
    if not remaining(f):
        f.status, f.updated_at = FulfilmentStatus.packed, now
        events.record(session, "fulfilment.packed", fulfilment=f,
                      data={"parcels": len(f.parcels), "by": packer.code})
        orders.refresh(f.order)
    return parcel
