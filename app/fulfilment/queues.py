"""Queues (班组长看板): where work piles up at a node, for a shift lead.

Everything a lead's dashboard shows, read in a handful of aggregate queries
per node, never one per fulfilment or per worker:

    stages     fulfilments per stage, each with its oldest (window functions)
    shipped    fulfilments shipped since local midnight
    promises   unshipped fulfilments past or near their `promised_by`
    holds      fulfilments on hold (`app.fulfilment.hold`)
    lists      pick lists being picked, with their last scan (to spot the abandoned)
    workers    each picker's and packer's lines this shift, and per hour
    exceptions short picks, re-dispatches, interceptions, stock found short,
               printer failures, parcels a carrier is bringing back and
               their arrival at the dock: read from the outbox by `seq`

`NodeView` is a node's dashboard as of an outbox `seq`; `advance()` moves it
to a later seq, re-reading the counts only when an event of that node (or
one without a node, such as a new order awaiting stock) committed in
between. Its recent exceptions ride along, so a live socket can take what it
has not sent yet without asking the database.

Ages count from a fulfilment's `updated_at`: the last change, which is when
it entered its stage (a hold placed meanwhile also counts as a change).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import Session, selectinload

from app.fulfilment import clock
from app.fulfilment.scope import NodeScope
from app.fulfilment.hold import not_held
from app.models import (
    Event,
    Fulfilment,
    FulfilmentHold,
    FulfilmentLine,
    FulfilmentStatus as S,
    Node,
    Order,
    Parcel,
    ParcelItem,
    PickLine,
    PickList,
    PickListFulfilment,
    PickListState,
    PickStep,
    ScanRecord,
    User,
    utcnow,
)

# The stages a lead watches, in the order work flows; awaiting stock is not
# at any node yet, so it is counted over all nodes.
STAGES: tuple[tuple[str, S | None], ...] = (
    ("awaiting_stock", S.awaiting_stock),
    ("to_pick", S.reserved),
    ("picking", S.picking),
    ("to_pack", S.picked),
    ("to_ship", S.packed),
    ("shipped_today", None),
)
UNSHIPPED_AT_NODE = (S.reserved, S.picking, S.picked, S.packed)
# A promise this close is highlighted before it is missed.
NEAR_PROMISE = dt.timedelta(hours=2)
# A pick list without a scan for this long looks abandoned.
IDLE_LIST = dt.timedelta(minutes=10)
# Rates over less than this would mean little (two lines in a minute is not 120 an hour).
MIN_RATE_SPAN = dt.timedelta(minutes=15)
SHOWN = 12              # rows per list on the dashboard
RECENT_EXCEPTIONS = 50  # exceptions a view carries, newest last

# Event types a lead is shown as exceptions. A short pick also records the
# re-dispatch it caused: that one is left out (the short pick says where the
# units went). Printer failures appear when the packing bench records them.
PRINTER_FAILED = "printer.failed"
EXCEPTION_TYPES = ("pick.short", "fulfilment.redispatched", "fulfilment.intercepted", "stock.short",
                   PRINTER_FAILED, "parcel.returned", "parcel.received_back")


@dataclass(frozen=True)
class Oldest:
    ref: str
    since: dt.datetime
    promised_by: dt.datetime | None


@dataclass(frozen=True)
class Stage:
    key: str
    count: int
    oldest: Oldest | None = None


@dataclass(frozen=True)
class Promise:
    ref: str
    status: str
    promised_by: dt.datetime
    late: bool
    held: bool


@dataclass(frozen=True)
class Held:
    ref: str
    status: str
    reason: str
    by: str
    placed_at: dt.datetime
    until: dt.datetime | None


@dataclass(frozen=True)
class ListInProgress:
    ref: str
    picker_code: str
    picker_name: str
    claimed_at: dt.datetime | None
    last_scan_at: dt.datetime | None
    done: int
    total: int

    @property
    def last_activity(self) -> dt.datetime | None:
        return max((t for t in (self.claimed_at, self.last_scan_at) if t is not None), default=None)

    def idle(self, now: dt.datetime) -> bool:
        return self.last_activity is not None and now - self.last_activity >= IDLE_LIST


@dataclass(frozen=True)
class Worker:
    code: str
    name: str
    role: str          # picker or packer: the work counted, not the login's role
    lines: int
    units: int
    first_at: dt.datetime
    last_at: dt.datetime
    per_hour: float


@dataclass(frozen=True)
class Snapshot:
    """A node's counts as read at `at` (not part of equality: an unchanged
    snapshot read again compares equal)."""

    node_id: int
    stages: tuple[Stage, ...]
    promises: tuple[Promise, ...]
    late: int
    near: int
    holds: tuple[Held, ...]
    held: int
    lists: tuple[ListInProgress, ...]
    open_lists: int
    workers: tuple[Worker, ...]
    at: dt.datetime = field(compare=False)


@dataclass(frozen=True)
class ExceptionItem:
    seq: int
    at: dt.datetime
    type: str
    fulfilment: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class NodeView:
    """A node's dashboard as of outbox `seq`: the snapshot, and the node's
    exceptions with seq in (`recent_from`, `seq`], oldest first."""

    node_id: int
    seq: int
    snapshot: Snapshot
    recent: tuple[ExceptionItem, ...]
    recent_from: int
    # Bumped whenever what a dashboard shows changed (or was re-read for its ages).
    version: int = 0

    def exceptions_after(self, seq: int) -> tuple[ExceptionItem, ...] | None:
        """The exceptions after `seq`, or None when this view does not reach
        back that far (read them from the outbox instead)."""
        if seq < self.recent_from:
            return None
        return tuple(e for e in self.recent if e.seq > seq)


# --- the snapshot --------------------------------------------------------------------------

def shift_start(now: dt.datetime, hours: float) -> dt.datetime:
    """A shift is as long as a handheld login lasts."""
    return now - dt.timedelta(hours=hours)


def day_start(now: dt.datetime) -> dt.datetime:
    local = now.astimezone(clock.zone())
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.timezone.utc)


def snapshot(session: Session, node_id: int, *, shift_hours: float, now: dt.datetime | None = None) -> Snapshot:
    now = now or utcnow()
    since = shift_start(now, shift_hours)
    promises, late, near = _promises(session, node_id, now)
    holds, held = _holds(session, node_id, now)
    lists, open_lists = _lists(session, node_id)
    return Snapshot(node_id=node_id, stages=_stages(session, node_id, now), promises=promises, late=late,
                    near=near, holds=holds, held=held, lists=lists, open_lists=open_lists,
                    workers=_workers(session, node_id, since, now), at=now)


def _stages(session: Session, node_id: int, now: dt.datetime) -> tuple[Stage, ...]:
    """One query: each queued status's count and its oldest fulfilment; one
    more for what shipped today."""
    queued = [status for _, status in STAGES if status not in (None, S.awaiting_stock)]
    ranked = (select(Fulfilment.status, Fulfilment.ref, Fulfilment.updated_at, Order.promised_by,
                     func.count().over(partition_by=Fulfilment.status).label("n"),
                     func.row_number().over(partition_by=Fulfilment.status,
                                            order_by=(Fulfilment.updated_at, Fulfilment.id)).label("rank"))
              .join(Order, Order.id == Fulfilment.order_id)
              .where(or_(and_(Fulfilment.node_id == node_id, Fulfilment.status.in_(queued)),
                         Fulfilment.status == S.awaiting_stock))
              .subquery())
    found = {row.status: row for row in session.execute(select(ranked).where(ranked.c.rank == 1))}
    shipped = session.scalar(select(func.count()).select_from(Fulfilment).where(
        Fulfilment.node_id == node_id, Fulfilment.shipped_at >= day_start(now))) or 0
    stages = []
    for key, status in STAGES:
        if status is None:
            stages.append(Stage(key, shipped))
            continue
        row = found.get(status)
        stages.append(Stage(key, row.n, Oldest(row.ref, row.updated_at, row.promised_by)) if row else Stage(key, 0))
    return tuple(stages)


def _promises(session: Session, node_id: int, now: dt.datetime) -> tuple[tuple[Promise, ...], int, int]:
    """Unshipped fulfilments due within NEAR_PROMISE or late, soonest first,
    and how many are late and near in all."""
    late = case((Order.promised_by < now, 1), else_=0)
    rows = session.execute(
        select(Fulfilment.ref, Fulfilment.status, Order.promised_by, ~not_held(now=now),
               func.count().over().label("total"), func.sum(late).over().label("late"))
        .join(Order, Order.id == Fulfilment.order_id)
        .where(Fulfilment.node_id == node_id, Fulfilment.status.in_(UNSHIPPED_AT_NODE),
               Order.promised_by.is_not(None), Order.promised_by < now + NEAR_PROMISE)
        .order_by(Order.promised_by, Fulfilment.id).limit(SHOWN)).all()
    if not rows:
        return (), 0, 0
    total, n_late = rows[0].total, int(rows[0].late or 0)
    return (tuple(Promise(r.ref, r.status.value, r.promised_by, r.promised_by < now, bool(r[3])) for r in rows),
            n_late, total - n_late)


def _holds(session: Session, node_id: int, now: dt.datetime) -> tuple[tuple[Held, ...], int]:
    """Active holds on the node's unshipped fulfilments, oldest first, and how
    many fulfilments are held."""
    # Active as app.fulfilment.hold has it: not released, `until` not passed.
    where = (Fulfilment.node_id == node_id, Fulfilment.status.in_(UNSHIPPED_AT_NODE),
             FulfilmentHold.released_at.is_(None), or_(FulfilmentHold.until.is_(None), FulfilmentHold.until > now))
    rows = session.execute(
        select(Fulfilment.ref, Fulfilment.status, FulfilmentHold.reason, FulfilmentHold.placed_by,
               FulfilmentHold.placed_at, FulfilmentHold.until)
        .join(FulfilmentHold, FulfilmentHold.fulfilment_id == Fulfilment.id)
        .where(*where).order_by(FulfilmentHold.placed_at, FulfilmentHold.id).limit(SHOWN)).all()
    held = session.scalar(select(func.count(func.distinct(Fulfilment.id)))
                          .join(FulfilmentHold, FulfilmentHold.fulfilment_id == Fulfilment.id)
                          .where(*where)) if rows else 0
    return tuple(Held(r.ref, r.status.value, r.reason, r.placed_by, r.placed_at, r.until) for r in rows), held or 0


def _lists(session: Session, node_id: int) -> tuple[tuple[ListInProgress, ...], int]:
    """Lists being picked, oldest claim first, with progress and last scan;
    and how many wait for a picker."""
    counted = or_(PickLine.quantity > 0, PickLine.short > 0)
    done = (select(func.count()).where(PickLine.pick_list_id == PickList.id, counted,
                                       PickLine.step == PickStep.done).correlate(PickList).scalar_subquery())
    total = select(func.count()).where(PickLine.pick_list_id == PickList.id, counted).correlate(PickList)
    last_scan = (select(func.max(ScanRecord.at)).where(ScanRecord.pick_list_id == PickList.id)
                 .correlate(PickList).scalar_subquery())
    rows = session.execute(
        select(PickList.ref, PickList.state, User.code, User.name, PickList.claimed_at, last_scan.label("last"),
               done.label("done"), total.scalar_subquery().label("total"))
        .outerjoin(User, User.id == PickList.picker_id)
        .where(PickList.node_id == node_id, PickList.state.in_((PickListState.picking, PickListState.open)))
        .order_by(PickList.claimed_at, PickList.id)).all()
    lists = tuple(ListInProgress(r.ref, r.code or "", r.name or "", r.claimed_at, r.last, r.done or 0, r.total or 0)
                  for r in rows if r.state == PickListState.picking)
    return lists, sum(1 for r in rows if r.state == PickListState.open)


def _workers(session: Session, node_id: int, since: dt.datetime, now: dt.datetime) -> tuple[Worker, ...]:
    """Pickers: lines put into their tote (the line's last scan, carrying its
    units). Packers: lines (SKUs) in the parcels they closed. Since `since`."""
    picked = session.execute(
        select(User.code, User.name, func.count(), func.coalesce(func.sum(ScanRecord.quantity), 0),
               func.min(ScanRecord.at), func.max(ScanRecord.at))
        .join(User, User.id == ScanRecord.user_id)
        .where(User.node_id == node_id, ScanRecord.work == "pick", ScanRecord.action == "tote",
               ScanRecord.pick_line_id.is_not(None), ScanRecord.at >= since)
        .group_by(User.code, User.name)).all()
    packed = session.execute(
        select(User.code, User.name, func.count(ParcelItem.id), func.coalesce(func.sum(ParcelItem.quantity), 0),
               func.min(Parcel.packed_at), func.max(Parcel.packed_at))
        .join(Parcel, Parcel.id == ParcelItem.parcel_id)
        .join(Fulfilment, Fulfilment.id == Parcel.fulfilment_id)
        .join(User, User.id == Parcel.packed_by_id)
        .where(Fulfilment.node_id == node_id, Parcel.packed_at >= since)
        .group_by(User.code, User.name)).all()
    workers = []
    for role, rows in (("picker", picked), ("packer", packed)):
        for code, name, lines, units, first, last in rows:
            span = max(now - first, MIN_RATE_SPAN).total_seconds() / 3600
            workers.append(Worker(code, name, role, lines, int(units), first, last, round(lines / span, 1)))
    return tuple(sorted(workers, key=lambda w: (w.role, -w.per_hour, w.code)))


# --- exceptions from the outbox --------------------------------------------------------------

def _exception_filter(node_id: int):
    reason = func.coalesce(Event.data["reason"].as_string(), "")
    return and_(Event.node_id == node_id, Event.type.in_(EXCEPTION_TYPES),
                or_(Event.type != "fulfilment.redispatched", reason != "short_pick"))


def exceptions(session: Session, node_id: int, *, upto: int, after: int = 0, since: dt.datetime | None = None,
               limit: int = RECENT_EXCEPTIONS) -> tuple[ExceptionItem, ...]:
    """The node's exceptions with seq in (`after`, `upto`] (and at or after
    `since`), the newest `limit` of them, oldest first."""
    query = (select(Event.seq, Event.at, Event.type, Fulfilment.ref, Event.data)
             .outerjoin(Fulfilment, Fulfilment.id == Event.fulfilment_id)
             .where(Event.seq > after, Event.seq <= upto, _exception_filter(node_id)))
    if since is not None:
        query = query.where(Event.at >= since)
    rows = session.execute(query.order_by(Event.seq.desc()).limit(limit)).all()
    return tuple(ExceptionItem(r.seq, r.at, r.type, r.ref, r.data or {}) for r in reversed(rows))


def touched(session: Session, node_id: int, after: int, upto: int) -> bool:
    """Did an event of this node, or one of no node (orders, awaiting stock),
    commit with seq in (`after`, `upto`]?"""
    if upto <= after:
        return False
    return bool(session.scalar(select(exists().where(
        Event.seq > after, Event.seq <= upto, or_(Event.node_id == node_id, Event.node_id.is_(None))))))


def view(session: Session, node_id: int, seq: int, *, shift_hours: float) -> NodeView:
    """A node's dashboard as of `seq` (read after `seq` committed)."""
    return NodeView(node_id, seq, snapshot(session, node_id, shift_hours=shift_hours), (), seq)


