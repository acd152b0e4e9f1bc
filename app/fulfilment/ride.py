"""Same-city delivery (同城配): a rider takes parcels of the `ly-rider` carrier
from the dock and delivers each with a proof.

Pickup: the rider scans a parcel's label at the dock. A parcel still packed
is shipped there and then (onto the node's open `ly-rider` handover, as the
dock's outbound scan would: reservation consumed, stock lowered); one the
dock already scanned out is simply taken. Either way it is
`out_for_delivery` with this rider. Scanning it again is a no-op.

Drop list: the rider's parcels not yet delivered, nearest to the node first
(straight-line distance to the address; addresses without coordinates last).

Every rider action carries the handheld's scan id (`ScanRecord`, work
"ride"): a retry over flaky mobile data is answered as the first time and
never counts a wrong code twice. Each action locks the parcel first, in the
lock order (ship.lock_parcel), and looks the scan id up after: a retry that
raced its original waits, then answers as it did; a cancel and a pickup of
one parcel never both succeed.

Proof: the 4-digit code the customer received (`tracking.delivery_code`, in
the order document for the sales platform to pass on), or a photo. A wrong
code is counted on the parcel and refused; after `MAX_CODE_FAILURES` wrong
codes the code is locked and only a photo or a lead proves delivery. A lead
may also unlock the code. Delivery goes through `tracking.report`, so the
channel's feed gets `parcel.out_for_delivery` / `parcel.delivered` like a
courier's, and the fulfilment and order follow.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from app.fulfilment import clock, scans, ship, tracking
from app.fulfilment.carriers import CARRIERS
from app.fulfilment.errors import Refusal
from app.fulfilment.geo import haversine_km
from app.models import (
    Fulfilment,
    FulfilmentStatus,
    Node,
    Order,
    Parcel,
    ParcelDelivery,
    ParcelStatus,
    ProofKind,
    ScanRecord,
    TrackingStatus,
    User,
    utcnow,
)

RIDER_CARRIER = tracking.RIDER_CARRIER
MAX_CODE_FAILURES = 5
ON_THE_WAY = (TrackingStatus.out_for_delivery, TrackingStatus.failed_attempt)


@dataclass(frozen=True)
class Drop:
    parcel: Parcel
    delivery: ParcelDelivery
    order: Order
    km: float | None

    @property
    def code_locked(self) -> bool:
        return self.delivery.code_failures >= MAX_CODE_FAILURES


@dataclass(frozen=True)
class CodeCheck:
    """A code attempt: delivered, or wrong with `left` tries (0: now locked)."""

    delivered: bool
    left: int


def _parcel(session: Session, code: str) -> Parcel:
    parcel = ship.find_parcel(session, code) if code.strip() else None
    if parcel is None:
        raise Refusal("ride_unknown_parcel", code=code.strip()[:64])
    return parcel


def _record(session: Session, rider: User, scan_id: str | None, action: str, parcel: Parcel) -> None:
    if scan_id:
        session.add(ScanRecord(scan_id=scan_id, user_id=rider.id, work="ride", action=action,
                               code=parcel.tracking_number, at=utcnow()))


def _locked_seen(session: Session, rider: User, parcel_id: int, scan_id: str | None) -> ScanRecord | None:
    """Lock the parcel (ship.lock_parcel), then look the scan id up: a retry
    that waited behind its original answers as the original did."""
    parcel = session.get(Parcel, parcel_id)
    if parcel is not None:
        ship.lock_parcel(session, parcel)
    return scans.seen(session, rider, scan_id)


def _recorded_parcel(session: Session, record: ScanRecord) -> Parcel:
    return session.scalar(select(Parcel).where(Parcel.tracking_number == record.code))


def pickup(session: Session, rider: User, code: str, scan_id: str | None = None) -> tuple[Parcel, bool]:
    """The rider scanned `code` at the dock. Returns (parcel, new) where new is
    False for a parcel this rider already carries (or a repeated scan id)."""
    found = ship.find_parcel(session, code) if code.strip() else None
    if found is not None:
        ship.lock_parcel(session, found)
    # After the lock: a retry that waited behind its original finds it counted.
    seen = scans.seen(session, rider, scan_id)
    if seen is not None:
        return _recorded_parcel(session, seen), False
    parcel = _parcel(session, code)
    f = parcel.fulfilment
    tn = parcel.tracking_number or "-"
    if parcel.carrier != RIDER_CARRIER:
        carrier = CARRIERS.get(parcel.carrier or "")
        raise Refusal("ride_not_same_city", tracking=tn, carrier=carrier.name if carrier else "-")
    if f.node_id != rider.node_id:
        raise Refusal("ride_other_node", tracking=tn)
    if f.status == FulfilmentStatus.cancelled or parcel.status == ParcelStatus.intercepted:
        raise Refusal("ride_intercepted", tracking=tn)
    if parcel.status == ParcelStatus.delivered:
        raise Refusal("ride_delivered", tracking=tn)
    if parcel.status == ParcelStatus.returned:
        raise Refusal("parcel_received_back", tracking=tn, at=clock.wall(parcel.returned_at))
    if parcel.status not in (ParcelStatus.packed, ParcelStatus.shipped):
        raise Refusal("ride_not_packed", tracking=tn)
    delivery = tracking.delivery_of(session, parcel)
    if delivery is not None and delivery.rider_id is not None:
        if delivery.rider_id != rider.id:
            raise Refusal("ride_other_rider", tracking=tn, rider=delivery.rider.name if delivery.rider else "?")
        return parcel, False
    if parcel.status == ParcelStatus.packed:
        handover = ship.open_handover(session, f.node, RIDER_CARRIER, rider)
        ship.scan_parcel(session, handover, parcel.tracking_number, rider)
    now = utcnow()
    tracking.report(session, parcel, TrackingStatus.out_for_delivery, now, "picked up by rider",
                    source="rider", by=rider.code)
    delivery = tracking.delivery_of(session, parcel)
    delivery.rider_id, delivery.picked_up_at = rider.id, now
    _record(session, rider, scan_id, "pickup", parcel)
    return parcel, True


def drop_list(session: Session, rider: User) -> list[Drop]:
    """The rider's parcels still to deliver, nearest to the node first."""
    rows = session.execute(
        select(Parcel, ParcelDelivery, Order)
        .join(ParcelDelivery, ParcelDelivery.parcel_id == Parcel.id)
        .join(Fulfilment, Fulfilment.id == Parcel.fulfilment_id).join(Order, Order.id == Fulfilment.order_id)
        .where(ParcelDelivery.rider_id == rider.id, ParcelDelivery.status.in_(ON_THE_WAY),
               Parcel.status == ParcelStatus.shipped)
        .options(selectinload(Parcel.fulfilment))).all()
    node = session.get(Node, rider.node_id) if rider.node_id else None
    drops = []
    for parcel, delivery, order in rows:
        km = None
        if node is not None and None not in (node.lat, node.lon, order.ship_lat, order.ship_lon):
            km = haversine_km(node.lat, node.lon, order.ship_lat, order.ship_lon)
        drops.append(Drop(parcel, delivery, order, km))
    drops.sort(key=lambda d: (d.km is None, d.km or 0.0, d.delivery.picked_up_at or utcnow(), d.parcel.id))
    return drops


