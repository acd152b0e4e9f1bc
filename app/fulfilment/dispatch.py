"""Dispatch (派单): choose the nodes that ship a set of lines, and hold the
stock and capacity there.

The rules, in order: one node that can ship everything; otherwise the fewest
nodes (every pair is tried exactly, larger sets greedily); among equals the
nearest, with capacity left today. `same_city` lines only go to nodes whose
radius covers the address. Every choice keeps its candidates and scores in
`Fulfilment.dispatch_reason`.
"""
from __future__ import annotations

import itertools
import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from app.fulfilment import clock, events, orders, reserve
from app.fulfilment.errors import Refusal
from app.fulfilment.geo import Place, distance
from app.models import (
    Delivery,
    Fulfilment,
    FulfilmentLine,
    FulfilmentStatus,
    Node,
    NodeDay,
    Order,
    Sku,
    Stock,
    utcnow,
)

# Re-plans after losing a race for the same units to a concurrent request.
ATTEMPTS = 4
# How many candidates a dispatch reason keeps, nearest and best-covering first.
REASON_CANDIDATES = 8


@dataclass
class Candidate:
    node_id: int
    code: str
    km: float
    basis: str
    capacity_left: int
    # sku_id -> (stock_id, units available)
    stock: dict[int, tuple[int, int]] = field(default_factory=dict)

    def units(self, sku_id: int) -> int:
        return self.stock.get(sku_id, (0, 0))[1]

    def covers(self, lines: dict[int, int]) -> bool:
        return all(self.units(s) >= q for s, q in lines.items())


@dataclass
class Assignment:
    candidate: Candidate
    lines: dict[int, int]


@dataclass
class Plan:
    rule: str
    assignments: list[Assignment]
    unplaced: dict[int, int]


def _nearest(c: Candidate) -> tuple[float, str]:
    return (c.km, c.code)


def make_plan(lines: dict[int, int], candidates: list[Candidate]) -> Plan:
    """Pure planning over a snapshot of availability; see the module rules."""
    usable = [c for c in candidates if c.capacity_left > 0]
    whole = [c for c in usable if c.covers(lines)]
    if whole:
        return Plan("single_node", [Assignment(min(whole, key=_nearest), dict(lines))], {})

    holders = [c for c in usable if any(c.units(s) for s in lines)]
    best_pair = None
    for a, b in itertools.combinations(holders, 2):
        if all(a.units(s) + b.units(s) >= q for s, q in lines.items()):
            key = (max(a.km, b.km), a.km + b.km, a.code, b.code)
            if best_pair is None or key < best_pair[0]:
                best_pair = (key, a, b)
    if best_pair is not None:
        _, a, b = best_pair
        first, second = sorted((a, b), key=_nearest)
        take = {s: min(first.units(s), q) for s, q in lines.items() if first.units(s)}
        rest = {s: q - take.get(s, 0) for s, q in lines.items() if q - take.get(s, 0) > 0}
        return Plan("fewest_nodes", [Assignment(first, take), Assignment(second, rest)], {})

    remaining = dict(lines)
    chosen: list[Candidate] = []
    pool = list(holders)
    while remaining and pool:
        def score(c: Candidate) -> tuple[int, int, float]:
            full = sum(1 for s, q in remaining.items() if c.units(s) >= q)
            units = sum(min(c.units(s), q) for s, q in remaining.items())
            return (full, units, -c.km)

        best = max(pool, key=score)
        if score(best)[1] == 0:
            break
        pool.remove(best)
        chosen.append(best)
        for s, q in remaining.items():
            remaining[s] -= min(best.units(s), q)
        remaining = {s: q for s, q in remaining.items() if q > 0}
    # The nodes are chosen; among them the nearest ship what they can.
    remaining = dict(lines)
    assignments: list[Assignment] = []
    for c in sorted(chosen, key=_nearest):
        take = {s: min(c.units(s), q) for s, q in remaining.items() if c.units(s)}
        if take:
            assignments.append(Assignment(c, take))
        remaining = {s: q - take.get(s, 0) for s, q in remaining.items() if q - take.get(s, 0) > 0}
    return Plan("fewest_nodes" if assignments else "no_stock", assignments, remaining)


@dataclass(frozen=True)
class NodeFacts:
    """What dispatch needs of a node: a plain row, cheap to keep per process."""

    id: int
    code: str
    province: str
    city: str
    lat: float | None
    lon: float | None
    daily_capacity: int
    same_city_radius_km: float