def advance(session: Session, previous: NodeView, seq: int, *, shift_hours: float, refresh: bool = False
            ) -> NodeView:
    """`previous` moved on to `seq`: counts re-read when the node was touched
    (or `refresh`, for the ages), new exceptions appended to the recent ones."""
    node_id = previous.node_id
    if seq <= previous.seq and not refresh:
        return previous
    changed = touched(session, node_id, previous.seq, seq)
    if not changed and not refresh:
        return NodeView(node_id, seq, previous.snapshot, previous.recent, previous.recent_from, previous.version)
    new = exceptions(session, node_id, after=previous.seq, upto=seq) if changed else ()
    recent, recent_from = previous.recent + new, previous.recent_from
    if len(new) == RECENT_EXCEPTIONS:  # perhaps more than fit: the recent ones start at the first kept
        recent, recent_from = new, new[0].seq - 1
    if len(recent) > RECENT_EXCEPTIONS:
        dropped = recent[:-RECENT_EXCEPTIONS]
        recent, recent_from = recent[-RECENT_EXCEPTIONS:], dropped[-1].seq
    snap = snapshot(session, node_id, shift_hours=shift_hours) if changed or refresh else previous.snapshot
    bump = refresh or bool(new) or snap != previous.snapshot
    return NodeView(node_id, seq, snap, recent, recent_from, previous.version + (1 if bump else 0))


