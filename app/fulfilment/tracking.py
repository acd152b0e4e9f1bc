"""Tracking (物流跟踪): what couriers and riders report about a parcel after it
left the dock, and delivery.

Every report is kept as a `TrackingUpdate` in the reporter's own time `at`.
The parcel's current status (`ParcelDelivery.status`) is the report with the
latest `at`, so an update arriving late never moves a parcel backwards; it is
still recorded in the history (`applied` False). At the same `at` the later
stage wins (in_transit < out_for_delivery < failed_attempt < delivered,
returned). `delivered` and `returned` are final: later reports are history
only. The same (parcel, status, at) again is a duplicate and changes nothing.

Each new report is an event `parcel.<status>` in the channel's feed, with
`data.parcel_status` (the current status after it) and `data.applied`.
A delivered parcel sets `Parcel.status` to delivered; when every parcel of a
fulfilment is delivered the fulfilment is `delivered` with `delivered_at`
(the latest parcel's delivery time), and the order follows (orders.refresh).

Only parcels that shipped take reports: a packed or intercepted parcel is
answered `not_shipped` (the carrier may send it again once it is scanned out).
A parcel received back at the dock (app.fulfilment.returns) takes reports as
history only: it stays `returned`, whatever the carrier says after.

Fulfilment time is not a column of its own: `Order.placed_at` and the
fulfilment's `delivered_at` / `completed_at` are stored, and
`fulfilment_times()` derives the seconds from them (order document, events,
SLA report).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.fulfilment import events, orders
from app.fulfilment.errors import Refusal
from app.fulfilment.intake import field_errors, invalid, nul_fields
from app.models import (
    Fulfilment,
    FulfilmentStatus,
    OrderStatus,
    Parcel,
    ParcelDelivery,
    ParcelStatus,
    ProofKind,
    TrackingStatus,
    TrackingUpdate,
    utcnow,
)

RANK = {TrackingStatus.in_transit: 1, TrackingStatus.out_for_delivery: 2, TrackingStatus.failed_attempt: 3,
        TrackingStatus.delivered: 4, TrackingStatus.returned: 4}
FINAL = {TrackingStatus.delivered, TrackingStatus.returned}
# Parcels that may take reports: they left the building.
AFTER_DOCK = {ParcelStatus.shipped, ParcelStatus.delivered}
# ...and came back: reports about them are history only.
TAKES_REPORTS = AFTER_DOCK | {ParcelStatus.returned}
# Same-city parcels: delivered by our riders, with a code for the customer.
RIDER_CARRIER = "ly-rider"


@dataclass(frozen=True)
class Outcome:
    """What one report did: `applied` (the parcel moved), `recorded` (history
    only: older than what is known, or after a final status), `duplicate`,
    or refused: `unknown_tracking_number`, `not_shipped`."""

    result: str
    parcel_status: str | None = None

    @property
    def accepted(self) -> bool:
        return self.result in ("applied", "recorded")


def _utc(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise ValueError("naive datetime")
    # Microseconds are what both databases keep: compare like with like.
    return at.astimezone(dt.timezone.utc)


def delivery_of(session: Session, parcel: Parcel) -> ParcelDelivery | None:
    return session.get(ParcelDelivery, parcel.id)


def _delivery_for_update(session: Session, parcel: Parcel) -> ParcelDelivery | None:
    """The row, locked after the parcel's order, fulfilments and parcels (the
    lock order) and read afresh."""
    return session.scalar(select(ParcelDelivery).where(ParcelDelivery.parcel_id == parcel.id)
                          .with_for_update().execution_options(populate_existing=True))


def parcel_status(parcel: Parcel, delivery: ParcelDelivery | None) -> str:
    """The status a client sees: the latest report once one came in."""
    if delivery is not None and parcel.status in AFTER_DOCK:
        return delivery.status.value
    return parcel.status.value


def parcel_data(parcel: Parcel, delivery: ParcelDelivery | None = None) -> dict[str, Any]:
    """What every parcel event carries: the parcel as the order document shows
    it (`parcel_status` too, which a courier's report keeps beside the status
    it reported)."""
    status = parcel_status(parcel, delivery)
    return {"tracking_number": parcel.tracking_number, "carrier": parcel.carrier, "status": status,
            "parcel_status": status}


def find_for_carrier(session: Session, carrier: str, tracking_number: str) -> Parcel | None:
    """A carrier sees only its own parcels; another's number is unknown to it."""
    return session.scalar(select(Parcel).where(Parcel.tracking_number == tracking_number.strip().upper(),
                                               Parcel.carrier == carrier))


