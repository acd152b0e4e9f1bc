"""Reservation (预占库存): holding stock, and a node's daily capacity, without
overselling, on SQLite and PostgreSQL, with no lock held across a request.

Each hold is one conditional update over all the rows it needs,
`reserved = reserved + q WHERE on_hand - reserved >= q`, returning the rows it
changed; the caller compares them with what it asked for. On PostgreSQL a row
another transaction is changing makes the update wait and then re-check its
condition, so two orders can never both take the last unit.
"""
from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping

from sqlalchemy import Integer, bindparam, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.models import (
    BinStock,
    Fulfilment,
    FulfilmentLine,
    Location,
    Node,
    NodeDay,
    Reservation,
    ReservationState,
    Stock,
    utcnow,
)


def hold_stock(session: Session, wants: Mapping[int, int]) -> bool:
    """Add `wants[stock_id]` units to each stock row's `reserved`. Returns
    False if any row lacks the units; the rows that had them are changed all
    the same, so call it inside a savepoint and roll that back on False."""
    if not wants:
        return True
    params = {}
    for i, (stock_id, quantity) in enumerate(wants.items()):
        params[f"id{i}"], params[f"q{i}"] = stock_id, quantity
    changed = session.execute(_hold_stock_statement(len(wants)), params).scalars().all()
    return len(changed) == len(wants)


# Built once (per number of rows): these run for every fulfilment dispatched,
# and building a statement costs more than running it.
@functools.lru_cache(maxsize=64)
def _hold_stock_statement(rows: int):
    stock = Stock.__table__
    ids = [bindparam(f"id{i}", type_=Integer) for i in range(rows)]
    amount = case(*[(stock.c.id == ids[i], bindparam(f"q{i}", type_=Integer)) for i in range(rows)])
    return (update(stock)
            .where(stock.c.id.in_(ids), stock.c.on_hand - stock.c.reserved >= amount)
            .values(reserved=stock.c.reserved + amount)
            .returning(stock.c.id))


_node_days = NodeDay.__table__
_NEW_NODE_DAY = {
    dialect.__name__.rsplit(".", 1)[-1]: dialect.insert(_node_days)
    .values(node_id=bindparam("node_id"), day=bindparam("day"), booked=0)
    .on_conflict_do_nothing(index_elements=["node_id", "day"])
    for dialect in (postgresql, sqlite)
}
_BOOK_NODE_DAYS = (
    update(_node_days)
    .where(_node_days.c.day == bindparam("today"), _node_days.c.node_id.in_(bindparam("node_ids", expanding=True)),
           _node_days.c.booked < select(Node.__table__.c.daily_capacity)
           .where(Node.__table__.c.id == _node_days.c.node_id).scalar_subquery())
    .values(booked=_node_days.c.booked + 1)
    .returning(_node_days.c.node_id)
)


def book_capacity(session: Session, node_ids: Iterable[int], day: dt.date) -> bool:
    """Take one fulfilment of each node's daily capacity for `day`. Returns
    False if any node is full; like `hold_stock`, roll back a savepoint then."""
    node_ids = sorted(set(node_ids))
    if not node_ids:
        return True
    session.execute(_NEW_NODE_DAY[session.get_bind().dialect.name], [{"node_id": n, "day": day} for n in node_ids])
    changed = session.execute(_BOOK_NODE_DAYS, {"today": day, "node_ids": node_ids}).scalars().all()
    return len(changed) == len(node_ids)


def _open_holds(session: Session, lines: Iterable[FulfilmentLine]) -> dict[int, list[Reservation]]:
    """The open reservations of `lines` by line id, locked and read afresh: a
    hold that a concurrent transaction has just closed is not given back twice."""
    session.flush()
    ids = [line.id for line in lines]
    held: dict[int, list[Reservation]] = defaultdict(list)
    if ids:
        for r in session.scalars(
            select(Reservation).where(Reservation.fulfilment_line_id.in_(ids),
                                      Reservation.state == ReservationState.open)
            .order_by(Reservation.id).with_for_update().execution_options(populate_existing=True)
        ):
            held[r.fulfilment_line_id].append(r)
    return held