# --- one fulfilment, for the lead ----------------------------------------------------------

@dataclass
class Detail:
    fulfilment: Fulfilment
    ancestors: list[Fulfilment]        # where its lines came from, nearest first
    descendants: list[tuple[int, Fulfilment]]  # (depth, fulfilment): where its lines went
    holds: list[FulfilmentHold]
    events: list[Event]
    pick_list: PickList | None


def find(session: Session, text: str, scope: NodeScope) -> Fulfilment | None:
    """A fulfilment in `scope` by its ref, or the first live one there of an
    order by the channel's order id."""
    text = (text or "").strip()
    if not text:
        return None
    f = session.scalar(select(Fulfilment).where(func.upper(Fulfilment.ref) == text.upper(),
                                                scope.where(Fulfilment.node_id)))
    if f is not None:
        return f
    return session.scalar(select(Fulfilment).join(Order, Order.id == Fulfilment.order_id)
                          .where(Order.external_id == text, scope.where(Fulfilment.node_id))
                          .order_by(Fulfilment.status.in_((S.cancelled, S.redispatched)), Fulfilment.id).limit(1))


def detail(session: Session, ref: str, scope: NodeScope) -> Detail | None:
    """A fulfilment in `scope` with its order, lines, dispatch reason,
    lineage (both ways), holds, latest events and pick list. None when it
    is not there or another node's."""
    f = session.scalar(select(Fulfilment).where(Fulfilment.ref == ref, scope.where(Fulfilment.node_id)).options(
        selectinload(Fulfilment.order), selectinload(Fulfilment.node),
        selectinload(Fulfilment.lines).selectinload(FulfilmentLine.sku)))
    if f is None:
        return None
    ancestors, seen = [], {f.id}
    parent = f.redispatched_from
    while parent is not None and parent.id not in seen:
        ancestors.append(parent)
        seen.add(parent.id)
        parent = parent.redispatched_from
    descendants: list[tuple[int, Fulfilment]] = []
    level, depth = [f.id], 1
    while level and depth <= 10:
        children = list(session.scalars(select(Fulfilment).where(Fulfilment.redispatched_from_id.in_(level))
                                        .options(selectinload(Fulfilment.node)).order_by(Fulfilment.id)))
        children = [c for c in children if c.id not in seen]
        seen.update(c.id for c in children)
        descendants.extend((depth, c) for c in children)
        level, depth = [c.id for c in children], depth + 1
    holds = list(session.scalars(select(FulfilmentHold).where(FulfilmentHold.fulfilment_id == f.id)
                                 .order_by(FulfilmentHold.id.desc())))
    evs = list(session.scalars(select(Event).where(Event.fulfilment_id == f.id).order_by(Event.seq.desc()).limit(30)))
    pl = session.scalar(select(PickList).join(PickListFulfilment, PickListFulfilment.pick_list_id == PickList.id)
                        .where(PickListFulfilment.fulfilment_id == f.id).options(selectinload(PickList.picker)))
    return Detail(f, ancestors, descendants, holds, evs, pl)


def nodes(session: Session) -> list[Node]:
    return list(session.scalars(select(Node).where(Node.active.is_(True)).order_by(Node.code)))


def may_act(user: User, f: Fulfilment) -> bool:
    """A lead acts on the fulfilments of their node; an admin on any."""
    return NodeScope.of(user).covers(f.node_id)