def on_list(session: Session, rider: User, parcel_id: int) -> Drop:
    """One parcel of the rider's drop list (refused if it is not on it)."""
    for drop in drop_list(session, rider):
        if drop.parcel.id == parcel_id:
            return drop
    parcel = session.get(Parcel, parcel_id)
    tn = parcel.tracking_number if parcel else str(parcel_id)
    if parcel is not None and parcel.status == ParcelStatus.delivered:
        raise Refusal("ride_delivered", tracking=tn)
    raise Refusal("ride_not_on_list", tracking=tn)


def try_code(session: Session, rider: User, parcel_id: int, typed: str, key: str,
             scan_id: str | None = None) -> CodeCheck:
    """Deliver with the customer's code. A wrong code is counted here and NOT
    refused here: the caller commits the count, then refuses with
    `delivery_code_wrong` (or `delivery_code_locked` once none are left)."""
    seen = _locked_seen(session, rider, parcel_id, scan_id)
    if seen is not None:
        delivery = session.get(ParcelDelivery, parcel_id)
        left = MAX_CODE_FAILURES - (delivery.code_failures if delivery else 0)
        return CodeCheck(seen.action == "code_ok", max(0, left))
    typed = (typed or "").strip()
    if not (len(typed) == 4 and typed.isdigit()):
        raise Refusal("delivery_code_format")
    drop = on_list(session, rider, parcel_id)
    if drop.code_locked:
        raise Refusal("delivery_code_locked", tracking=drop.parcel.tracking_number, limit=MAX_CODE_FAILURES)
    if not tracking.code_matches(key, drop.parcel, typed):
        session.execute(update(ParcelDelivery).where(ParcelDelivery.parcel_id == parcel_id)
                        .values(code_failures=ParcelDelivery.code_failures + 1, updated_at=utcnow())
                        .execution_options(synchronize_session=False))
        session.refresh(drop.delivery, ["code_failures", "updated_at"])
        _record(session, rider, scan_id, "code_wrong", drop.parcel)
        return CodeCheck(False, max(0, MAX_CODE_FAILURES - drop.delivery.code_failures))
    _delivered(session, rider, drop, ProofKind.code)
    _record(session, rider, scan_id, "code_ok", drop.parcel)
    return CodeCheck(True, MAX_CODE_FAILURES - drop.delivery.code_failures)