def _lower_reserved(session: Session, by_stock: Mapping[int, int], consume: bool = False) -> None:
    if not by_stock:
        return
    amount = case(dict(by_stock), value=Stock.id)
    values = {"reserved": Stock.reserved - amount}
    if consume:
        values["on_hand"] = Stock.on_hand - amount
    session.execute(update(Stock).where(Stock.id.in_(list(by_stock))).values(**values)
                    .execution_options(synchronize_session=False))


def release_quantity(session: Session, line: FulfilmentLine, quantity: int) -> int:
    """Give back up to `quantity` units held for `line`; returns how many."""
    left = quantity
    by_stock: dict[int, int] = defaultdict(int)
    now = utcnow()
    for r in reversed(_open_holds(session, [line])[line.id]):
        if left <= 0:
            break
        take = min(left, r.quantity)
        by_stock[r.stock_id] += take
        left -= take
        if take == r.quantity:
            r.state = ReservationState.released
            r.closed_at = now
        else:
            r.quantity -= take
    _lower_reserved(session, by_stock)
    return quantity - left


def release(session: Session, fulfilment: Fulfilment) -> None:
    """Give back everything held for a fulfilment (cancel, re-dispatch)."""
    by_stock: dict[int, int] = defaultdict(int)
    now = utcnow()
    held = _open_holds(session, fulfilment.lines)
    for line in fulfilment.lines:
        for r in held[line.id]:
            by_stock[r.stock_id] += r.quantity
            r.state = ReservationState.released
            r.closed_at = now
    _lower_reserved(session, by_stock)


def consume(session: Session, fulfilment: Fulfilment, taken_from: Mapping[tuple[int, int], int] | None = None) -> None:
    """The units left the building: close the holds, lower on-hand stock and
    the bins they came from. `taken_from` maps (location_id, sku_id) to units
    as picked; without it the fullest bins give first."""
    by_stock: dict[int, int] = defaultdict(int)
    per_sku: dict[int, int] = defaultdict(int)
    now = utcnow()
    held = _open_holds(session, fulfilment.lines)
    for line in fulfilment.lines:
        for r in held[line.id]:
            by_stock[r.stock_id] += r.quantity
            per_sku[line.sku_id] += r.quantity
            r.state = ReservationState.consumed
            r.closed_at = now
    _lower_reserved(session, by_stock, consume=True)
    _take_from_bins(session, fulfilment.node_id, per_sku, dict(taken_from or {}))


def _take_from_bins(session: Session, node_id: int | None, per_sku: Mapping[int, int],
                    taken_from: dict[tuple[int, int], int]) -> None:
    if node_id is None or not per_sku:
        return
    bins = session.execute(
        select(BinStock).join(Location, Location.id == BinStock.location_id)
        .where(Location.node_id == node_id, BinStock.sku_id.in_(list(per_sku)))
        .order_by(BinStock.on_hand.desc())
    ).scalars().all()
    by_key = {(b.location_id, b.sku_id): b for b in bins}
    left = dict(per_sku)
    for (location_id, sku_id), units in taken_from.items():
        b = by_key.get((location_id, sku_id))
        if b is None or left.get(sku_id, 0) <= 0:
            continue
        take = min(units, b.on_hand, left[sku_id])
        b.on_hand -= take
        left[sku_id] -= take
    for b in bins:
        need = left.get(b.sku_id, 0)
        if need > 0:
            take = min(need, b.on_hand)
            b.on_hand -= take
            left[b.sku_id] -= take


def hold(line: FulfilmentLine, stock_id: int, quantity: int) -> Reservation:
    """The reservation row for units already added to `Stock.reserved`."""
    r = Reservation(stock_id=stock_id, quantity=quantity, state=ReservationState.open, created_at=utcnow())
    line.reservations.append(r)
    return r
