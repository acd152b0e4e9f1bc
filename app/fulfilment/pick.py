"""Picking (拣货): pick lists, the walk, scans checked line by line, short picks.

A pick list holds `reserved` fulfilments of one node: one order, or a batch
of several picked together into one tote each (cluster picking). Lists are
claimed oldest promise first; the claim is one conditional UPDATE
(`picker_id IS NULL`) whose row count says who won, so two pickers never hold
the same list, on SQLite and PostgreSQL alike. A new list takes its
fulfilments with `FOR UPDATE SKIP LOCKED`, so pickers claiming at once take
different work. A lead can release a list a picker abandoned; the next
picker resumes it where it stopped, and the picker it was taken from is told.

Every write on a list takes its locks in the project's fixed order: the
orders of its fulfilments, those fulfilments (by id), the list, its lines,
then stock rows. The scan id is checked after the locks, so a retry that
waited behind its original answers "already counted".

Lines are per (fulfilment line, bin), ordered along the walk: aisles in
natural order, serpentine (every other visited aisle walked backwards), bins
by `Location.walk_seq` within an aisle. Each line is a small state machine
whose step is stored, so a reload or a login on another device resumes it:

    location --scan bin--> product --scan unit--> quantity --...--> tote --scan tote--> done
                                   (keypad: total)            \\--short--> tote | done

A scan that does not fit is refused with a catalogue message saying what was
expected, and nothing is written. Every accepted scan is stored under the id
the handheld made for it; the same id again is answered as already done.

The fulfilments under a list can change while it is picked (a cancel, a
re-dispatch, a stock count). The next scan or reload brings the lines up to
date (`_reconcile`) and says why (`Change`): a cancelled or moved
fulfilment's lines leave the walk and what was picked for it goes back; the
scan is applied only if it fits the line now current, never refused for a
line that is gone.

A short pick first sends the picker to the node's other bins that have the
units free, then re-dispatches only what the node cannot cover (the hold is
released, the units placed at another node or left awaiting stock), and
corrects the bin's count, so `Stock.on_hand` stays the sum of the bins.
"""
from __future__ import annotations

import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, replace

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session, object_session, selectinload

from app.barcodes import Scan, read_scan
from app.fulfilment import count, events, hold, orders, scans
from app.fulfilment.errors import Refusal
from app.fulfilment.redispatch import redispatch
from app.models import (
    Barcode,
    BinStock,
    Fulfilment,
    FulfilmentLine,
    FulfilmentStatus,
    Location,
    Node,
    Order,
    PickLine,
    PickList,
    PickListFulfilment,
    PickListState,
    PickStep,
    ScanRecord,
    Sku,
    User,
    utcnow,
)

TOTE_LABEL_LENGTH = 64   # what a list keeps of a tote's label (PickListFulfilment.tote)
BATCH_ORDERS = 4          # orders on a batch (cluster) list: one cart, four totes
MAX_BATCH_ORDERS = 12
# Fulfilments whose picked units are still counted in their bins (shipping
# takes them out of the bins): the count's rule.
NOT_YET_SHIPPED = count.UNITS_IN_TOTES
# A tote is busy from the moment it is scanned onto a list until its order is packed.
TOTE_BUSY = (FulfilmentStatus.reserved, FulfilmentStatus.picking, FulfilmentStatus.picked)


@dataclass(frozen=True)
class Change:
    """Why the list under a picker changed. `why`: cancelled (the order was
    cancelled), moved (re-dispatched away whole) or reduced (fewer units
    wanted); `put_back`: what was picked for it and goes back, as
    `put_back_list` writes it ("—" for nothing)."""

    why: str
    fulfilment: str
    put_back: str = "—"


@dataclass(frozen=True)
class Accepted:
    """What an accepted scan did, for the screen to confirm it.

    `what`: tote_set, location, unit, quantity, line_done, short, list_done,
    list_changed (the list changed under the picker; the scan was not for
    the line now current), repeat. `changes`: what changed under the list."""

    what: str
    repeat: bool = False
    line_id: int | None = None
    changes: tuple[Change, ...] = ()


# --- reading -------------------------------------------------------------------------

def waiting(session: Session, node_id: int) -> int:
    """Reserved fulfilments at the node that are not on a list yet."""
    return session.scalar(select(func.count()).select_from(Fulfilment).where(
        Fulfilment.node_id == node_id, Fulfilment.status == FulfilmentStatus.reserved, hold.not_held(),
        ~exists().where(PickListFulfilment.fulfilment_id == Fulfilment.id))) or 0


def open_lists(session: Session, node_id: int) -> int:
    """Lists waiting for a picker (released by a lead)."""
    return session.scalar(select(func.count()).select_from(PickList).where(
        PickList.node_id == node_id, PickList.state == PickListState.open)) or 0


def held_by(session: Session, user: User) -> PickList | None:
    """The list this picker is working on: what a new login resumes."""
    return session.scalar(_loading(select(PickList)).where(
        PickList.picker_id == user.id, PickList.state == PickListState.picking).order_by(PickList.id))