# Per database: (version, active nodes). The version is read in the caller's
# transaction, so a node changed by any process is seen at once.
_nodes_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Within one transaction the version is read once (a node changed in it
# forgets this: `forget_nodes`).
_NODES_SEEN = "luyue_active_nodes"


def active_nodes(session: Session) -> list[NodeFacts]:
    """The active nodes, from a per-process copy checked against the table's
    row count and last change (one small query instead of 50 ORM objects)."""
    seen = session.info.get(_NODES_SEEN)
    if seen is not None:
        return seen
    engine = session.get_bind()
    version = tuple(session.execute(_NODES_VERSION).one())
    cached = _nodes_cache.get(engine)
    if cached is None or cached[0] != version:
        rows = [NodeFacts(*row) for row in session.execute(
            select(Node.id, Node.code, Node.province, Node.city, Node.lat, Node.lon, Node.daily_capacity,
                   Node.same_city_radius_km).where(Node.active.is_(True)).order_by(Node.id))]
        cached = _nodes_cache[engine] = (version, rows)
    session.info[_NODES_SEEN] = cached[1]
    return cached[1]


def forget_nodes(session: Session) -> None:
    session.info.pop(_NODES_SEEN, None)


def nodes_seen(session: Session) -> dict[int, str]:
    """id -> code of the active nodes if this transaction read them already
    (else empty: nothing is queried)."""
    return {n.id: n.code for n in session.info.get(_NODES_SEEN, ())}


def node_codes(session: Session) -> dict[int, str]:
    """id -> code of the active nodes (from the same per-process copy)."""
    return {n.id: n.code for n in active_nodes(session)}


def load_candidates(session: Session, order: Order, sku_ids: set[int], delivery: Delivery,
                    exclude: set[int]) -> tuple[list[Candidate], list[dict[str, Any]]]:
    """Active nodes that may serve this address, with stock and capacity now."""
    to = _place(order)
    candidates: dict[int, Candidate] = {}
    skipped: list[dict[str, Any]] = []
    nodes = active_nodes(session)
    for node in nodes:
        km, basis = distance(Place(node.province, node.city, node.lat, node.lon), to)
        if node.id in exclude:
            skipped.append({"node": node.code, "why": "failed_before"})
            continue
        if delivery == Delivery.same_city and not _in_reach(node, km, basis):
            continue
        candidates[node.id] = Candidate(node.id, node.code, km, basis, node.daily_capacity)
    if not candidates:
        return [], skipped
    today = clock.business_day(utcnow())
    # Rows of other nodes are dropped here rather than listed in the queries:
    # a list of every active node costs more to bind than the rows it saves.
    for node_id, booked in session.execute(_BOOKED, {"day": today}):
        if node_id in candidates:
            candidates[node_id].capacity_left -= booked
    if len(candidates) <= len(nodes) // 2:  # same-city: a few nodes of many
        stock = session.execute(_STOCK_AT, {"sku_ids": list(sku_ids), "node_ids": list(candidates)})
    else:
        stock = session.execute(_STOCK, {"sku_ids": list(sku_ids)})
    for stock_id, node_id, sku_id, units in stock:
        if node_id in candidates:
            candidates[node_id].stock[sku_id] = (stock_id, units)
    return list(candidates.values()), skipped


def _in_reach(node: NodeFacts, km: float, basis: str) -> bool:
    """Whether a node's riders reach an address this far: within its radius
    measured exactly, or in its city when either side has no coordinates."""
    radius = node.same_city_radius_km or 0
    return radius > 0 and ((km <= radius) if basis == "coordinates" else basis == "city")


def check_serviceable(session: Session, order: Order) -> None:
    """Refuse a same-city order that no active node's riders reach: it could
    only wait until it is cancelled. Names the nearest node for the platform."""
    if order.delivery != Delivery.same_city:
        return
    to = _place(order)
    nearest: tuple[float, NodeFacts] | None = None
    for node in active_nodes(session):
        km, basis = distance(Place(node.province, node.city, node.lat, node.lon), to)
        if _in_reach(node, km, basis):
            return
        if nearest is None or km < nearest[0]:
            nearest = (km, node)
    if nearest is None:
        raise Refusal("not_serviceable_no_node", details={"nearest": None})
    km, node = nearest
    raise Refusal("not_serviceable", node=node.code, km=f"{km:.1f}", radius=f"{node.same_city_radius_km:g}",
                  details={"nearest": {"node": node.code, "distance_km": round(km, 1),
                                       "same_city_radius_km": node.same_city_radius_km}})


def _place(order: Order) -> Place:
    return Place(order.ship_to.get("province", ""), order.ship_to.get("city", ""), order.ship_lat, order.ship_lon)


# Statements of every dispatch, built once (see intake's).
_NODES_VERSION = select(func.count(Node.id), func.max(Node.updated_at))
_BOOKED = select(NodeDay.node_id, NodeDay.booked).where(NodeDay.day == bindparam("day"))
_STOCK = select(Stock.id, Stock.node_id, Stock.sku_id, Stock.on_hand - Stock.reserved).where(
    Stock.sku_id.in_(bindparam("sku_ids", expanding=True)), Stock.on_hand - Stock.reserved > 0)
_STOCK_AT = _STOCK.where(Stock.node_id.in_(bindparam("node_ids", expanding=True)))


def ranked_candidates(candidates: list[Candidate], lines: dict[int, int]) -> list[dict[str, Any]]:
    """The candidates a lead wants to see, best covering then nearest first."""
    def summary(c: Candidate) -> dict[str, Any]:
        return {"node": c.code, "distance_km": round(c.km, 1), "basis": c.basis,
                "capacity_left": max(c.capacity_left, 0),
                "lines_covered": sum(1 for s, q in lines.items() if c.units(s) >= q),
                "units_available": sum(min(c.units(s), q) for s, q in lines.items())}

    # Nodes with none of the lines only matter when no node has any.
    holders = [c for c in candidates if c.stock] or candidates
    summaries = [(summary(c), c.km) for c in holders]
    summaries.sort(key=lambda x: (-x[0]["lines_covered"], -x[0]["units_available"], x[1]))
    return [s for s, _ in summaries[:REASON_CANDIDATES]]


def _reason(plan: Plan, chosen: Candidate | None, ranked: list[dict[str, Any]], total: int,
            skipped: list[dict[str, Any]], lines: dict[int, int], extra: dict[str, Any] | None) -> dict[str, Any]:
    reason: dict[str, Any] = {
        "rule": plan.rule,
        "chosen": chosen.code if chosen else None,
        "lines": len(lines),
        "candidates": ranked,
        "candidates_total": total,
        "at": utcnow().isoformat(),
    }
    if skipped:
        reason["skipped"] = skipped
    if extra:
        reason.update(extra)
    return reason


def _hold(session: Session, plan: Plan) -> bool:
    """Book capacity and stock for a whole plan in a savepoint: all or nothing."""
    wants: dict[int, int] = {}
    for a in plan.assignments:
        for sku_id, q in a.lines.items():
            wants[a.candidate.stock[sku_id][0]] = q
    savepoint = session.begin_nested()
    today = clock.business_day(utcnow())
    if reserve.book_capacity(session, [a.candidate.node_id for a in plan.assignments], today) \
            and reserve.hold_stock(session, wants):
        savepoint.commit()
        return True
    savepoint.rollback()
    return False


def fulfilment_ref(order_id: int, n: int) -> str:
    """The `n`th fulfilment of an order: F-000123-1, F-000123-2, ..."""
    return f"F-{order_id:06d}-{n}"


def new_fulfilment(order: Order, status: FulfilmentStatus, lines: dict[int, int], *, delivery: Delivery,
                   node_id: int | None = None, origin: Fulfilment | None = None,
                   release_at=None, reason: dict[str, Any] | None = None) -> Fulfilment:
    """A fulfilment of `order` for `lines`. An order not yet stored (intake)
    has no id: its fulfilments are named when it is (`intake.store`)."""
    now = utcnow()
    ref = fulfilment_ref(order.id, len(order.fulfilments) + 1) if order.id is not None else None
    f = Fulfilment(ref=ref, status=status, delivery=delivery, node_id=node_id,
                   redispatched_from=origin, release_at=release_at, dispatch_reason=reason, intercepted=False,
                   created_at=now, updated_at=now, dispatched_at=now if node_id else None, parcels=[])
    f.lines = [FulfilmentLine(sku_id=s, quantity=q) for s, q in sorted(lines.items())]
    order.fulfilments.append(f)
    return f


def place(session: Session, order: Order, lines: dict[int, int], delivery: Delivery, *,
          exclude: set[int] = frozenset(), reuse: Fulfilment | None = None, origin: Fulfilment | None = None,
          extra_reason: dict[str, Any] | None = None) -> list[Fulfilment]:
    """Dispatch `lines` and reserve them; returns the fulfilments that now hold
    them, and one `awaiting_stock` for what no node has.

    `reuse`: an existing fulfilment (awaiting stock or release) that takes the
    lines if one node ships them all, so its reference stays the same.
    `origin`: where new fulfilments came from (re-dispatch lineage)."""
    lines = {s: q for s, q in lines.items() if q > 0}
    if not lines:
        return []
    plan = Plan("no_stock", [], dict(lines))
    candidates: list[Candidate] = []
    skipped: list[dict[str, Any]] = []
    for _ in range(ATTEMPTS):
        candidates, skipped = load_candidates(session, order, set(lines), delivery, set(exclude))
        attempt = make_plan(lines, candidates)
        if not attempt.assignments or _hold(session, attempt):
            plan = attempt
            break
    now = utcnow()
    placed: list[Fulfilment] = []
    parent = origin or reuse
    ranked = ranked_candidates(candidates, lines)
    for a in plan.assignments:
        reason = _reason(plan, a.candidate, ranked, len(candidates), skipped, lines, extra_reason)
        if reuse is not None and not plan.unplaced and len(plan.assignments) == 1:
            f = reuse
            f.node_id, f.status, f.dispatch_reason = a.candidate.node_id, FulfilmentStatus.reserved, reason
            f.dispatched_at = f.updated_at = now
        else:
            f = new_fulfilment(order, FulfilmentStatus.reserved, a.lines, delivery=delivery,
                               node_id=a.candidate.node_id, origin=parent, reason=reason)
        by_sku = {line.sku_id: line for line in f.lines}
        for sku_id, q in a.lines.items():
            reserve.hold(by_sku[sku_id], a.candidate.stock[sku_id][0], q)
        events.record(session, "fulfilment.reserved", fulfilment=f,
                      data={"node": a.candidate.code, "rule": plan.rule,
                            **({"redispatched_from": parent.ref} if parent is not None and f is not reuse else {})})
        placed.append(f)

    if reuse is not None and reuse not in placed:
        _shrink(reuse, {s: q - plan.unplaced.get(s, 0) for s, q in lines.items()})
        if plan.unplaced:
            if reuse.status != FulfilmentStatus.awaiting_stock:
                events.record(session, "fulfilment.awaiting_stock", fulfilment=reuse,
                              data={"skus": sku_codes(session, plan.unplaced)})
            reuse.status = FulfilmentStatus.awaiting_stock
            reuse.node_id, reuse.updated_at = None, now
        else:
            reuse.status, reuse.updated_at = FulfilmentStatus.redispatched, now
            events.record(session, "fulfilment.redispatched", fulfilment=reuse,
                          data={"to": [f.ref for f in placed], "reason": "split_on_dispatch"})
    elif plan.unplaced:
        waiting = new_fulfilment(order, FulfilmentStatus.awaiting_stock, plan.unplaced, delivery=delivery,
                                 origin=parent,
                                 reason=_reason(plan, None, ranked, len(candidates), skipped, lines,
                                                extra_reason))
        events.record(session, "fulfilment.awaiting_stock", fulfilment=waiting,
                      data={"skus": sku_codes(session, plan.unplaced),
                            **({"redispatched_from": parent.ref} if parent is not None else {})})
        placed.append(waiting)
    return placed


def _shrink(f: Fulfilment, moved: dict[int, int]) -> None:
    for line in f.lines:
        line.quantity -= moved.get(line.sku_id, 0)


def sku_codes(session: Session, lines: dict[int, int]) -> dict[str, int]:
    codes = dict(session.execute(select(Sku.id, Sku.code).where(Sku.id.in_(list(lines)))).all())
    return {codes[s]: q for s, q in sorted(lines.items())}


def dispatch_waiting(session: Session, sku_ids: set[int] | None = None, limit: int | None = None
                     ) -> list[Fulfilment]:
    """Stock arrived: try the fulfilments awaiting stock, oldest first.

    Nodes that failed a fulfilment before are not excluded here: a new count
    is new truth about them."""
    query = select(Fulfilment).where(Fulfilment.status == FulfilmentStatus.awaiting_stock)
    if sku_ids is not None:
        query = query.where(Fulfilment.id.in_(
            select(FulfilmentLine.fulfilment_id).where(FulfilmentLine.sku_id.in_(list(sku_ids)),
                                                       FulfilmentLine.quantity > 0)))
    changed = []
    for f in session.scalars(query.order_by(Fulfilment.id).limit(limit)).all():
        # The order first, as every change of an order's fulfilments does:
        # its status is derived from all of them. Held elsewhere: the next
        # sweep (app.scheduler) tries again.
        if orders.try_lock(session, f.order_id) is None or f.status != FulfilmentStatus.awaiting_stock:
            continue
        lines = {line.sku_id: line.quantity for line in f.lines if line.quantity}
        placed = place(session, f.order, lines, f.delivery, reuse=f, extra_reason={"trigger": "stock_arrived"})
        if any(p.status == FulfilmentStatus.reserved for p in placed):
            orders.refresh(f.order)
            changed.append(f)
    return changed
