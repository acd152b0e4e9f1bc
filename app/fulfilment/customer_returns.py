"""Customer returns (顾客退货, RMA): a return of delivered units is authorised,
by the sales platform (POST /api/v1/orders/{external_id}/returns) or by a
lead on the order's page, before the dock may receive it
(app.fulfilment.returns receives it unit by unit).

Rules:
- Delivered units of an order, per SKU: the units of its parcels that were
  delivered, or that shipped in a fulfilment whose receipt the customer
  confirmed (`completed`). A parcel received back at the dock is not.
- Returnable: delivered minus what all the order's returns already
  authorised (received ones included: a unit is returned once).
- The platform's `return_id` is the idempotency key, unique per order: the
  same body again answers the return as it stands (created False); another
  body under it is `return_id_reused` (409 conflict). An order with nothing
  delivered is `return_nothing_delivered` (409 conflict). A line over what is
  returnable, a SKU not delivered or named twice: 422 invalid_request with
  each field's JSON path.
- The order and its fulfilments are locked first (orders.lock), so two
  authorisations of the same order at once are checked one after the other
  and can never authorise more than was delivered.
- Each new return is the event `return.authorised` (its return_id, ref,
  reason, lines and who authorised it) in the order's feed and webhook. The
  dock's receipt is `return.received` (see app.fulfilment.returns).

None of the contract's order or fulfilment statuses move: refunding is the
platform's decision.
"""
from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.fulfilment import clock, events, orders
from app.fulfilment.errors import Refusal
from app.fulfilment.intake import MAX_LINES, MAX_QUANTITY, digest, field_errors, invalid, nul_fields
from app.models import (
    CustomerReturn,
    Fulfilment,
    FulfilmentStatus,
    Order,
    Parcel,
    ParcelItem,
    ParcelStatus,
    ReturnLine,
    ReturnStatus,
    Sku,
    utcnow,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class ReturnLineRequest(_Strict):
    sku: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    quantity: Annotated[StrictInt, Field(ge=1, le=MAX_QUANTITY)]


class ReturnRequest(_Strict):
    return_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                                pattern=r"^[\x21-\x7e]+$")]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    lines: Annotated[list[ReturnLineRequest], Field(min_length=1, max_length=MAX_LINES)]


def parse(raw: bytes) -> tuple[ReturnRequest, dict[str, Any]]:
    """The validated request and the body as received; invalid_request if not."""
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise invalid([("$", f"not valid JSON ({e})")]) from None
    except RecursionError:
        raise invalid([("$", "nested too deeply")]) from None
    if not isinstance(body, dict):
        raise invalid([("$", "expected a JSON object")])
    if nul := nul_fields(body):
        raise invalid(nul)
    try:
        return ReturnRequest.model_validate_json(raw), body
    except ValidationError as e:
        raise invalid(field_errors(e, body)) from None


# --- what may be returned ---------------------------------------------------------------

def delivered_units(session: Session, order: Order) -> dict[int, int]:
    """sku id -> units of the order delivered to the customer (see the rules)."""
    rows = session.execute(
        select(ParcelItem.sku_id, func.sum(ParcelItem.quantity))
        .join(Parcel, Parcel.id == ParcelItem.parcel_id).join(Fulfilment, Fulfilment.id == Parcel.fulfilment_id)
        .where(Fulfilment.order_id == order.id,
               (Parcel.status == ParcelStatus.delivered)
               | ((Parcel.status == ParcelStatus.shipped) & (Fulfilment.status == FulfilmentStatus.completed)))
        .group_by(ParcelItem.sku_id)).all()
    return {sku_id: int(units) for sku_id, units in rows if units}


def authorised_units(session: Session, order: Order) -> dict[int, int]:
    """sku id -> units of the order already authorised for return."""
    rows = session.execute(
        select(ReturnLine.sku_id, func.sum(ReturnLine.quantity))
        .join(CustomerReturn, CustomerReturn.id == ReturnLine.customer_return_id)
        .where(CustomerReturn.order_id == order.id).group_by(ReturnLine.sku_id)).all()
    return {sku_id: int(units) for sku_id, units in rows}


def returnable(session: Session, order: Order) -> dict[int, tuple[int, int]]:
    """sku id -> (delivered, already authorised), for SKUs delivered."""
    authorised = authorised_units(session, order)
    return {sku_id: (units, authorised.get(sku_id, 0))
            for sku_id, units in delivered_units(session, order).items()}


# --- authorising ---------------------------------------------------------------------------