def lists_in_progress(session: Session, node_id: int) -> list[PickList]:
    """Lists held by pickers at a node, oldest claim first: the lead's view."""
    return list(session.scalars(_loading(select(PickList)).where(
        PickList.node_id == node_id, PickList.state == PickListState.picking).order_by(PickList.claimed_at)))


def _loading(query):
    return query.options(
        selectinload(PickList.orders).selectinload(PickListFulfilment.fulfilment).selectinload(Fulfilment.order),
        selectinload(PickList.lines).selectinload(PickLine.location),
        selectinload(PickList.lines).selectinload(PickLine.sku).selectinload(Sku.barcodes),
        selectinload(PickList.lines).selectinload(PickLine.fulfilment_line),
        selectinload(PickList.picker),
    )


def next_tote_slot(pl: PickList) -> PickListFulfilment | None:
    """The first slot still without a tote (totes are scanned before picking starts)."""
    for slot in pl.orders:
        if slot.tote is None and slot.fulfilment.status in (FulfilmentStatus.reserved, FulfilmentStatus.picking):
            return slot
    return None


def current_line(pl: PickList) -> PickLine | None:
    """Lines are picked in walk order: the first one not done."""
    return next((line for line in pl.lines if line.step != PickStep.done), None)


def slot_of(pl: PickList, line: PickLine) -> PickListFulfilment:
    return next(s for s in pl.orders if s.fulfilment_id == line.fulfilment_line.fulfilment_id)


def progress(pl: PickList) -> tuple[int, int]:
    """(lines done, lines) — lines with nothing to pick left do not count."""
    lines = [line for line in pl.lines if line.quantity > 0 or line.short > 0]
    return sum(1 for line in lines if line.step == PickStep.done), len(lines)


def units_by_bin(f: Fulfilment) -> dict[tuple[int, int], int]:
    """(location_id, sku_id) -> units picked for this fulfilment: where shipping
    takes them from."""
    session = object_session(f)
    rows = session.execute(
        select(PickLine.location_id, PickLine.sku_id, func.sum(PickLine.picked))
        .join(FulfilmentLine, FulfilmentLine.id == PickLine.fulfilment_line_id)
        .where(FulfilmentLine.fulfilment_id == f.id, PickLine.picked > 0)
        .group_by(PickLine.location_id, PickLine.sku_id)).all()
    return {(loc, sku): int(units) for loc, sku, units in rows}


def put_back_list(f: Fulfilment) -> str:
    """Where a cancelled fulfilment's picked units go back, as a worker reads
    it in a refusal: "SKU-A × 2 → A-01-01-1, ..." (codes and numbers, the
    same in both languages; "—" when nothing was picked). Stock never stopped
    counting them in those bins: putting them back makes the shelf agree."""
    taken = units_by_bin(f)
    if not taken:
        return "—"
    session = object_session(f)
    bins = dict(session.execute(select(Location.id, Location.code)
                                .where(Location.id.in_({location for location, _ in taken}))).all())
    skus = dict(session.execute(select(Sku.id, Sku.code).where(Sku.id.in_({sku for _, sku in taken}))).all())
    return ", ".join(f"{skus[sku]} × {units} → {bins[location]}"
                     for (location, sku), units in sorted(taken.items(), key=lambda kv: (bins[kv[0][0]], skus[kv[0][1]])))


def fulfilment_in_tote(session: Session, node: Node, code: str) -> Fulfilment | None:
    """The fulfilment picked into a tote at this node (the latest use of the tote)."""
    return session.scalar(
        select(Fulfilment).join(PickListFulfilment, PickListFulfilment.fulfilment_id == Fulfilment.id)
        .join(PickList, PickList.id == PickListFulfilment.pick_list_id)
        .where(PickList.node_id == node.id, PickListFulfilment.tote == read_scan(code).text)
        .order_by(PickListFulfilment.id.desc()).limit(1))


# --- building and claiming -----------------------------------------------------------

