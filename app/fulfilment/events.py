"""The outbox: events are appended in the transaction that made the change.

`record()` only queues the event on the session. Just before commit the queue
takes its `seq` numbers from the single counter row: that update holds the
row lock until commit, so transactions publish their seqs in commit order and
a reader polling `after=<seq>` can never skip one that commits later.
Subscribers (the live hub, webhooks) hear about new seqs after commit.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, event as sa_event, insert, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from app.models import Event, EventCounter, Fulfilment, Node, Order, Sku, utcnow

_PENDING = "luyue_pending_events"
_COMMITTED = "luyue_committed_seqs"
_MARKS = "luyue_savepoint_marks"
_SKU_CODES = "luyue_event_sku_codes"

# Events about a fulfilment that carry its state (node, status, lines), so a
# client applies them without reading the order (docs/events.md).
STATE_EVENTS = ("fulfilment.", "pick.short")

# Called after commit with (first_seq, last_seq); must not raise or block long.
subscribers: list[Callable[[int, int], None]] = []
# PostgreSQL: other processes hear of new events on this channel (app.live).
NOTIFY_CHANNEL = "luyue_events"


def record(session: Session, type: str, *, order: Order | None = None, fulfilment: Fulfilment | None = None,
           node: Node | None = None, data: dict[str, Any] | None = None) -> None:
    if fulfilment is not None and order is None:
        order = fulfilment.order
    if fulfilment is not None and node is None:
        node = fulfilment.node
    session.info.setdefault(_PENDING, []).append((type, order, fulfilment, node, data or {}))


def name_skus(session: Session, codes: dict[int, str]) -> None:
    """SKU codes (id -> code) this transaction knows already: the events'
    lines are named without reading them again (intake's new order)."""
    session.info.setdefault(_SKU_CODES, {}).update(codes)


def assign_seqs(session: Session) -> list[dict[str, Any]]:
    """Give the queued events their seqs now, rather than at commit, and return
    them (seq, at, type, ids, data): for an answer that names them without
    reading them back. The counter row stays locked until commit, so call
    this as the transaction's last work."""
    return _allocate(session)


def _allocate(session: Session) -> list[dict[str, Any]]:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return []
    session.flush()  # ids for the orders and fulfilments the events name
    n = len(pending)
    last = session.execute(_TAKE_SEQS, {"n": n}).scalar_one()
    first = last - n + 1
    now = utcnow()
    states = _states(session, [p[2] for p in pending if p[2] is not None and p[0].startswith(STATE_EVENTS)])
    rows = []
    for i, (type_, order, fulfilment, node, data) in enumerate(pending):
        if fulfilment is not None and type_.startswith(STATE_EVENTS):
            data = {**data, **states[fulfilment]}
        rows.append({
            "seq": first + i, "at": now, "type": type_,
            "channel_id": order.channel_id if order is not None else None,
            "order_id": order.id if order is not None else None,
            "fulfilment_id": fulfilment.id if fulfilment is not None else None,
            "node_id": node.id if node is not None else (fulfilment.node_id if fulfilment is not None else None),
            "data": data,
        })
    session.execute(_INSERT_EVENTS, rows)
    if session.get_bind().dialect.name == "postgresql":
        # Delivered at commit, when the rows become visible, never before.
        session.execute(_NOTIFY, {"channel": NOTIFY_CHANNEL, "seq": str(last)})
    earlier = session.info.get(_COMMITTED)
    session.info[_COMMITTED] = (earlier[0], last) if earlier else (first, last)
    return rows


def _states(session: Session, fulfilments: list[Fulfilment]) -> dict[Fulfilment, dict[str, Any]]:
    """Each fulfilment's node, status and lines as the order document shows
    them, taken at commit: every event of a transaction says where it left
    the fulfilment, even a change made after the event was recorded. Codes
    come from what the session holds; the rest in one query per kind."""
    unique = list(dict.fromkeys(fulfilments))
    if not unique:
        return {}
    # A line's SKU only if loaded already (reading it would be a query per line).
    lines = {f: [(line.sku_id, line.quantity, line.__dict__.get("sku")) for line in f.lines if line.quantity > 0]
             for f in unique}
    skus = _codes(session, Sku, {s.id: s.code for ls in lines.values() for _, _, s in ls if s is not None}
                  | session.info.get(_SKU_CODES, {}), {sku_id for ls in lines.values() for sku_id, _, _ in ls})
    from app.fulfilment.dispatch import nodes_seen  # dispatch records events: imported when needed
    nodes = _codes(session, Node, nodes_seen(session), {f.node_id for f in unique if f.node_id is not None})
    return {f: {"node": nodes[f.node_id] if f.node_id is not None else None, "status": f.status.value,
                "lines": [{"sku": skus[sku_id], "quantity": q} for sku_id, q, _ in lines[f]]}
            for f in unique}


def _codes(session: Session, model, known: dict[int, str], wanted: set[int]) -> dict[int, str]:
    """id -> code of `wanted` rows of `model` (Sku or Node): `known`, then the
    session's loaded objects, then one query for the rest."""
    codes = {i: known[i] for i in wanted if i in known}
    for i in wanted - codes.keys():
        loaded = session.identity_map.get(identity_key(model, i))
        if loaded is not None and "code" in loaded.__dict__:  # not expired: no query
            codes[i] = loaded.code
    if missing := wanted - codes.keys():
        codes.update(session.execute(select(model.id, model.code).where(model.id.in_(missing))).all())
    return codes


# Built once: every transaction with events runs them.
_TAKE_SEQS = (update(EventCounter).where(EventCounter.id == 1)
              .values(last_seq=EventCounter.last_seq + bindparam("n")).returning(EventCounter.last_seq))
_INSERT_EVENTS = insert(Event.__table__)
_NOTIFY = text("SELECT pg_notify(:channel, :seq)")


@sa_event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if not session.in_nested_transaction():  # a savepoint's release is not the commit
        _allocate(session)


@sa_event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    savepoint = session.get_nested_transaction()
    if savepoint is not None:  # a savepoint released: its events stay queued
        session.info.get(_MARKS, {}).pop(savepoint, None)
        return
    session.info.pop(_MARKS, None)
    span = session.info.pop(_COMMITTED, None)
    if span is None:
        return
    for subscriber in list(subscribers):
        try:
            subscriber(*span)
        except Exception:  # a listener must never undo or fail a committed change
            import logging
            logging.getLogger(__name__).exception("event subscriber failed")


@sa_event.listens_for(Session, "after_transaction_create")
def _after_transaction_create(session: Session, transaction) -> None:
    if transaction.nested:  # a savepoint: remember how many events came before it
        session.info.setdefault(_MARKS, {})[transaction] = len(session.info.get(_PENDING, ()))


@sa_event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    savepoint = session.get_nested_transaction()
    if savepoint is not None:
        # Only the savepoint's own events go; the transaction carries on.
        mark = session.info.get(_MARKS, {}).pop(savepoint, 0)
        del session.info.get(_PENDING, [])[mark:]
        return
    session.info.pop(_PENDING, None)
    session.info.pop(_COMMITTED, None)
    session.info.pop(_MARKS, None)


def last_seq(session: Session) -> int:
    return session.execute(select(EventCounter.last_seq).where(EventCounter.id == 1)).scalar_one()
