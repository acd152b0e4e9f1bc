"""Read-back for an ERP: nodes, SKUs and a node's stock figures, a page at a time.

Pages are ordered by code and continue after a cursor (`after`), which is
the last item's code (for a node's stock by bin, `LOCATION~SKU`: `~` is in
no code). A page one longer than asked is read to know whether another
follows (`next_after` is then the page's last cursor, else None).

Stock figures per SKU at a node: `on_hand` (in the books: on the shelves
plus `in_totes`, units picked and not yet shipped, the rule of
`app.fulfilment.count`), `reserved`, `available` (= on_hand - reserved),
`quarantined` and `damaged` (returned units held out of on_hand).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.orm import Session, selectinload

from app.fulfilment.clock import stamp
from app.fulfilment.count import UNITS_IN_TOTES
from app.models import (
    BinStock,
    Fulfilment,
    FulfilmentLine,
    Location,
    Node,
    PickLine,
    QuarantineStock,
    Sku,
    Stock,
)

BIN_CURSOR = "~"


def _page(rows: list, limit: int, cursor) -> tuple[list, str | None]:
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (cursor(rows[-1]) if more else None)


# --- nodes ---------------------------------------------------------------------------

def node_document(node: Node) -> dict[str, Any]:
    return {"code": node.code, "name": node.name, "kind": node.kind.value, "province": node.province,
            "city": node.city, "lat": node.lat, "lon": node.lon, "daily_capacity": node.daily_capacity,
            "same_city_radius_km": node.same_city_radius_km, "active": node.active,
            "updated_at": stamp(node.updated_at)}


def find_node(session: Session, code: str) -> Node | None:
    return session.scalar(select(Node).where(Node.code == code))


def nodes(session: Session, after: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    query = select(Node).order_by(Node.code).limit(limit + 1)
    if after:
        query = query.where(Node.code > after)
    page, next_after = _page(list(session.scalars(query)), limit, lambda n: n.code)
    return [node_document(n) for n in page], next_after


# --- SKUs ------------------------------------------------------------------------------

def sku_document(sku: Sku) -> dict[str, Any]:
    return {"sku": sku.code, "name": sku.name, "barcodes": [b.code for b in sku.barcodes],
            "weight_g": sku.weight_g, "presale": sku.presale, "updated_at": stamp(sku.updated_at)}


def find_sku(session: Session, code: str) -> Sku | None:
    return session.scalar(select(Sku).where(Sku.code == code).options(selectinload(Sku.barcodes)))


def skus(session: Session, updated_after: dt.datetime | None, after: str | None,
         limit: int) -> tuple[list[dict[str, Any]], str | None]:
    query = select(Sku).options(selectinload(Sku.barcodes)).order_by(Sku.code).limit(limit + 1)
    if updated_after is not None:
        query = query.where(Sku.updated_at > updated_after)
    if after:
        query = query.where(Sku.code > after)
    page, next_after = _page(list(session.scalars(query)), limit, lambda s: s.code)
    return [sku_document(s) for s in page], next_after


# --- a node's stock ------------------------------------------------------------------

def _in_totes(session: Session, node_id: int, sku_ids: list[int], by_bin: bool) -> dict[Any, int]:
    """count.in_totes for many bins at once: units picked and not yet shipped,
    per SKU (or per bin and SKU) of the node."""
    keys = (PickLine.location_id, PickLine.sku_id) if by_bin else (PickLine.sku_id,)
    rows = session.execute(
        select(*keys, func.sum(PickLine.picked))
        .join(FulfilmentLine, FulfilmentLine.id == PickLine.fulfilment_line_id)
        .join(Fulfilment, Fulfilment.id == FulfilmentLine.fulfilment_id)
        .join(Location, Location.id == PickLine.location_id)
        .where(Location.node_id == node_id, PickLine.sku_id.in_(sku_ids), Fulfilment.status.in_(UNITS_IN_TOTES))
        .group_by(*keys)).all()
    return {(tuple(r[:-1]) if by_bin else r[0]): int(r[-1] or 0) for r in rows}


def stock_by_sku(session: Session, node: Node, after: str | None,
                 limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Every SKU the node has a stock or quarantine row for."""
    held = or_(Sku.id.in_(select(Stock.sku_id).where(Stock.node_id == node.id)),
               Sku.id.in_(select(QuarantineStock.sku_id).where(QuarantineStock.node_id == node.id)))
    query = select(Sku.id, Sku.code).where(held).order_by(Sku.code).limit(limit + 1)
    if after:
        query = query.where(Sku.code > after)
    page, next_after = _page(session.execute(query).all(), limit, lambda r: r.code)
    ids = [r.id for r in page]
    stock = {s.sku_id: s for s in session.scalars(
        select(Stock).where(Stock.node_id == node.id, Stock.sku_id.in_(ids)))}
    held_out = {q.sku_id: q for q in session.scalars(
        select(QuarantineStock).where(QuarantineStock.node_id == node.id, QuarantineStock.sku_id.in_(ids)))}
    totes = _in_totes(session, node.id, ids, by_bin=False)
    items = []
    for sku_id, code in page:
        s, q = stock.get(sku_id), held_out.get(sku_id)
        on_hand, reserved = (s.on_hand, s.reserved) if s is not None else (0, 0)
        items.append({"sku": code, "on_hand": on_hand, "in_totes": totes.get(sku_id, 0), "reserved": reserved,
                      "available": on_hand - reserved, "quarantined": q.quarantined if q is not None else 0,
                      "damaged": q.damaged if q is not None else 0})
    return items, next_after


def stock_by_bin(session: Session, node: Node, after: str | None,
                 limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Per bin and SKU: on the shelf's books (`on_hand`) and `in_totes`."""
    query = (select(BinStock.location_id, BinStock.sku_id, Location.code, Sku.code, BinStock.on_hand)
             .join(Location, Location.id == BinStock.location_id).join(Sku, Sku.id == BinStock.sku_id)
             .where(Location.node_id == node.id).order_by(Location.code, Sku.code).limit(limit + 1))
    if after:
        location, _, sku = after.partition(BIN_CURSOR)
        query = query.where(tuple_(Location.code, Sku.code) > tuple_(location, sku))
    page, next_after = _page(session.execute(query).all(), limit, lambda r: f"{r[2]}{BIN_CURSOR}{r[3]}")
    totes = _in_totes(session, node.id, sorted({r[1] for r in page}), by_bin=True)
    return [{"location": loc_code, "sku": sku_code, "on_hand": on_hand, "in_totes": totes.get((loc, sku), 0)}
            for loc, sku, loc_code, sku_code, on_hand in page], next_after