def _natural(text: str) -> tuple:
    """A-2 before A-10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def walk_order(lines: list[PickLine]) -> list[PickLine]:
    """Serpentine by aisle: the aisles this list visits in natural order, the
    first walked up (rising walk_seq), the next down, and so on, so the picker
    never walks an aisle back empty-handed."""
    aisles = sorted({line.location.aisle for line in lines}, key=_natural)
    backwards = {aisle for i, aisle in enumerate(aisles) if i % 2 == 1}

    def key(line: PickLine):
        loc = line.location
        seq = -loc.walk_seq if loc.aisle in backwards else loc.walk_seq
        return (aisles.index(loc.aisle), seq, _natural(loc.code), line.sku_id, line.fulfilment_line_id)

    return sorted(lines, key=key)


def _bin_walk_key(loc: Location) -> tuple:
    return (_natural(loc.aisle), loc.walk_seq, _natural(loc.code))


def free_in_bins(session: Session, node_id: int, sku_id: int, *, lock: bool = False,
                 exclude: int | None = None) -> list[tuple[Location, int, int]]:
    """The node's bins holding the SKU, in walk order, as (bin, on hand,
    free): free is what the shelf has beyond the units promised to pick
    lines of fulfilments not shipped yet (picked ones are still counted in
    the bin until shipping takes them off). `lock`: the bin rows are locked
    (by location id) until commit, so two short picks cannot both send a
    picker to the same free units."""
    query = (select(Location, BinStock.on_hand).join(BinStock, BinStock.location_id == Location.id)
             .where(Location.node_id == node_id, BinStock.sku_id == sku_id))
    if exclude is not None:
        query = query.where(Location.id != exclude)
    if lock:
        session.execute(select(BinStock.location_id).join(Location, Location.id == BinStock.location_id)
                        .where(Location.node_id == node_id, BinStock.sku_id == sku_id)
                        .order_by(BinStock.location_id).with_for_update(of=BinStock))
    rows = session.execute(query).all()
    if not rows:
        return []
    promised = dict(session.execute(
        select(PickLine.location_id, func.sum(PickLine.quantity))
        .join(FulfilmentLine, FulfilmentLine.id == PickLine.fulfilment_line_id)
        .join(Fulfilment, Fulfilment.id == FulfilmentLine.fulfilment_id)
        .where(PickLine.sku_id == sku_id, PickLine.location_id.in_([loc.id for loc, _ in rows]),
               Fulfilment.status.in_(NOT_YET_SHIPPED))
        .group_by(PickLine.location_id)).all())
    rows.sort(key=lambda r: _bin_walk_key(r[0]))
    return [(loc, on_hand, max(on_hand - int(promised.get(loc.id, 0)), 0)) for loc, on_hand in rows]


def bins_for(session: Session, node_id: int, sku_id: int, quantity: int) -> list[tuple[Location, int]]:
    """Where to take `quantity` units from: the node's bins holding the SKU, in
    walk order, each for what it has free. What no bin covers goes to the
    last bin tried, where the picker will find it short."""
    rows = free_in_bins(session, node_id, sku_id)
    if not rows:
        return []
    plan: list[tuple[Location, int]] = []
    left = quantity
    for loc, _on_hand, free in rows:
        if free <= 0 or left <= 0:
            continue
        take = min(free, left)
        plan.append((loc, take))
        left -= take
    if left > 0:
        fullest = max(rows, key=lambda r: r[1])[0]
        target = plan[-1][0] if plan else fullest
        plan = [(loc, q + left) if loc is target else (loc, q) for loc, q in plan] or [(target, left)]
    return plan


def build_list(session: Session, node: Node, orders_wanted: int) -> PickList | None:
    """A new open list of up to `orders_wanted` reserved fulfilments not on any
    list, oldest promise first. None when nothing is free to take. The
    fulfilments and their orders are locked with SKIP LOCKED (PostgreSQL):
    a concurrent builder or a cancel holding one makes this builder pass it
    by rather than take it too or wait. (SQLite runs one writer at a time.)"""
    fulfilments = list(session.scalars(
        select(Fulfilment).join(Order, Order.id == Fulfilment.order_id)
        .where(Fulfilment.node_id == node.id, Fulfilment.status == FulfilmentStatus.reserved, hold.not_held(),
               ~exists().where(PickListFulfilment.fulfilment_id == Fulfilment.id))
        .order_by(Order.promised_by.is_(None), Order.promised_by, Order.placed_at, Fulfilment.id)
        .limit(orders_wanted)
        .with_for_update(skip_locked=True, of=[Order, Fulfilment])
        .options(selectinload(Fulfilment.lines), selectinload(Fulfilment.order))))
    if not fulfilments:
        return None
    promises = [f.order.promised_by for f in fulfilments if f.order.promised_by]
    pl = PickList(ref=f"PL-new-{uuid.uuid4().hex[:16]}", node_id=node.id,
                  state=PickListState.open, promised_by=min(promises) if promises else None)
    session.add(pl)
    lines: list[PickLine] = []
    for slot, f in enumerate(fulfilments, start=1):
        pl.orders.append(PickListFulfilment(fulfilment=f, slot=slot))
        binless: dict[int, int] = {}
        for fl in f.lines:
            if fl.quantity <= 0:
                continue
            plan = bins_for(session, node.id, fl.sku_id, fl.quantity)
            if not plan:
                binless[fl.sku_id] = fl.quantity
            for loc, units in plan:
                lines.append(PickLine(fulfilment_line=fl, location=loc, sku_id=fl.sku_id, quantity=units))
        if binless:
            # Held at the node but in no bin: nobody can pick it here.
            redispatch(session, f, binless, reason="no_bin")
    for seq, line in enumerate(walk_order(lines), start=1):
        line.seq = seq
        pl.lines.append(line)
    session.flush()
    pl.ref = f"PL-{pl.id:06d}"
    session.flush()
    return pl


def claim(session: Session, pl: PickList, user: User) -> None:
    """Take an open list for `user`. The list's orders and fulfilments are
    locked first (the fixed order), then the conditional UPDATE is the whole
    claim: whoever changes the row owns the list; the loser gets
    `pick_list_taken`. Lines of fulfilments changed meanwhile are brought up
    to date on the picker's screen (`refresh`), with the reason."""
    now = utcnow()
    _lock_list(session, pl.id)
    won = session.execute(
        update(PickList)
        .where(PickList.id == pl.id, PickList.state == PickListState.open, PickList.picker_id.is_(None))
        .values(state=PickListState.picking, picker_id=user.id, claimed_at=now)
        .execution_options(synchronize_session=False)).rowcount
    if won != 1:
        session.expire(pl)
        holder = pl.picker.code if pl.picker is not None else "?"
        raise Refusal("pick_list_taken", list=pl.ref, picker=holder)
    session.expire(pl, ["state", "picker_id", "claimed_at", "picker"])
    for slot in pl.orders:
        f = slot.fulfilment
        started = session.execute(
            update(Fulfilment).where(Fulfilment.id == f.id, Fulfilment.status == FulfilmentStatus.reserved)
            .values(status=FulfilmentStatus.picking, updated_at=now)
            .execution_options(synchronize_session=False)).rowcount
        session.expire(f, ["status", "updated_at"])
        if started:
            events.record(session, "fulfilment.picking", fulfilment=f,
                          data={"pick_list": pl.ref, "picker": user.code, "slot": slot.slot})
            orders.refresh(f.order)
    events.record(session, "pick.claimed", node=pl.node,
                  data={"pick_list": pl.ref, "picker": user.code, "fulfilments": [s.fulfilment.ref for s in pl.orders]})