def deliver_with_photo(session: Session, rider: User, parcel_id: int, photo_path: str,
                       scan_id: str | None = None) -> Parcel:
    """Deliver with a photo already stored at `photo_path` (relative to the
    instance folder); allowed whether or not the code is locked."""
    seen = _locked_seen(session, rider, parcel_id, scan_id)
    if seen is not None:
        return _recorded_parcel(session, seen)
    drop = on_list(session, rider, parcel_id)
    drop.delivery.photo_path = photo_path
    _delivered(session, rider, drop, ProofKind.photo)
    _record(session, rider, scan_id, "photo", drop.parcel)
    return drop.parcel


def failed_attempt(session: Session, rider: User, parcel_id: int, note: str, scan_id: str | None = None) -> Parcel:
    """Nobody there: the parcel stays on the list, the channel hears of it."""
    seen = _locked_seen(session, rider, parcel_id, scan_id)
    if seen is not None:
        return _recorded_parcel(session, seen)
    drop = on_list(session, rider, parcel_id)
    tracking.report(session, drop.parcel, TrackingStatus.failed_attempt, utcnow(), (note or "").strip()[:500] or None,
                    source="rider", by=rider.code)
    _record(session, rider, scan_id, "failed_attempt", drop.parcel)
    return drop.parcel


def _delivered(session: Session, rider: User, drop: Drop, proof: ProofKind) -> None:
    tracking.report(session, drop.parcel, TrackingStatus.delivered, utcnow(), f"delivered by rider ({proof.value})",
                    source="rider", proof=proof, by=rider.code)
    drop.delivery.delivered_by_id = rider.id


# --- leads -----------------------------------------------------------------------------

def unlock_code(session: Session, lead: User, parcel: Parcel) -> None:
    """A lead lets the rider try codes again."""
    delivery = tracking.delivery_of(session, parcel)
    if delivery is not None:
        delivery.code_failures, delivery.updated_at = 0, utcnow()


def confirm_by_lead(session: Session, lead: User, parcel: Parcel, note: str | None = None) -> None:
    """A lead confirms the delivery by hand (e.g. spoke to the customer)."""
    ship.lock_parcel(session, parcel)
    delivery = tracking.delivery_of(session, parcel)
    if parcel.status == ParcelStatus.delivered:
        raise Refusal("ride_delivered", tracking=parcel.tracking_number)
    if delivery is None or delivery.status not in ON_THE_WAY:
        raise Refusal("ride_not_on_list", tracking=parcel.tracking_number)
    tracking.report(session, parcel, TrackingStatus.delivered, utcnow(),
                    (note or "confirmed by lead").strip()[:500], source="lead", proof=ProofKind.lead, by=lead.code)
    delivery.delivered_by_id = lead.id