def report(session: Session, parcel: Parcel, status: TrackingStatus, at: dt.datetime,
           description: str | None = None, *, source: str = "carrier", proof: ProofKind | None = None,
           by: str | None = None, extra: dict[str, Any] | None = None) -> Outcome:
    """Record one report about a parcel; see the module rules. The parcel is
    locked first with its order and fulfilments (orders.lock_fulfilment), so
    a delivery never overwrites a receipt or a return made meanwhile."""
    at = _utc(at)
    orders.lock_fulfilment(session, parcel.fulfilment)
    if parcel.status not in TAKES_REPORTS:
        return Outcome("not_shipped", parcel.status.value)
    back = parcel.status == ParcelStatus.returned
    delivery = _delivery_for_update(session, parcel)
    seen = session.scalar(select(TrackingUpdate.id).where(
        TrackingUpdate.parcel_id == parcel.id, TrackingUpdate.status == status, TrackingUpdate.at == at))
    if seen is not None:
        return Outcome("duplicate", parcel_status(parcel, delivery))
    now = utcnow()
    newer = not back and (delivery is None or (delivery.status not in FINAL
                                               and (at, RANK[status]) > (delivery.status_at, RANK[delivery.status])))
    session.add(TrackingUpdate(parcel_id=parcel.id, status=status, at=at, description=description,
                               source=source, applied=newer, received_at=now))
    if newer:
        if delivery is None:
            delivery = ParcelDelivery(parcel_id=parcel.id, status=status, status_at=at, updated_at=now)
            session.add(delivery)
        delivery.status, delivery.status_at, delivery.updated_at = status, at, now
    f = parcel.fulfilment
    data: dict[str, Any] = {"tracking_number": parcel.tracking_number, "carrier": parcel.carrier,
                            "status": status.value, "at": at.isoformat(), "description": description,
                            "parcel_status": parcel_status(parcel, delivery) if back
                            else delivery.status.value if delivery else status.value,
                            "applied": newer, "source": source}
    if by:
        data["by"] = by
    if extra:
        data.update(extra)
    if newer and status == TrackingStatus.delivered:
        delivery.delivered_at = min(at, now)
        delivery.proof = proof or ProofKind.carrier
        parcel.status = ParcelStatus.delivered
        data["proof"] = delivery.proof.value
    events.record(session, f"parcel.{status.value}", fulfilment=f, data=data)
    if newer and status == TrackingStatus.delivered:
        _deliver_if_done(session, f, now)
    return Outcome("applied" if newer else "recorded", data["parcel_status"])


def _deliver_if_done(session: Session, f: Fulfilment, now: dt.datetime) -> None:
    """Every parcel of the fulfilment delivered: the fulfilment is delivered."""
    parcels = [p for p in f.parcels if p.items and p.status != ParcelStatus.intercepted]
    if not parcels or any(p.status != ParcelStatus.delivered for p in parcels):
        return
    session.flush()
    times = [d.delivered_at for d in session.scalars(
        select(ParcelDelivery).where(ParcelDelivery.parcel_id.in_([p.id for p in parcels])))
        if d.delivered_at is not None]
    delivered_at = max(times) if times else now
    if f.delivered_at is None:
        f.delivered_at = delivered_at
    if f.status != FulfilmentStatus.shipped:
        return  # completed already (receipt came first): the time is kept, the status stays
    f.status, f.updated_at = FulfilmentStatus.delivered, now
    events.record(session, "fulfilment.delivered", fulfilment=f,
                  data={"delivered_at": f.delivered_at.isoformat(),
                        "parcels": [p.tracking_number for p in parcels], **fulfilment_times(f)})
    before = f.order.status
    orders.refresh(f.order)
    if f.order.status == OrderStatus.delivered and before != OrderStatus.delivered:
        events.record(session, "order.delivered", order=f.order)


def fulfilment_times(f: Fulfilment) -> dict[str, int]:
    """Seconds from the order being placed to delivery and to completion
    (fulfilment time, 履约时长), for those that happened."""
    placed = f.order.placed_at
    times: dict[str, int] = {}
    if f.delivered_at is not None:
        times["placed_to_delivered_seconds"] = int((f.delivered_at - placed).total_seconds())
    if f.completed_at is not None:
        times["placed_to_completed_seconds"] = int((f.completed_at - placed).total_seconds())
    return times