def claim_next(session: Session, user: User, orders_wanted: int = BATCH_ORDERS) -> PickList:
    """The list this picker holds; else the oldest-promise open list (released
    by a lead); else a new one of up to `orders_wanted` orders.

    The picker's own row is locked first: two devices of one picker claiming
    at once take turns, and the second resumes the list the first took."""
    node = _node_of(session, user)
    session.execute(select(User.id).where(User.id == user.id).with_for_update())
    held = held_by(session, user)
    if held is not None:
        return held
    orders_wanted = max(1, min(orders_wanted, MAX_BATCH_ORDERS))
    candidates = session.scalars(
        select(PickList).where(PickList.node_id == node.id, PickList.state == PickListState.open,
                               PickList.picker_id.is_(None))
        .order_by(PickList.promised_by.is_(None), PickList.promised_by, PickList.id).limit(20)).all()
    for pl in candidates:
        try:
            claim(session, pl, user)  # a lost claim changed nothing
        except Refusal:
            continue  # someone was faster; try the next one
        return held_by(session, user)
    pl = build_list(session, node, orders_wanted)
    if pl is None:
        raise Refusal("nothing_to_pick", node=node.name)
    claim(session, pl, user)
    return held_by(session, user)


def release(session: Session, pl: PickList, by: User) -> None:
    """A lead gives an abandoned list back: the next claim resumes it, totes
    and steps as they were. The list remembers whom it was taken from, so
    that picker's next scan or reload says so (`release_notice`)."""
    if pl.node_id != by.node_id:
        raise Refusal("not_found", what="pick list")
    picker = pl.picker.code if pl.picker else None
    freed = session.execute(
        update(PickList).where(PickList.id == pl.id, PickList.state == PickListState.picking)
        .values(state=PickListState.open, picker_id=None, released_from_id=PickList.picker_id,
                released_by_id=by.id, released_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    if freed != 1:
        raise Refusal("pick_list_not_held", list=pl.ref)
    session.expire(pl, ["state", "picker_id", "picker", "released_from_id", "released_by_id", "released_at",
                        "released_by"])
    events.record(session, "pick.released", node=pl.node, data={"pick_list": pl.ref, "picker": picker, "by": by.code})


def release_notice(session: Session, user: User) -> Refusal | None:
    """`pick_list_released` when a lead took a list from this picker and they
    have not claimed one since; None otherwise."""
    row = session.execute(
        select(PickList.ref, PickList.released_at, User.name).join(User, User.id == PickList.released_by_id)
        .where(PickList.released_from_id == user.id)
        .order_by(PickList.released_at.desc()).limit(1)).first()
    if row is None:
        return None
    last_claim = session.scalar(select(func.max(PickList.claimed_at)).where(PickList.picker_id == user.id))
    if last_claim is not None and last_claim >= row.released_at:
        return None
    return Refusal("pick_list_released", list=row.ref, lead=row.name)


def list_for_release(session: Session, lead: User, ref: str) -> PickList:
    pl = session.scalar(_loading(select(PickList)).where(PickList.ref == ref, PickList.node_id == lead.node_id))
    if pl is None:
        raise Refusal("not_found", what="pick list")
    return pl


# --- scanning --------------------------------------------------------------------------

def scan(session: Session, user: User, scan_id: str, raw: str) -> Accepted:
    """One scan on the picker's list.

    Before picking: each slot's tote (tote_set). Then, on the current line,
    by its step: the bin's label (location), a unit of its product (unit;
    line complete -> tote step), the tote of its order (line_done, or
    list_done after the last line). When the list changed under the picker:
    list_changed (or list_done), with the scan applied only if it fits the
    line now current. Refusals: scan_unreadable, not_a_tote, tote_in_use,
    wrong_location, wrong_product, product_of_another_line, over_pick,
    pick_incomplete, wrong_tote, no_pick_list, pick_list_released."""
    code = read_scan(raw)
    if not code.text:
        raise Refusal("scan_unreadable")
    return _on_list(session, user, scan_id, lambda pl: _scan(session, user, scan_id, pl, code), same_line=False)


def _scan(session: Session, user: User, scan_id: str, pl: PickList, code: Scan) -> Accepted:
    slot = next_tote_slot(pl)
    if slot is not None:
        return _set_tote(session, user, scan_id, pl, slot, code)
    line = current_line(pl)
    if line is None:  # pragma: no cover - an empty walk is finished when it empties
        _finish(session, user, pl)
        return Accepted("list_done")
    target = slot_of(pl, line)
    if line.step == PickStep.location:
        if not _same(code.text, line.location.code):
            raise Refusal("wrong_location", scanned=code.text, expected=line.location.code)
        line.step = PickStep.product
        return _accept(session, user, scan_id, pl, line, "location", code.text)
    if line.step in (PickStep.product, PickStep.quantity):
        if _same(code.text, line.location.code):
            return Accepted("location", line_id=line.id)  # the bin again: harmless
        if line.step == PickStep.quantity and target.tote and _same(code.text, target.tote):
            raise Refusal("pick_incomplete", left=line.quantity - line.picked, sku=line.sku.code)
        _check_product(session, pl, line, code)
        if line.picked + 1 > line.quantity:  # pragma: no cover - the step says otherwise
            raise _over_pick(line, target, line.picked + 1)
        line.picked += 1
        line.step = PickStep.tote if line.picked == line.quantity else PickStep.quantity
        return _accept(session, user, scan_id, pl, line, "unit", code.text, quantity=1)
    # step tote
    if target.tote and _same(code.text, target.tote):
        return _line_done(session, user, scan_id, pl, line, code.text)
    if line.sku_id in _skus_of(session, code):
        raise _over_pick(line, target, line.picked + 1)
    raise Refusal("wrong_tote", scanned=code.text, sku=line.sku.code, fulfilment=target.fulfilment.ref,
                  expected=target.tote, slot=target.slot)


def _line_in_hand(pl: PickList) -> tuple[PickLine, PickListFulfilment]:
    """The current line and its slot, for work that needs the bin scanned already."""
    line = current_line(pl)
    if line is None or next_tote_slot(pl) is not None:
        raise Refusal("no_pick_list")
    target = slot_of(pl, line)
    if line.step == PickStep.location:
        raise Refusal("short_needs_location", expected=line.location.code)
    return line, target


def enter_quantity(session: Session, user: User, scan_id: str, total: int) -> Accepted:
    """The keypad: how many units of the current line are in hand in all, after
    at least one was scanned (so the product is proven). quantity/product ->
    quantity, or tote when complete. Refusals: quantity_invalid, over_pick,
    wrong_product (nothing scanned yet)."""
    def work(pl: PickList) -> Accepted:
        line, target = _line_in_hand(pl)
        if line.step == PickStep.product:
            raise Refusal("scan_product_first", sku=line.sku.code)
        if total > line.quantity:
            raise _over_pick(line, target, total)
        if total < 1:
            raise Refusal("quantity_invalid", most=line.quantity)
        line.picked = total
        line.step = PickStep.tote if total == line.quantity else PickStep.quantity
        return _accept(session, user, scan_id, pl, line, "quantity", None, quantity=total)
    return _on_list(session, user, scan_id, work, same_line=True)


def short_pick(session: Session, user: User, scan_id: str) -> Accepted:
    """The bin holds no more than what was picked from it. The missing units
    are taken from the node's other bins that have them free first (new
    lines, walked next); only what the node cannot cover is re-dispatched
    (hold released, placed at another node or awaiting stock). Then the bin
    is counted at what is really there, so stock stays the sum of the bins.
    The line goes to its tote step with the units in hand, or is done when
    there are none. Refusals: short_needs_location, short_not_needed."""
    return _on_list(session, user, scan_id, lambda pl: _short(session, user, scan_id, pl), same_line=True)


def _short(session: Session, user: User, scan_id: str, pl: PickList) -> Accepted:
    line, target = _line_in_hand(pl)
    if line.step == PickStep.tote or line.picked >= line.quantity:
        raise Refusal("short_not_needed", quantity=line.quantity, sku=line.sku.code, tote=target.tote)
    missing = line.quantity - line.picked
    f = target.fulfilment
    location, sku = line.location, line.sku
    line.short += missing
    line.quantity = line.picked
    line.step = PickStep.tote if line.picked > 0 else PickStep.done
    if line.step == PickStep.done:
        line.done_at = utcnow()
    session.flush()
    elsewhere = _same_node_first(session, pl, line, missing)
    rest = missing - sum(units for _, units in elsewhere)
    placed = redispatch(session, f, {sku.id: rest}, reason="short_pick", by=user.code) if rest else []
    counted = _bin_found_short(session, pl, location, sku, user)
    events.record(session, "pick.short", fulfilment=f, data={
        "pick_list": pl.ref, "location": location.code, "sku": sku.code, "missing": missing,
        "picked_elsewhere": [{"location": loc.code, "quantity": units} for loc, units in elsewhere],
        "bin_on_hand": counted["bin_on_hand"], "to": [p.ref for p in placed], "by": user.code,
        "also_moved": counted["redispatched"]})
    _record(session, user, scan_id, pl, line, "short", location.code, missing)
    # The count may have moved units of this list's fulfilments elsewhere.
    pl = _load_list(session, pl.id)
    changes = _reconcile(session, pl)
    finished = _finish(session, user, pl)
    return Accepted("list_done" if finished else "short", line_id=line.id, changes=tuple(changes))


def _same_node_first(session: Session, pl: PickList, line: PickLine, missing: int) -> list[tuple[Location, int]]:
    """New lines for the missing units at the node's other bins that have
    them free, placed right after the short line so the picker goes there
    next. Returns (bin, units) taken; the rest is for another node."""
    plan: list[tuple[Location, int]] = []
    left = missing
    for loc, _on_hand, free in free_in_bins(session, pl.node_id, line.sku_id, lock=True, exclude=line.location_id):
        if left <= 0:
            break
        if free > 0:
            take = min(free, left)
            plan.append((loc, take))
            left -= take
    if not plan:
        return []
    walk = sorted(pl.lines, key=lambda pick_line: pick_line.seq)
    at = walk.index(line) + 1
    new = [PickLine(pick_list_id=pl.id, fulfilment_line_id=line.fulfilment_line_id, location_id=loc.id,
                    sku_id=line.sku_id, quantity=units, picked=0, short=0, step=PickStep.location)
           for loc, units in plan]
    # (pick_list_id, seq) is unique and checked row by row: the lines after
    # the short one step aside to negative numbers before taking their new ones.
    for i, later in enumerate(walk[at:], start=1):
        later.seq = -i
    session.flush()
    for seq, pick_line in enumerate(walk[:at] + new + walk[at:], start=1):
        pick_line.seq = seq
    session.flush()
    session.add_all(new)
    session.flush()
    session.expire(pl, ["lines"])
    return plan


def _bin_found_short(session: Session, pl: PickList, location: Location, sku: Sku, user: User) -> dict:
    """A bin was found short of `sku`: what the books say is in it now (the
    units picked from it that have not shipped yet; nothing else was found),
    and a counter is asked to count it. The one place a short pick corrects
    a bin; returns the bin's count and the fulfilments the count moved away."""
    from app import masterdata  # masterdata imports the pipeline; import late

    in_bin = count.in_totes(session, location.id, sku.id)
    counted = masterdata.count_stock(session, pl.node, masterdata.StockBody(items=[masterdata.StockItem(
        location=location.code, sku=sku.code, on_hand=in_bin)]))
    count.request(session, pl.node, location, sku, reason="short_pick", by=user)
    return {"bin_on_hand": in_bin, "redispatched": counted.get("redispatched", [])}


def refresh(session: Session, user: User) -> Accepted:
    """A reload of a stale screen: the picker's list brought up to date with
    its fulfilments (list_changed, or list_done when nothing is left), with
    the reasons. Refusals: no_pick_list, pick_list_released."""
    pl = _work_of(session, user)
    changes = _reconcile(session, pl)
    finished = _finish(session, user, pl)
    return Accepted("list_done" if finished else "list_changed", changes=tuple(changes))


def stale(pl: PickList) -> bool:
    """Whether the lines no longer match the fulfilments under the list (or
    its walk is over and it is not closed yet): `refresh` would change it."""
    if pl.state != PickListState.picking:
        return False
    if current_line(pl) is None:
        return True
    for slot in pl.orders:
        f = slot.fulfilment
        mine = [line for line in pl.lines if line.fulfilment_line.fulfilment_id == f.id]
        if f.status in GONE:
            if any(line.step != PickStep.done for line in mine):
                return True
            continue
        if f.status not in LIVE:
            continue
        planned: dict[int, int] = defaultdict(int)
        for line in mine:
            planned[line.fulfilment_line_id] += line.quantity
        # Only lines still walked can give units back (what is in a tote stays there).
        if any(planned[line.fulfilment_line_id] > line.fulfilment_line.quantity
               for line in mine if line.step != PickStep.done):
            return True
    return False


# --- the steps --------------------------------------------------------------------------

# Fulfilments whose lines are still walked, and those whose lines leave the walk.
LIVE = (FulfilmentStatus.reserved, FulfilmentStatus.picking)
GONE = (FulfilmentStatus.cancelled, FulfilmentStatus.redispatched)


def _on_list(session: Session, user: User, scan_id: str, work, same_line: bool) -> Accepted:
    """Run one scan-like `work` on the picker's list: locks (fixed order),
    then the scan id (a retry that waited behind its original is a repeat),
    then the lines brought up to date. When they changed, the work runs only
    if it still fits (in a savepoint: a refusal about a line that is gone is
    not the answer), else the answer says what changed. `same_line`: the
    work is about the line the picker had (keypad, short), not any scan."""
    pl = _work_of(session, user)
    if scans.seen(session, user, scan_id) is not None:
        return Accepted("repeat", repeat=True)
    before = current_line(pl)
    changes = _reconcile(session, pl)
    if not changes:
        return work(pl)
    now = current_line(pl)
    if now is not None and (not same_line or (before is not None and now.id == before.id)):
        try:
            with session.begin_nested():
                accepted = work(pl)
            return replace(accepted, changes=tuple(changes) + accepted.changes)
        except Refusal:
            pass  # the scan was meant for a line that changed: say what changed instead
    _record(session, user, scan_id, pl, None, "list_changed", None)
    finished = _finish(session, user, pl)
    return Accepted("list_done" if finished else "list_changed", changes=tuple(changes))


def _work_of(session: Session, user: User) -> PickList:
    """The picker's list, locked with what it depends on (`_lock_list`) and
    read afresh. A list released or finished while waiting for the locks is
    not the picker's any more."""
    pl_id = session.scalar(select(PickList.id).where(
        PickList.picker_id == user.id, PickList.state == PickListState.picking).order_by(PickList.id))
    if pl_id is None:
        raise release_notice(session, user) or Refusal("no_pick_list")
    pl = _lock_list(session, pl_id)
    if pl.picker_id != user.id or pl.state != PickListState.picking:
        raise release_notice(session, user) or Refusal("no_pick_list")
    return pl


def _lock_list(session: Session, pl_id: int) -> PickList:
    """Lock, in the project's fixed order, the orders of the list's
    fulfilments, those fulfilments (by id), the list and its lines, until
    commit (PostgreSQL; SQLite runs one writer at a time); then read them
    all afresh. A cancel or a re-dispatch of one of its fulfilments and a
    scan on the list take turns, and each sees what the other did."""
    f_ids = list(session.scalars(select(PickListFulfilment.fulfilment_id)
                                 .where(PickListFulfilment.pick_list_id == pl_id)))
    if f_ids:
        order_ids = set(session.scalars(select(Fulfilment.order_id).where(Fulfilment.id.in_(f_ids))))
        session.execute(select(Order.id).where(Order.id.in_(order_ids)).order_by(Order.id).with_for_update())
        session.execute(select(Fulfilment.id).where(Fulfilment.id.in_(f_ids)).order_by(Fulfilment.id)
                        .with_for_update())
    session.execute(select(PickList.id).where(PickList.id == pl_id).with_for_update())
    session.execute(select(PickLine.id).where(PickLine.pick_list_id == pl_id).order_by(PickLine.id).with_for_update())
    return _load_list(session, pl_id)


def _load_list(session: Session, pl_id: int) -> PickList:
    return session.scalar(_loading(select(PickList)).where(PickList.id == pl_id)
                          .execution_options(populate_existing=True))


def _record(session: Session, user: User, scan_id: str, pl: PickList, line: PickLine | None, action: str,
            code: str | None, quantity: int | None = None) -> None:
    # Checked after the list's locks (`_on_list`), so a retry of the same scan
    # finds it here; the unique key on (user, scan_id) is the backstop.
    session.add(ScanRecord(scan_id=scan_id, user_id=user.id, work="pick", action=action, code=code,
                           quantity=quantity, pick_list_id=pl.id, pick_line_id=line.id if line else None))
    session.flush()


def _accept(session, user, scan_id, pl, line, action, code, quantity=None) -> Accepted:
    _record(session, user, scan_id, pl, line, action, code, quantity)
    return Accepted(action, line_id=line.id)


def _same(scanned: str, expected: str) -> bool:
    return scanned.strip().upper() == expected.strip().upper()


def _skus_of(session: Session, code: Scan) -> set[int]:
    return set(session.scalars(select(Barcode.sku_id).where(Barcode.code.in_(code.product_codes()))))


def _check_product(session: Session, pl: PickList, line: PickLine, code: Scan) -> None:
    skus = _skus_of(session, code)
    if line.sku_id in skus:
        return
    expected = line.sku.barcodes[0].code if line.sku.barcodes else line.sku.code
    other = next((o for o in pl.lines if o.sku_id in skus and o.id != line.id), None)
    if other is not None:
        raise Refusal("product_of_another_line", scanned=code.text, other=other.sku.code, expected=expected,
                      sku=line.sku.code, details={"other_line": other.seq})
    raise Refusal("wrong_product", scanned=code.text, expected=expected, sku=line.sku.code)


def _over_pick(line: PickLine, target: PickListFulfilment, would_have: int) -> Refusal:
    return Refusal("over_pick", quantity=line.quantity, sku=line.sku.code, would_have=would_have,
                   tote=target.tote or "")


def _set_tote(session: Session, user: User, scan_id: str, pl: PickList, slot: PickListFulfilment,
              code: Scan) -> Accepted:
    tote = code.text
    if len(tote) > TOTE_LABEL_LENGTH:
        raise Refusal("tote_label_too_long", length=len(tote), limit=TOTE_LABEL_LENGTH, slot=slot.slot)
    is_location = session.scalar(select(Location.id).where(
        Location.node_id == pl.node_id, func.upper(Location.code) == tote.upper()))
    if is_location is not None or _skus_of(session, code):
        raise Refusal("not_a_tote", scanned=tote, slot=slot.slot)
    busy = session.scalar(
        select(Fulfilment.ref).join(PickListFulfilment, PickListFulfilment.fulfilment_id == Fulfilment.id)
        .join(PickList, PickList.id == PickListFulfilment.pick_list_id)
        .where(PickList.node_id == pl.node_id, func.upper(PickListFulfilment.tote) == tote.upper(),
               Fulfilment.status.in_(TOTE_BUSY)).limit(1))
    if busy is not None:
        raise Refusal("tote_in_use", tote=tote, fulfilment=busy, slot=slot.slot)
    slot.tote = tote
    _record(session, user, scan_id, pl, None, "tote", tote)
    return Accepted("tote_set")


def _line_done(session: Session, user: User, scan_id: str, pl: PickList, line: PickLine, code: str) -> Accepted:
    line.step = PickStep.done
    line.done_at = utcnow()
    _record(session, user, scan_id, pl, line, "tote", code, line.picked)
    finished = _finish(session, user, pl)
    return Accepted("list_done" if finished else "line_done", line_id=line.id)


def _finish(session: Session, user: User, pl: PickList) -> bool:
    """Fulfilments whose lines are all done are picked; the list is done when
    every line is. Returns whether the list is done."""
    now = utcnow()
    session.flush()
    for slot in pl.orders:
        f = slot.fulfilment
        mine = [line for line in pl.lines if line.fulfilment_line.fulfilment_id == f.id]
        if f.status != FulfilmentStatus.picking or any(line.step != PickStep.done for line in mine):
            continue
        picked = session.execute(
            update(Fulfilment).where(Fulfilment.id == f.id, Fulfilment.status == FulfilmentStatus.picking)
            .values(status=FulfilmentStatus.picked, updated_at=now)
            .execution_options(synchronize_session=False)).rowcount
        session.expire(f, ["status", "updated_at"])
        if picked:
            bins = defaultdict(int)
            for line in mine:
                if line.picked:
                    bins[(line.location.code, line.sku.code)] += line.picked
            events.record(session, "fulfilment.picked", fulfilment=f, data={
                "pick_list": pl.ref, "tote": slot.tote, "by": user.code,
                "units": [{"location": loc, "sku": sku, "quantity": q} for (loc, sku), q in sorted(bins.items())]})
            orders.refresh(f.order)
    if any(line.step != PickStep.done for line in pl.lines):
        return False
    pl.state = PickListState.done
    pl.finished_at = now
    events.record(session, "pick.finished", node=pl.node, data={"pick_list": pl.ref, "picker": user.code})
    return True


def _reconcile(session: Session, pl: PickList) -> list[Change]:
    """Keep lines true to their fulfilments, which can change under a list:
    a cancel, a re-dispatch, a stock count. A cancelled or moved
    fulfilment's lines leave the walk, and what was picked for it goes back
    (`put_back_list`). A fulfilment that wants fewer units: what is no longer
    wanted is dropped, units not yet picked first, then units in hand (they
    go back to their bin). Returns what changed and why."""
    now = utcnow()
    changes: list[Change] = []
    for slot in pl.orders:
        f = slot.fulfilment
        mine = [line for line in pl.lines if line.fulfilment_line.fulfilment_id == f.id]
        if f.status in GONE:
            walking = [line for line in mine if line.step != PickStep.done]
            if not walking:
                continue
            for line in walking:
                line.quantity = line.picked
                line.step, line.done_at = PickStep.done, now
            session.flush()
            changes.append(Change("cancelled" if f.status == FulfilmentStatus.cancelled else "moved", f.ref,
                                  put_back_list(f)))
            continue
        if f.status not in LIVE:
            continue
        back: dict[tuple[str, str], int] = defaultdict(int)
        reduced = False
        planned: dict[int, list[PickLine]] = defaultdict(list)
        for line in mine:
            planned[line.fulfilment_line_id].append(line)
        for lines in planned.values():
            excess = sum(line.quantity for line in lines) - lines[0].fulfilment_line.quantity
            if excess <= 0:
                continue
            for line in reversed(lines):
                if excess <= 0:
                    break
                if line.step == PickStep.done:
                    continue
                drop = min(excess, line.quantity - line.picked)
                line.quantity -= drop
                excess -= drop
                give_back = min(excess, line.picked)
                reduced = reduced or drop > 0 or give_back > 0
                if give_back > 0:
                    line.picked -= give_back
                    line.quantity -= give_back
                    excess -= give_back
                    back[(line.sku.code, line.location.code)] += give_back
                if line.quantity == 0:
                    line.step, line.done_at = PickStep.done, now
                elif line.picked == line.quantity and line.step != PickStep.location:
                    line.step = PickStep.tote
        if reduced:
            changes.append(Change("reduced", f.ref, ", ".join(
                f"{sku} × {units} → {bin_}" for (sku, bin_), units in sorted(back.items())) or "—"))
    session.flush()
    return changes


def _node_of(session: Session, user: User) -> Node:
    if user.node_id is None:
        raise Refusal("no_node")
    return session.get(Node, user.node_id)
