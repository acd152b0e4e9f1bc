"""Outbound (出库 / 交接): parcels scanned onto a carrier's handover leave.

Each accepted scan ships the parcel; the fulfilment's last parcel ships the
fulfilment, which consumes its reservations and lowers on-hand stock in the
bins it was picked from, all in one transaction. A parcel of a cancelled
order is intercepted (拦截) here: refused, with the alarm, so it stays.
Each scan locks the parcel's order, fulfilments and parcels, then the
handover (docs/transitions.md), and checks them as they are then: a cancel
and a scan of one parcel never both succeed.

The dock screens call `scan`, which records the handheld's scan id
(`ScanRecord`, work "ship"): the same scan sent twice counts once, and the
same parcel scanned again onto the handover it is already on is not news.
`manifest_data` is the handover as `printing` lays it out.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.barcodes import read_scan
from app.fulfilment import clock, events, orders, pick, reserve, scans, tracking
from app.fulfilment.carriers import CARRIERS
from app.fulfilment.errors import Refusal
from app.models import (
    Fulfilment,
    FulfilmentStatus,
    Handover,
    HandoverStatus,
    Node,
    Parcel,
    ParcelStatus,
    ScanRecord,
    User,
    utcnow,
)
from printing.data import ManifestData, ManifestParcel


def open_handover(session: Session, node: Node, carrier_code: str, user: User) -> Handover:
    """The open handover of this carrier at the node, or a new one."""
    if carrier_code not in CARRIERS:
        raise Refusal("ship_unknown_carrier", carrier=carrier_code)
    # Two dock handhelds opening one carrier at once: the node's row is the
    # lock (PostgreSQL), so the second finds the first's handover.
    session.execute(select(Node.id).where(Node.id == node.id).with_for_update())
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


def lock_parcel(session: Session, parcel: Parcel) -> Parcel:
    """Hold the parcel in the lock order (its order, the order's fulfilments,
    the fulfilment's parcels), read afresh: a cancel, a second dock handheld
    or a rider at the same parcel waits here and then sees what was done."""
    orders.lock_fulfilment(session, parcel.fulfilment)
    return parcel


def _lock_handover(session: Session, handover: Handover) -> Handover:
    """After the parcels (the lock order): a close of the handover and a scan
    onto it queue here."""
    session.scalars(select(Handover).where(Handover.id == handover.id).with_for_update(key_share=True)
                    .execution_options(populate_existing=True)).all()
    return handover


def _locked(session: Session, handover: Handover, code: str) -> Parcel | None:
    """The parcel `code` names (None: no such parcel) and the handover, both
    locked in the lock order and read afresh."""
    parcel = find_parcel(session, code) if read_scan(code).text else None
    if parcel is not None:
        lock_parcel(session, parcel)
    _lock_handover(session, handover)
    return parcel


def scan_parcel(session: Session, handover: Handover, code: str, user: User) -> Parcel:
    """Ship one scanned parcel on `handover`; refusals leave everything as it was."""
    return _load(session, handover, _locked(session, handover, code), code, user)


def _load(session: Session, handover: Handover, parcel: Parcel | None, code: str, user: User) -> Parcel:
    """The parcel and the handover are locked: check, then ship."""
    if handover.status != HandoverStatus.open:
        raise Refusal("ship_handover_closed", handover=handover.ref)
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
    if parcel.status == ParcelStatus.returned:
        raise Refusal("parcel_received_back", tracking=parcel.tracking_number, at=clock.wall(parcel.returned_at))
    if parcel.status != ParcelStatus.packed:
        raise Refusal("ship_not_packed", tracking=parcel.tracking_number or "-")
    if parcel.carrier != handover.carrier:
        raise Refusal("ship_other_carrier", tracking=parcel.tracking_number,
                      carrier=CARRIERS[parcel.carrier].name, expected=CARRIERS[handover.carrier].name)
    now = utcnow()
    parcel.status, parcel.shipped_at, parcel.handover = ParcelStatus.shipped, now, handover
    events.record(session, "parcel.shipped", fulfilment=f,
                  data={**tracking.parcel_data(parcel),  # no report yet: a report needs the parcel shipped
                        "handover": handover.ref, "by": user.code})
    if all(p.status == ParcelStatus.shipped for p in f.parcels if p.items):
        _ship_fulfilment(session, f, now)
    return parcel


def _ship_fulfilment(session: Session, f: Fulfilment, now) -> None:
    reserve.consume(session, f, pick.units_by_bin(f))
    f.status, f.shipped_at, f.updated_at = FulfilmentStatus.shipped, now, now
    events.record(session, "fulfilment.shipped", fulfilment=f,
                  data={"parcels": [p.tracking_number for p in f.parcels if p.items]})
    orders.refresh(f.order)


def close_handover(session: Session, handover: Handover, user: User) -> Handover:
    """Closing twice (two handhelds at once) closes once: the second waits
    for the handover's lock and finds it closed."""
    _lock_handover(session, handover)
    if handover.status == HandoverStatus.closed:
        return handover
    handover.status, handover.closed_at, handover.closed_by_id = HandoverStatus.closed, utcnow(), user.id
    events.record(session, "handover.closed", node=handover.node,
                  data={"handover": handover.ref, "parcels": len(handover.parcels), "by": user.code})
    return handover



# --- the dock: scans with their ids -----------------------------------------------------

@dataclass(frozen=True)
class Shipped:
    """What an accepted dock scan did. `what`: shipped, repeat (the same scan
    id again), again (the parcel is already on this handover)."""

    what: str
    parcel_id: int | None = None

    @property
    def counted(self) -> bool:
        return self.what == "shipped"


def handover_at(session: Session, node: Node, ref: str, lock: bool = False) -> Handover:
    query = select(Handover).where(Handover.ref == ref, Handover.node_id == node.id)
    if lock:
        query = query.with_for_update()
    handover = session.scalar(query)
    if handover is None:
        raise Refusal("handover_not_found", handover=ref)
    return handover


def open_handovers(session: Session, node: Node) -> dict[str, Handover]:
    """carrier code -> its open handover at this node."""
    return {h.carrier: h for h in session.scalars(select(Handover).where(
        Handover.node_id == node.id, Handover.status == HandoverStatus.open))}


def waiting(session: Session, node: Node) -> dict[str, int]:
    """carrier code -> labelled parcels at this node not yet scanned out."""
    rows = session.execute(
        select(Parcel.carrier, func.count()).join(Fulfilment, Fulfilment.id == Parcel.fulfilment_id)
        .where(Fulfilment.node_id == node.id, Parcel.status == ParcelStatus.packed,
               Fulfilment.status.in_((FulfilmentStatus.picked, FulfilmentStatus.packed)))
        .group_by(Parcel.carrier)).all()
    return {carrier: n for carrier, n in rows}


def scanned(session: Session, handover: Handover) -> int:
    return session.scalar(select(func.count()).select_from(Parcel).where(Parcel.handover_id == handover.id)) or 0


def recent(session: Session, handover: Handover, limit: int = 5) -> list[Parcel]:
    """The last parcels scanned onto the handover, newest first."""
    return list(session.scalars(select(Parcel).where(Parcel.handover_id == handover.id)
                                .order_by(Parcel.shipped_at.desc(), Parcel.id.desc()).limit(limit)))


def scan(session: Session, user: User, scan_id: str, node: Node, ref: str, code: str) -> Shipped:
    """One parcel scanned onto handover `ref` (see `scan_parcel`).
    Refusals: ship_handover_closed, ship_unknown_parcel, ship_other_node,
    ship_intercepted, ship_already_shipped (on another handover),
    parcel_received_back, ship_not_packed, ship_other_carrier,
    scan_unreadable."""
    handover = handover_at(session, node, ref)
    parcel = _locked(session, handover, code)
    # After the locks: a retry that waited behind its original finds it counted.
    if scans.seen(session, user, scan_id) is not None:
        return Shipped("repeat")
    if not read_scan(code).text:
        raise Refusal("scan_unreadable")
    try:
        parcel = _load(session, handover, parcel, code, user)
    except Refusal as refusal:
        if refusal.key == "ship_already_shipped" and parcel.handover_id == handover.id:
            return Shipped("again", parcel_id=parcel.id)
        raise
    session.add(ScanRecord(scan_id=scan_id, user_id=user.id, work="ship", action="parcel",
                           code=parcel.tracking_number))
    session.flush()
    return Shipped("shipped", parcel_id=parcel.id)


def manifest_data(session: Session, handover: Handover) -> ManifestData:
    """The handover as the courier signs for it."""
    parcels = session.scalars(select(Parcel).where(Parcel.handover_id == handover.id)
                              .options(selectinload(Parcel.fulfilment))
                              .order_by(Parcel.shipped_at, Parcel.id)).all()

    def local(at):
        return at.astimezone(clock.zone()).replace(tzinfo=None) if at is not None else None
    return ManifestData(
        handover_ref=handover.ref, carrier_name=CARRIERS[handover.carrier].name, node_name=handover.node.name,
        opened_at=local(handover.opened_at), closed_at=local(handover.closed_at),
        parcels=tuple(ManifestParcel(p.tracking_number, p.sscc, p.fulfilment.ref, p.weight_g or 0) for p in parcels))