def authorise_request(session: Session, order: Order, raw: bytes, by: str) -> tuple[CustomerReturn, bool]:
    """The platform's request (see the rules). Returns (return, created)."""
    request, _body = parse(raw)
    sha = digest(request)
    orders.lock(session, order)
    existing = session.scalar(select(CustomerReturn).where(CustomerReturn.order_id == order.id,
                                                           CustomerReturn.return_id == request.return_id))
    if existing is not None:
        if existing.payload_sha256 == sha:
            return existing, False
        raise Refusal("return_id_reused", return_id=request.return_id)
    room = returnable(session, order)
    if not room:
        raise Refusal("return_nothing_delivered", external_id=order.external_id)
    codes = {line.sku for line in request.lines}
    skus = dict(session.execute(select(Sku.code, Sku.id).where(Sku.code.in_(codes))).all())
    errors: list[tuple[str, str]] = []
    wanted: dict[int, int] = {}
    for i, line in enumerate(request.lines):
        sku_id = skus.get(line.sku)
        if sku_id is None or sku_id not in room:
            errors.append((f"lines[{i}].sku", f"{line.sku} was not delivered in this order"))
        elif sku_id in wanted:
            errors.append((f"lines[{i}].sku", f"{line.sku} is named twice"))
        else:
            delivered, authorised = room[sku_id]
            if line.quantity > delivered - authorised:
                errors.append((f"lines[{i}].quantity",
                               f"at most {max(delivered - authorised, 0)} of {line.sku} can be returned "
                               f"({delivered} delivered, {authorised} already authorised)"))
            wanted[sku_id] = line.quantity
    if errors:
        raise invalid(errors)
    return _create(session, order, request.return_id, request.reason, wanted, sha, by), True


def authorise_by_lead(session: Session, order: Order, units: dict[int, int], reason: str | None,
                      by: str) -> CustomerReturn:
    """A lead authorises a return of `units` (sku id -> units; zeros ignored).
    Refusals: return_nothing_delivered, return_nothing_returnable,
    return_over_delivered."""
    orders.lock(session, order)
    room = returnable(session, order)
    if not room:
        raise Refusal("return_nothing_delivered", external_id=order.external_id)
    wanted = {sku_id: q for sku_id, q in units.items() if q > 0}
    if not wanted:
        raise Refusal("return_nothing_returnable")
    for sku_id, q in sorted(wanted.items()):
        delivered, authorised = room.get(sku_id, (0, 0))
        if q > delivered - authorised:
            raise Refusal("return_over_delivered", most=max(delivered - authorised, 0), delivered=delivered,
                          authorised=authorised, sku=session.get(Sku, sku_id).code)
    body = {"lines": {str(k): v for k, v in sorted(wanted.items())}, "reason": reason, "by": by,
            "at": utcnow().isoformat()}
    return _create(session, order, None, reason, wanted, digest(body), by)


def _create(session: Session, order: Order, return_id: str | None, reason: str | None, units: dict[int, int],
            sha: str, by: str) -> CustomerReturn:
    n = session.scalar(select(func.count()).select_from(CustomerReturn)
                       .where(CustomerReturn.order_id == order.id)) or 0
    ref = f"R-{order.id:06d}-{n + 1}"
    ret = CustomerReturn(ref=ref, order_id=order.id, return_id=return_id or ref, reason=reason or None,
                         payload_sha256=sha, status=ReturnStatus.authorised, authorised_by=by,
                         authorised_at=utcnow(),
                         lines=[ReturnLine(sku_id=sku_id, quantity=q) for sku_id, q in sorted(units.items())])
    session.add(ret)
    session.flush()
    codes = dict(session.execute(select(Sku.id, Sku.code).where(Sku.id.in_(list(units)))).all())
    events.record(session, "return.authorised", order=order, data={
        "return_id": ret.return_id, "ref": ret.ref, "reason": ret.reason, "by": by,
        "lines": [{"sku": codes[sku_id], "quantity": q} for sku_id, q in sorted(units.items())]})
    return ret


# --- reading ---------------------------------------------------------------------------------

def of_order(session: Session, order_id: int) -> list[CustomerReturn]:
    return list(session.scalars(
        select(CustomerReturn).where(CustomerReturn.order_id == order_id)
        .options(selectinload(CustomerReturn.lines).selectinload(ReturnLine.sku),
                 selectinload(CustomerReturn.node))
        .order_by(CustomerReturn.id)))


def line_document(line: ReturnLine) -> dict[str, Any]:
    return {"sku": line.sku.code, "quantity": line.quantity, "received": line.received,
            "sellable": line.sellable, "damaged": line.damaged, "quarantined": line.quarantined}


def document(ret: CustomerReturn) -> dict[str, Any]:
    """A return as the order document lists it (the contract's fields first)."""
    return {"return_id": ret.return_id, "status": ret.status.value,
            "lines": [line_document(line) for line in ret.lines],
            "ref": ret.ref, "reason": ret.reason, "authorised_by": ret.authorised_by,
            "authorised_at": clock.stamp(ret.authorised_at), "received_at": clock.stamp(ret.received_at),
            "node": ret.node.code if ret.node is not None else None}
