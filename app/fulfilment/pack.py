"""Packing (打包): picked units go into parcels, each verified by scan.

A packer scans a tote or a fulfilment, then every unit into the open parcel;
a unit that is not in the fulfilment, or one more than it needs, is refused.
Closing a parcel weighs it, gives it a carrier by delivery mode, a tracking
number and an SSCC. When every unit is in a closed parcel the fulfilment is
`packed`. A fulfilment cancelled meanwhile is intercepted (拦截) here.

The bench screens call `scan` and `close`: each takes the id the handheld
made for the scan and records it (`ScanRecord`, work "pack"), so a retry of
the same scan over flaky Wi-Fi counts once. `label_data` and
`packing_slip_data` turn a parcel into what `printing` lays out.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.barcodes import read_scan
from app.fulfilment import events, orders, pick, scans, tracking
from app.fulfilment.carriers import CARRIERS, carrier_for
from app.fulfilment.errors import Refusal
from app.fulfilment.ship import find_parcel
from app.models import (
    Barcode,
    Fulfilment,
    FulfilmentStatus,
    Node,
    Parcel,
    ParcelItem,
    ParcelStatus,
    ScanRecord,
    User,
    utcnow,
)
from printing.data import Address, LabelData, PackingSlipData, PackingSlipLine, ShipFrom
from printing.gs1 import make_sscc

MAX_PARCEL_WEIGHT_G = 70_000


def find_for_packing(session: Session, node: Node, code: str) -> Fulfilment:
    """The fulfilment a packer scanned: its reference, or the tote it was picked into."""
    code = read_scan(code).text
    f = session.scalar(select(Fulfilment).where(Fulfilment.ref == code, Fulfilment.node_id == node.id))
    if f is None:
        f = pick.fulfilment_in_tote(session, node, code)
    if f is None:
        raise Refusal("pack_not_found", code=code)
    check_packable(f)
    return f


PACKED_OR_LATER = (FulfilmentStatus.packed, FulfilmentStatus.shipped, FulfilmentStatus.delivered,
                   FulfilmentStatus.completed)


def check_packable(f: Fulfilment) -> None:
    if f.status == FulfilmentStatus.cancelled:
        raise Refusal("pack_intercepted", fulfilment=f.ref, bins=pick.put_back_list(f))
    if f.status in PACKED_OR_LATER:
        raise Refusal("pack_already_packed", fulfilment=f.ref,
                      parcels=sum(1 for p in f.parcels if p.status != ParcelStatus.open))
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
                  data={"parcel": parcel.number, **tracking.parcel_data(parcel), "weight_g": weight_g,
                        "by": packer.code})
    if not remaining(f):
        f.status, f.updated_at = FulfilmentStatus.packed, now
        events.record(session, "fulfilment.packed", fulfilment=f,
                      data={"parcels": len(f.parcels), "by": packer.code})
        orders.refresh(f.order)
    return parcel


# --- the bench: scans with their ids ---------------------------------------------------

@dataclass(frozen=True)
class Packed:
    """What an accepted bench scan did. `what`: item, closed, repeat.
    `parcel_id`: the parcel a close labelled (also on a repeated close)."""

    what: str
    sku: str | None = None
    parcel_id: int | None = None

    @property
    def repeat(self) -> bool:
        return self.what == "repeat"


def fulfilment_at(session: Session, node: Node, ref: str, lock: bool = False) -> Fulfilment:
    """A fulfilment of this node by its ref; when `lock`, locked for the
    scan's transaction in the lock order (its order, the order's
    fulfilments, its parcels) and read afresh: two packers at one order never
    both add, and a cancel is either seen here or sees the packing."""
    f = session.scalar(select(Fulfilment).where(Fulfilment.ref == ref, Fulfilment.node_id == node.id))
    if f is None:
        raise Refusal("pack_not_found", code=ref)
    if lock:
        orders.lock_fulfilment(session, f)
    return f


def open_at(session: Session, node: Node) -> list[Fulfilment]:
    """Picked fulfilments of this node with a parcel being filled, to resume."""
    filling = select(Parcel.fulfilment_id).where(Parcel.status == ParcelStatus.open)
    return list(session.scalars(
        select(Fulfilment).where(Fulfilment.node_id == node.id, Fulfilment.status == FulfilmentStatus.picked,
                                 Fulfilment.id.in_(filling)).order_by(Fulfilment.updated_at)))


def waiting(session: Session, node: Node) -> int:
    """Picked fulfilments of this node: the totes waiting at the bench."""
    return session.scalar(select(func.count()).select_from(Fulfilment).where(
        Fulfilment.node_id == node.id, Fulfilment.status == FulfilmentStatus.picked)) or 0


def _record(session: Session, user: User, scan_id: str, action: str, code: str | None,
            quantity: int | None = None) -> None:
    session.add(ScanRecord(scan_id=scan_id, user_id=user.id, work="pack", action=action, code=code,
                           quantity=quantity))
    session.flush()




def scan(session: Session, user: User, scan_id: str, node: Node, ref: str, code: str) -> Packed:
    """One unit scanned at the bench into the open parcel of fulfilment `ref`.
    Refusals: pack_not_found, pack_intercepted, pack_already_packed,
    pack_not_picked, pack_unknown_product, pack_wrong_product, pack_extra_item."""
    f = fulfilment_at(session, node, ref, lock=True)
    # After the lock: a retry that waited behind its original finds it counted.
    if scans.seen(session, user, scan_id) is not None:
        return Packed("repeat")
    if not read_scan(code).text:
        raise Refusal("scan_unreadable")
    item = scan_item(session, f, code)
    f.updated_at = utcnow()
    _record(session, user, scan_id, "item", read_scan(code).text[:200], 1)
    return Packed("item", sku=item.sku.code if item.sku else None)


def close(session: Session, user: User, scan_id: str, node: Node, ref: str, weight_g: int,
          gs1_company_prefix: str) -> Packed:
    """Weigh and label the open parcel of `ref` (see `close_parcel`). A
    repeated close answers with the parcel it closed the first time.
    Refusals: pack_empty_parcel, pack_weight_needed, and those of `scan`."""
    f = fulfilment_at(session, node, ref, lock=True)
    seen = scans.seen(session, user, scan_id)
    if seen is not None:
        parcel = session.scalar(select(Parcel).where(Parcel.tracking_number == seen.code)) if seen.code else None
        return Packed("repeat", parcel_id=parcel.id if parcel is not None else None)
    parcel = close_parcel(session, f, weight_g, user, gs1_company_prefix)
    _record(session, user, scan_id, "close", parcel.tracking_number, weight_g)
    return Packed("closed", parcel_id=parcel.id)


# --- what gets printed ------------------------------------------------------------------

def parcel_at(session: Session, node: Node, code: str) -> Parcel:
    """A labelled parcel of this node by its tracking number or SSCC, as
    the dock finds it (`ship.find_parcel`)."""
    parcel = find_parcel(session, code)
    if parcel is None or parcel.tracking_number is None or parcel.fulfilment.node_id != node.id:
        raise Refusal("parcel_not_found", code=read_scan(code).text)
    return parcel


def ship_from(node: Node) -> ShipFrom:
    region = node.province + (node.city if node.city and node.city != node.province else "")
    return ShipFrom(node_name=node.name, address=f"{region} {node.code}".strip())


def ship_to(f: Fulfilment) -> Address:
    to, order = f.order.ship_to or {}, f.order
    return Address(name=to.get("name") or order.customer_name, phone=to.get("phone") or order.customer_phone,
                   province=to.get("province", ""), city=to.get("city", ""), district=to.get("district", ""),
                   line1=to.get("line1", ""), postal_code=to.get("postal_code", ""))


def parcel_count(f: Fulfilment) -> int:
    """Parcels of the fulfilment as far as known: the labelled ones, and one
    more while units are left to pack (a first box of two says 1 of 2)."""
    labelled = sum(1 for p in f.parcels if p.status != ParcelStatus.open)
    more = 1 if f.status == FulfilmentStatus.picked and remaining(f) else 0
    return max(labelled + more, 1)


def label_data(parcel: Parcel) -> LabelData:
    """The shipping label of a labelled parcel."""
    f = parcel.fulfilment
    carrier = CARRIERS[parcel.carrier]
    return LabelData(
        carrier_name=carrier.name, service=carrier.service, tracking_number=parcel.tracking_number,
        tracking_url=carrier.tracking_url(parcel.tracking_number), sscc=parcel.sscc,
        ship_from=ship_from(f.node), ship_to=ship_to(f), order_ref=f.order.external_id, fulfilment_ref=f.ref,
        parcel_no=parcel.number, parcel_count=max(parcel_count(f), parcel.number), weight_g=parcel.weight_g or 0,
        same_city=f.delivery.value == "same_city")


def packing_slip_data(parcel: Parcel) -> PackingSlipData:
    """What is in one parcel, to put in the box."""
    f = parcel.fulfilment
    return PackingSlipData(
        fulfilment_ref=f.ref, order_ref=f.order.external_id, ship_to=ship_to(f), node_name=f.node.name,
        lines=tuple(PackingSlipLine(item.sku.code, item.sku.name, item.quantity) for item in parcel.items))


def labelled_on(session: Session, node: Node, start, end) -> list[Parcel]:
    """Parcels of this node labelled between two instants, oldest first."""
    return list(session.scalars(
        select(Parcel).join(Fulfilment, Fulfilment.id == Parcel.fulfilment_id)
        .where(Fulfilment.node_id == node.id, Parcel.packed_at >= start, Parcel.packed_at < end,
               Parcel.tracking_number.is_not(None))
        .order_by(Parcel.packed_at, Parcel.id)))


def printer_failed(session: Session, parcel: Parcel, printer: str, reason: str, by: User) -> None:
    """A label did not reach the bench's printer: the parcel stays packed, and
    the lead sees it among the exceptions. A node event only: the sales
    platform's feed is not told of the shop floor's printers."""
    events.record(session, "printer.failed", node=parcel.fulfilment.node,
                  data={"printer": printer, "reason": reason, "parcel": parcel.tracking_number,
                        "fulfilment": parcel.fulfilment.ref, "by": by.code})
