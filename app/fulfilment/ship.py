"""Outbound (出库 / 交接): parcels scanned onto a carrier's handover leave.

Each accepted scan ships the parcel; the fulfilment's last parcel ships the
fulfilment, which consumes its reservations and lowers on-hand stock in the
bins it was picked from, all in one transaction. A parcel of a cancelled
order is intercepted (拦截) here: refused, with the alarm, so it stays.
"""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.barcodes import read_scan
from app.fulfilment import events, orders, reserve
from app.fulfilment.carriers import CARRIERS
from app.fulfilment.errors import Refusal
from app.models import (
    Fulfilment,
    FulfilmentLine,
    FulfilmentStatus,
    Handover,
    HandoverStatus,
    Node,
    Parcel,
    ParcelStatus,
    PickLine,
    User,
    utcnow,
)


def open_handover(session: Session, node: Node, carrier_code: str, user: User) -> Handover:
    """The open handover of this carrier at the node, or a new one."""
    if carrier_code not in CARRIERS:
        raise Refusal("ship_unknown_carrier", carrier=carrier_code)
    handover = session.scalar(select(Handover).where(
        Handover.node_id == node.id, Handover.carrier == carrier_code, Handover.status == HandoverStatus.open))
    if handover is not None:
        return handover
    n = session.scalar(select(func.count()).select_from(Handover).where(Handover.node_id == node.id)) or 0
    now = utcnow()
    handover = Handover(ref=f"H-{node.code}-{now:%Y%m%d}-{n + 1:04d}", node_id=node.id, carrier=carrier_code,
                        status=HandoverStatus.open, opened_by_id=user.id, opened_at=now)
    session.add(handover)
    session.flush()
    events.record(session, "handover.opened", node=node, data={"handover": handover.ref, "carrier": carrier_code})
    return handover


def find_parcel(session: Session, code: str) -> Parcel | None:
    """By the GS1-128 SSCC (AI 00) or the carrier's tracking number."""
    scan = read_scan(code)
    sscc = scan.gs1.get("00") or (scan.text if len(scan.text) == 18 and scan.text.isdigit() else None)
    if sscc:
        return session.scalar(select(Parcel).where(Parcel.sscc == sscc))
    return session.scalar(select(Parcel).where(Parcel.tracking_number == scan.text.upper()))


def scan_parcel(session: Session, handover: Handover, code: str, user: User) -> Parcel:
    """Ship one scanned parcel on `handover`; refusals leave everything as it was."""
    if handover.status != HandoverStatus.open:
        raise Refusal("ship_handover_closed", handover=handover.ref)
    parcel = find_parcel(session, code)
    if parcel is None:
        raise Refusal("ship_unknown_parcel", code=code)
    f = parcel.fulfilment
    if f.node_id != handover.node_id:
        raise Refusal("ship_other_node", tracking=parcel.tracking_number)
    if f.status == FulfilmentStatus.cancelled or parcel.status == ParcelStatus.intercepted:
        raise Refusal("ship_intercepted", tracking=parcel.tracking_number, fulfilment=f.ref)
    if parcel.status in (ParcelStatus.shipped, ParcelStatus.delivered):
        raise Refusal("ship_already_shipped", tracking=parcel.tracking_number,
                      handover=parcel.handover.ref if parcel.handover else "-")
    if parcel.status != ParcelStatus.packed:
        raise Refusal("ship_not_packed", tracking=parcel.tracking_number or "-")
    if parcel.carrier != handover.carrier:
        raise Refusal("ship_other_carrier", tracking=parcel.tracking_number,
                      carrier=CARRIERS[parcel.carrier].name, expected=CARRIERS[handover.carrier].name)
    now = utcnow()
    parcel.status, parcel.shipped_at, parcel.handover = ParcelStatus.shipped, now, handover
    events.record(session, "parcel.shipped", fulfilment=f,
                  data={"tracking_number": parcel.tracking_number, "carrier": parcel.carrier,
                        "handover": handover.ref, "by": user.code})
    if all(p.status == ParcelStatus.shipped for p in f.parcels if p.items):
        _ship_fulfilment(session, f, now)
    return parcel


def _ship_fulfilment(session: Session, f: Fulfilment, now) -> None:
    reserve.consume(session, f, units_by_bin(session, f))
    f.status, f.shipped_at, f.updated_at = FulfilmentStatus.shipped, now, now
    events.record(session, "fulfilment.shipped", fulfilment=f,
                  data={"parcels": [p.tracking_number for p in f.parcels if p.items]})
    orders.refresh(f.order)


def units_by_bin(session: Session, f: Fulfilment) -> dict[tuple[int, int], int]:
    """(location_id, sku_id) -> units picked from that bin for this fulfilment."""
    rows = session.execute(
        select(PickLine.location_id, PickLine.sku_id, func.sum(PickLine.picked))
        .join(FulfilmentLine, FulfilmentLine.id == PickLine.fulfilment_line_id)
        .where(FulfilmentLine.fulfilment_id == f.id).group_by(PickLine.location_id, PickLine.sku_id)).all()
    return {(loc, sku): int(units) for loc, sku, units in rows if units}


def close_handover(session: Session, handover: Handover, user: User) -> Handover:
    if handover.status == HandoverStatus.closed:
        return handover
    handover.status, handover.closed_at, handover.closed_by_id = HandoverStatus.closed, utcnow(), user.id
    events.record(session, "handover.closed", node=handover.node,
                  data={"handover": handover.ref, "parcels": len(handover.parcels), "by": user.code})
    return handover