def history(session: Session, parcel_ids: list[int]) -> dict[int, list[TrackingUpdate]]:
    """Every report per parcel, in the reporter's time order."""
    out: dict[int, list[TrackingUpdate]] = {pid: [] for pid in parcel_ids}
    if not parcel_ids:
        return out
    for u in session.scalars(select(TrackingUpdate).where(TrackingUpdate.parcel_id.in_(parcel_ids))
                             .order_by(TrackingUpdate.parcel_id, TrackingUpdate.at, TrackingUpdate.id)):
        out[u.parcel_id].append(u)
    return out


# --- the carrier-events API ---------------------------------------------------------------

MAX_BATCH = 1000


class CarrierUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    tracking_number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    status: Literal["in_transit", "out_for_delivery", "delivered", "failed_attempt", "returned"]
    at: AwareDatetime
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None

    @field_validator("at")
    @classmethod
    def _plausible(cls, at: dt.datetime) -> dt.datetime:
        # Year 1 or 9999 with an offset cannot even be put in UTC.
        if not 2000 <= at.year <= 2999:
            raise ValueError("expected a time from the year 2000 to 2999")
        return at


class CarrierBatch(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    events: Annotated[list[CarrierUpdate], Field(min_length=1, max_length=MAX_BATCH)]


def parse_batch(raw: bytes) -> CarrierBatch:
    """The request, or a whole-request refusal (`invalid_request`, each bad
    field by JSON path such as `events[2].status`)."""
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise invalid([("$", f"not valid JSON ({e})")]) from None
    except RecursionError:
        raise invalid([("$", "nested too deeply")]) from None
    try:
        batch = CarrierBatch.model_validate_json(raw)
    except ValidationError as e:
        raise invalid(nul_fields(body) + field_errors(e, body)) from None
    if nul := nul_fields(body):
        raise invalid(nul)
    return batch


def take_all(session: Session, carrier: str, items: list[CarrierUpdate]) -> list[dict[str, Any]]:
    """A batch, each item answered in order (`take`). The orders it names are
    locked first, by id: two batches naming the same orders never deadlock."""
    numbers = {item.tracking_number.strip().upper() for item in items}
    orders.lock_many(session, session.scalars(
        select(Fulfilment.order_id).join(Parcel, Parcel.fulfilment_id == Fulfilment.id)
        .where(Parcel.tracking_number.in_(numbers), Parcel.carrier == carrier)).all())
    return [take(session, carrier, item) for item in items]


def take(session: Session, carrier: str, item: CarrierUpdate) -> dict[str, Any]:
    """One item of a batch: its result, and the contract's error for a refused one."""
    answer: dict[str, Any] = {"tracking_number": item.tracking_number, "status": item.status,
                              "at": item.at.isoformat()}
    parcel = find_for_carrier(session, carrier, item.tracking_number)
    if parcel is None:
        outcome = Outcome("unknown_tracking_number")
        refusal = Refusal("unknown_tracking_number", tracking=item.tracking_number, carrier=carrier)
    else:
        outcome = report(session, parcel, TrackingStatus(item.status), item.at, item.description)
        refusal = (Refusal("parcel_not_shipped", tracking=item.tracking_number, status=outcome.parcel_status)
                   if outcome.result == "not_shipped" else None)
    answer["result"] = outcome.result
    if outcome.parcel_status is not None:
        answer["parcel_status"] = outcome.parcel_status
    if refusal is not None:
        answer["error"] = {"code": refusal.code, "message": refusal.message("en")}
    return answer


# --- same-city delivery codes ----------------------------------------------------------

def delivery_code(key: str, parcel: Parcel) -> str | None:
    """The 4-digit code a same-city customer tells the rider.

    An HMAC-SHA256, with the server's key, of the tracking number and the
    parcel's own random value (`delivery_code_seed`, made with the parcel):
    it exists once the parcel is labelled, reads the same everywhere (the
    order document gives it to the sales platform to send to the customer),
    and neither the key with a label (what an old default key allowed) nor a
    copy of the database alone reveals it. Changing the key changes every
    open code. None for a parcel without its value (every parcel gets one
    when made; migration 0013 gave older ones theirs)."""
    if not parcel.delivery_code_seed:
        return None
    message = f"{parcel.tracking_number}\x1f{parcel.delivery_code_seed}".encode()
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 10000:04d}"


def code_matches(key: str, parcel: Parcel, typed: str) -> bool:
    code = delivery_code(key, parcel)
    return code is not None and hmac.compare_digest(code, typed.strip())
