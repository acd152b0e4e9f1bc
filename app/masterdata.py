"""Master data: nodes, SKUs and their barcodes, stock counted per bin.

The same functions serve the admin API and the CSV import. A stock count
says what is on the shelf (`app.fulfilment.count`: units picked and not yet
shipped are kept on top); a total below what is reserved moves the
reservations that no longer fit, and new stock dispatches what was waiting.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StringConstraints, ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.barcodes import code_problem, gtin_problem
from app.fulfilment import count, dispatch, events
from app.fulfilment.errors import Refusal
from app.fulfilment.intake import field_errors, invalid, nul_fields
from app.fulfilment.redispatch import redispatch
from app.models import (
    Barcode,
    BinStock,
    Fulfilment,
    FulfilmentLine,
    FulfilmentStatus,
    Location,
    Node,
    NodeKind,
    Reservation,
    ReservationState,
    Sku,
    Stock,
    utcnow,
)

CODE = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"
Code = Annotated[str, StringConstraints(strip_whitespace=True, pattern=CODE)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Place = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]  # nodes' columns
Number = StrictFloat | StrictInt


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class NodeBody(_Strict):
    name: Text
    kind: Literal["warehouse", "store"]
    province: Place
    city: Place
    lat: Annotated[Number, Field(ge=-90, le=90)] | None = None
    lon: Annotated[Number, Field(ge=-180, le=180)] | None = None
    daily_capacity: Annotated[StrictInt, Field(ge=0, le=10_000_000)]
    same_city_radius_km: Annotated[Number, Field(ge=0, le=1000)] = 0
    active: StrictBool = True


class SkuBody(_Strict):
    name: Text
    barcodes: Annotated[list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]],
                        Field(max_length=50)] = []
    weight_g: Annotated[StrictInt, Field(ge=0, le=10_000_000)] = 0
    presale: StrictBool = False


class StockItem(_Strict):
    location: Code
    sku: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    on_hand: Annotated[StrictInt, Field(ge=0, le=100_000_000)]
    walk_seq: Annotated[StrictInt, Field(ge=0, le=2**31 - 1)] | None = None


class StockBody(_Strict):
    items: Annotated[list[StockItem], Field(min_length=1, max_length=20_000)]


def validate(model: type[BaseModel], data: Any, strict: bool = True) -> Any:
    """Pydantic's verdict as the contract's invalid_request (field paths)."""
    nul = nul_fields(data)
    try:
        valid = model.model_validate(data, strict=strict)
    except ValidationError as e:
        raise invalid(nul + field_errors(e, data)) from None
    if nul:
        raise invalid(nul)
    return valid


def check_code(code: str, what: str) -> str:
    if not re.fullmatch(CODE, code):
        raise invalid([(what, "letters, digits, '.', '_' or '-', at most 64")])
    return code


# --- nodes -------------------------------------------------------------------

def put_node(session: Session, code: str, body: NodeBody) -> tuple[Node, bool]:
    check_code(code, "code")
    node = session.scalar(select(Node).where(Node.code == code))
    created = node is None
    if created:
        node = Node(code=code)
        session.add(node)
    for name, value in body.model_dump().items():
        setattr(node, name, NodeKind(value) if name == "kind" else value)
    session.flush()
    dispatch.forget_nodes(session)
    events.record(session, "node.updated", node=node, data={"created": created})
    return node, created


# --- SKUs ----------------------------------------------------------------------

def put_sku(session: Session, code: str, body: SkuBody) -> tuple[Sku, bool]:
    check_code(code, "sku")
    problems = [(f"barcodes[{i}]", p) for i, b in enumerate(body.barcodes) if (p := code_problem(b) or gtin_problem(b))]
    if len(set(body.barcodes)) != len(body.barcodes):
        problems.append(("barcodes", "a barcode is listed twice"))
    if problems:
        raise invalid(problems)
    sku = session.scalar(select(Sku).where(Sku.code == code))
    if body.barcodes:
        for barcode, owner in session.execute(
            select(Barcode.code, Sku.code).join(Sku).where(Barcode.code.in_(body.barcodes), Sku.code != code)
        ):
            raise Refusal("barcode_taken", barcode=barcode, sku=owner, details={"barcode": barcode, "sku": owner})
    created = sku is None
    if created:
        sku = Sku(code=code)
        session.add(sku)
    sku.name, sku.weight_g, sku.presale = body.name, body.weight_g, body.presale
    keep = {b.code: b for b in sku.barcodes}
    sku.barcodes = [keep.get(b) or Barcode(code=b) for b in body.barcodes]
    session.flush()
    return sku, created


# --- stock -------------------------------------------------------------------

def walk_position(code: str) -> tuple[str, int]:
    """Aisle and position along it from a code like A-01-02-1 (zone-aisle-bay-level):
    the aisle is the first two parts, the rest count up along the aisle."""
    parts = [p for p in re.split(r"[-_.\s]+", code) if p]
    aisle = "-".join(parts[:2]) if len(parts) > 1 else (parts[0] if parts else code)
    seq = 0
    for part in parts[2:] or parts[-1:]:
        digits = re.sub(r"\D", "", part)
        value = int(digits) if digits else sum(ord(c) for c in part)
        seq = seq * 1000 + min(value, 999)
    return aisle, seq


def bins_of(session: Session, node: Node, items: list[StockItem]) -> dict[tuple[int, int], int]:
    """(location_id, sku_id) -> the item's figure, for the items of a stock
    body; unknown SKUs are refused, unknown locations created (walk order from
    the code, or the item's walk_seq)."""
    codes = sorted({i.sku for i in items})
    skus = dict(session.execute(select(Sku.code, Sku.id).where(Sku.code.in_(codes))).all())
    unknown = [c for c in codes if c not in skus]
    if unknown:
        raise Refusal("unknown_sku", skus=", ".join(unknown), details={"skus": unknown})

    locations = {loc.code: loc for loc in session.scalars(
        select(Location).where(Location.node_id == node.id, Location.code.in_({i.location for i in items})))}
    for item in items:
        if item.location not in locations:
            aisle, seq = walk_position(item.location)
            loc = Location(node_id=node.id, code=item.location, aisle=aisle,
                           walk_seq=item.walk_seq if item.walk_seq is not None else seq)
            session.add(loc)
            locations[item.location] = loc
        elif item.walk_seq is not None:
            locations[item.location].walk_seq = item.walk_seq
    session.flush()
    return {(locations[i.location].id, skus[i.sku]): i.on_hand for i in items}


def count_stock(session: Session, node: Node, body: StockBody) -> dict[str, Any]:
    """The books' figures set as given: each bin's on_hand, units in totes
    included (loading a node's opening stock, a short pick's correction).
    What a counter counted on the shelf goes through `app.fulfilment.count`
    instead (the API and the CSV import)."""
    counted = bins_of(session, node, body.items)
    bins = {(b.location_id, b.sku_id): b for b in session.scalars(
        select(BinStock).where(BinStock.location_id.in_({k[0] for k in counted}),
                               BinStock.sku_id.in_({k[1] for k in counted})))}
    for key, on_hand in counted.items():
        if key in bins:
            bins[key].on_hand = on_hand
        else:
            session.add(BinStock(location_id=key[0], sku_id=key[1], on_hand=on_hand))
    session.flush()
    settled = settle_stock(session, node, {k[1] for k in counted})
    events.record(session, "stock.counted", node=node,
                  data={"items": len(body.items), "shortages": settled["shortages"]})
    return {"items": len(body.items), "locations": len({k[0] for k in counted}), **settled}


def count_shelf(session: Session, node: Node, body: StockBody, by: str, reason: str) -> dict[str, Any]:
    """Counts of what is on the shelf (the API, the CSV import), applied at
    once: units picked and not yet shipped stay on top (`count.count_shelf`)."""
    counted = bins_of(session, node, body.items)
    result = count.count_shelf(session, node, counted, by=by, reason=reason)
    return {"items": len(body.items), "locations": len({k[0] for k in counted}), **result}


def stock_rows(session: Session, node: Node, sku_ids) -> dict[int, Stock]:
    """The node's stock rows of these SKUs, made where missing."""
    sku_ids = sorted(set(sku_ids))
    stock = {s.sku_id: s for s in session.scalars(
        select(Stock).where(Stock.node_id == node.id, Stock.sku_id.in_(sku_ids)))}
    for sku_id in sku_ids:
        if sku_id not in stock:
            stock[sku_id] = Stock(node_id=node.id, sku_id=sku_id, on_hand=0, reserved=0)
            session.add(stock[sku_id])
    session.flush()
    return stock


def settle_stock(session: Session, node: Node, sku_ids) -> dict[str, Any]:
    """After bins changed: the node's on_hand is their sum again; a total
    below what is reserved moves the newest reservations elsewhere (or flags
    the shortage), and new stock dispatches what was waiting for it."""
    sku_ids = sorted(set(sku_ids))
    totals = dict(session.execute(
        select(BinStock.sku_id, func.sum(BinStock.on_hand)).join(Location, Location.id == BinStock.location_id)
        .where(Location.node_id == node.id, BinStock.sku_id.in_(sku_ids)).group_by(BinStock.sku_id)).all())
    stock = stock_rows(session, node, sku_ids)
    # Set on_hand in SQL and read reserved back after the row lock: a
    # concurrent reservation is never lost or misread.
    shortages: dict[int, int] = {}
    for sku_id in sku_ids:
        reserved = session.execute(
            update(Stock).where(Stock.id == stock[sku_id].id)
            .values(on_hand=int(totals.get(sku_id, 0)), short_since=None)
            .returning(Stock.reserved).execution_options(synchronize_session=False)).scalar_one()
        if reserved > totals.get(sku_id, 0):
            shortages[sku_id] = reserved - int(totals.get(sku_id, 0))
    session.expire_all()

    moved = _resolve_shortages(session, node, stock, shortages)
    waiting = dispatch.dispatch_waiting(session, set(sku_ids))
    return {"shortages": dispatch.sku_codes(session, shortages),
            "redispatched": moved, "dispatched": [f.ref for f in waiting]}


def _resolve_shortages(session: Session, node: Node, stock: dict[int, Stock], shortages: dict[int, int]) -> list[str]:
    """Move the newest reservations away until what is held fits the count."""
    moved: list[str] = []
    for sku_id, short in sorted(shortages.items()):
        rows = session.execute(
            select(Fulfilment, Reservation.quantity).join(FulfilmentLine, FulfilmentLine.fulfilment_id == Fulfilment.id)
            .join(Reservation, Reservation.fulfilment_line_id == FulfilmentLine.id)
            .where(Reservation.stock_id == stock[sku_id].id, Reservation.state == ReservationState.open,
                   Fulfilment.status.in_([FulfilmentStatus.reserved, FulfilmentStatus.picking]))
            .order_by((Fulfilment.status == FulfilmentStatus.picking).asc(), Fulfilment.id.desc())
        ).all()
        for f, held in rows:
            if short <= 0:
                break
            take = min(short, held)
            redispatch(session, f, {sku_id: take}, reason="stock_count_short")
            if f.ref not in moved:
                moved.append(f.ref)
            short -= take
        if short > 0:
            stock[sku_id].short_since = stock[sku_id].short_since or utcnow()
            events.record(session, "stock.short", node=node, data={"sku": dispatch.sku_codes(session, {sku_id: short})})
    return moved
