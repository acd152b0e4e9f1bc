"""Reservation and dispatch rules on a real database (SQLite, and PostgreSQL
when configured), through the domain functions the API calls."""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import func, select

from app.access import channel_named
from app.fulfilment import cancel, clock, dispatch, events, intake, redispatch, reserve
from app.fulfilment.dispatch import Assignment, Candidate, Plan
from app.models import Event, Fulfilment, FulfilmentStatus, Node, NodeDay, Order, Sku, Stock, utcnow
from support import (
    PLACES,
    check_invariants,
    order_body,
    ship_to,
    stock_of,
    world,
)


def submit(db, body: dict) -> list[dict]:
    """Take the order through intake; returns its fulfilments as plain data."""
    def work(session):
        order, _ = intake.submit(session, channel_named(session, "shop"), json.dumps(body).encode())
        return order.id
    db.run(work)
    return fulfilments(db, body["external_id"])


def fulfilments(db, external_id: str) -> list[dict]:
    with db.reading() as s:
        order = s.scalar(select(Order).where(Order.external_id == external_id))
        return [{"ref": f.ref, "node": f.node.code if f.node else None, "status": f.status.value,
                 "lines": {line.sku.code: line.quantity for line in f.lines}, "delivery": f.delivery.value,
                 "reason": f.dispatch_reason, "release_at": f.release_at, "order_status": order.status.value}
                for f in order.fulfilments]


def where(fs: list[dict]) -> list[tuple[str | None, str, dict[str, int]]]:
    """(node, status, {sku: qty}) per fulfilment."""
    return [(f["node"], f["status"], f["lines"]) for f in fs]


# --- holding stock and capacity ----------------------------------------------------------

def test_holding_a_plan_takes_every_stock_row_and_node_day_or_none(db):
    world(db, {"SH-PD": {"SKU-A": 3}, "SH-JD": {"SKU-A": 1}})
    with db.reading() as s:
        rows = {code: (node_id, stock_id, sku_id) for code, node_id, stock_id, sku_id in s.execute(
            select(Node.code, Node.id, Stock.id, Stock.sku_id).join(Stock, Stock.node_id == Node.id))}

    def plan(pd_units: int, jd_units: int) -> Plan:
        return Plan("fewest_nodes", [
            Assignment(Candidate(rows[code][0], code, 1.0, "coordinates", 10, {rows[code][2]: (rows[code][1], 9)}),
                       {rows[code][2]: units}) for code, units in (("SH-PD", pd_units), ("SH-JD", jd_units))], {})

    with db.transaction() as s:
        assert not dispatch._hold(s, plan(2, 2))  # SH-JD has one unit: nothing is held
    assert (stock_of(db, "SH-PD", "SKU-A"), stock_of(db, "SH-JD", "SKU-A")) == ((3, 0), (1, 0))
    with db.reading() as s:
        assert s.scalar(select(func.sum(NodeDay.booked))) in (None, 0)
    with db.transaction() as s:
        assert dispatch._hold(s, plan(3, 1))
    assert (stock_of(db, "SH-PD", "SKU-A"), stock_of(db, "SH-JD", "SKU-A")) == ((3, 3), (1, 1))
    with db.reading() as s:
        assert s.scalar(select(func.sum(NodeDay.booked))) == 2


def test_a_node_day_never_books_past_its_capacity(db):
    world(db, {"SH-PD": {}, "SH-JD": {}},
          nodes={"SH-PD": {**PLACES["SH-PD"], "daily_capacity": 2}, "SH-JD": {**PLACES["SH-JD"], "daily_capacity": 1}})
    with db.reading() as s:
        pd, jd = (s.scalar(select(Node.id).where(Node.code == c)) for c in ("SH-PD", "SH-JD"))
    day = dt.date(2026, 11, 24)
    with db.transaction() as s:
        assert reserve.book_capacity(s, [pd, jd], day)
        assert reserve.book_capacity(s, [pd], day)
        assert not reserve.book_capacity(s, [pd], day)
        assert not reserve.book_capacity(s, [jd], day)
        assert reserve.book_capacity(s, [pd, jd], day + dt.timedelta(days=1))  # a new day
    with db.reading() as s:
        booked = {(n, d): b for n, d, b in s.execute(select(NodeDay.node_id, NodeDay.day, NodeDay.booked))}
    tomorrow = day + dt.timedelta(days=1)
    assert booked == {(pd, day): 2, (jd, day): 1, (pd, tomorrow): 1, (jd, tomorrow): 1}


def test_a_node_with_no_capacity_is_never_booked_not_even_its_first(db):
    world(db, {"SH-PD": {}, "SH-JD": {}},
          nodes={"SH-PD": {**PLACES["SH-PD"], "daily_capacity": 0}, "SH-JD": {**PLACES["SH-JD"], "daily_capacity": 3}})
    with db.reading() as s:
        pd, jd = (s.scalar(select(Node.id).where(Node.code == c)) for c in ("SH-PD", "SH-JD"))
    with db.transaction() as s:
        assert not reserve.book_capacity(s, [pd], dt.date(2026, 11, 24))
        assert not reserve.book_capacity(s, [jd, pd], dt.date(2026, 11, 24))  # JD booked, PD refused: the caller rolls back
    with db.reading() as s:
        assert (s.scalar(select(NodeDay.booked).where(NodeDay.node_id == pd)) or 0) == 0


def test_a_node_whose_capacity_is_used_up_today_is_skipped(db):
    world(db, {"SH-STORE": {"SKU-A": 10}, "SH-JD": {"SKU-A": 10}},
          nodes={"SH-STORE": {**PLACES["SH-STORE"], "daily_capacity": 1}, "SH-JD": PLACES["SH-JD"]})
    first = submit(db, order_body("O-1", [("SKU-A", 1)]))
    second = submit(db, order_body("O-2", [("SKU-A", 1)]))
    assert where(first) == [("SH-STORE", "reserved", {"SKU-A": 1})]
    assert where(second) == [("SH-JD", "reserved", {"SKU-A": 1})]
    assert {c["node"]: c["capacity_left"] for c in second[0]["reason"]["candidates"]}["SH-STORE"] == 0
    check_invariants(db)


# --- split and dispatch through intake -------------------------------------------------

def test_an_order_one_node_can_ship_goes_whole_to_the_nearest_such_node(db):
    world(db, {"SH-STORE": {"SKU-A": 5}, "SH-PD": {"SKU-A": 5, "SKU-B": 5}, "HZ-XS": {"SKU-A": 5, "SKU-B": 5}})
    order = submit(db, order_body("O-1", [("SKU-A", 2), ("SKU-B", 1)]))
    assert where(order) == [("SH-PD", "reserved", {"SKU-A": 2, "SKU-B": 1})]
    reason = order[0]["reason"]
    assert reason["rule"] == "single_node" and reason["chosen"] == "SH-PD"
    assert {c["node"] for c in reason["candidates"]} == {"SH-STORE", "SH-PD", "HZ-XS"}
    assert stock_of(db, "SH-PD", "SKU-A") == (5, 2)
    check_invariants(db)


def test_an_order_no_node_can_ship_alone_is_split_across_the_fewest_nodes(db):
    world(db, {"SH-STORE": {"SKU-A": 1}, "SH-PD": {"SKU-B": 1}, "SH-JD": {"SKU-C": 1},
               "HZ-XS": {"SKU-A": 1, "SKU-B": 1}})
    order = submit(db, order_body("O-1", [("SKU-A", 1), ("SKU-B", 1), ("SKU-C", 1)]))
    assert sorted(where(order)) == [("HZ-XS", "reserved", {"SKU-A": 1, "SKU-B": 1}),
                                    ("SH-JD", "reserved", {"SKU-C": 1})]
    assert order[0]["order_status"] == "in_fulfilment"
    check_invariants(db)


def test_what_no_node_has_waits_for_stock_in_its_own_fulfilment(db):
    world(db, {"SH-PD": {"SKU-A": 1}}, skus=["SKU-B"])
    order = submit(db, order_body("O-1", [("SKU-A", 3), ("SKU-B", 1)]))
    assert where(order) == [("SH-PD", "reserved", {"SKU-A": 1}),
                            (None, "awaiting_stock", {"SKU-A": 2, "SKU-B": 1})]
    check_invariants(db)


def test_duplicate_sku_lines_are_reserved_as_one_line(db):
    world(db, {"SH-PD": {"SKU-A": 5}})
    order = submit(db, order_body("O-1", [("SKU-A", 1), ("SKU-A", 2)]))
    assert where(order) == [("SH-PD", "reserved", {"SKU-A": 3})]
    assert stock_of(db, "SH-PD", "SKU-A") == (5, 3)
    check_invariants(db)


def test_presale_lines_get_their_own_fulfilment_awaiting_release(db):
    world(db, {"SH-PD": {"SKU-A": 5, "SKU-P": 5}})
    release = (utcnow() + dt.timedelta(days=7)).replace(microsecond=0)
    order = submit(db, order_body("O-1", [("SKU-A", 1),
                                          {"sku": "SKU-P", "quantity": 2, "presale_release_at": release.isoformat()}]))
    assert where(order) == [("SH-PD", "reserved", {"SKU-A": 1}), (None, "awaiting_release", {"SKU-P": 2})]
    assert order[1]["release_at"] == release
    assert stock_of(db, "SH-PD", "SKU-P") == (5, 0)  # nothing held before the release
    check_invariants(db)

    with db.transaction() as s:
        assert intake.release_due(s, now=release - dt.timedelta(seconds=1)) == 0
    with db.transaction() as s:
        assert intake.release_due(s, now=release) == 1
    with db.reading() as s:
        f = s.scalar(select(Fulfilment).where(Fulfilment.ref == order[1]["ref"]))
        assert (f.status, f.node.code) == (FulfilmentStatus.reserved, "SH-PD")
        assert f.dispatch_reason["released_presale"] is True
    assert stock_of(db, "SH-PD", "SKU-P") == (5, 2)
    check_invariants(db)


def test_an_order_of_presale_lines_only_is_received_not_in_fulfilment(db):
    world(db, {"SH-PD": {"SKU-P": 5}})
    release = utcnow() + dt.timedelta(days=1)
    order = submit(db, order_body("O-1", [{"sku": "SKU-P", "quantity": 1, "presale_release_at": release.isoformat()}]))
    assert order[0]["order_status"] == "received"


# --- same-city delivery ---------------------------------------------------------------

def test_same_city_goes_only_to_a_node_whose_radius_covers_the_address(db):
    world(db, {"SH-PD": {"SKU-A": 5}, "SH-JD": {"SKU-A": 5}, "SH-STORE": {"SKU-A": 1}}, nodes={
        "SH-PD": {**PLACES["SH-PD"], "same_city_radius_km": 0},          # near, but no riders
        "SH-JD": {**PLACES["SH-JD"], "same_city_radius_km": 10},         # riders, but ~30 km away
        "SH-STORE": {**PLACES["SH-STORE"], "kind": "store", "same_city_radius_km": 5},
    })
    first = submit(db, order_body("O-1", [("SKU-A", 1)], delivery="same_city"))
    assert where(first) == [("SH-STORE", "reserved", {"SKU-A": 1})]
    assert first[0]["delivery"] == "same_city"
    # The store is empty now; the others are out of reach, so it waits.
    second = submit(db, order_body("O-2", [("SKU-A", 1)], delivery="same_city"))
    assert where(second) == [(None, "awaiting_stock", {"SKU-A": 1})]
    # An express order may still go anywhere.
    third = submit(db, order_body("O-3", [("SKU-A", 1)]))
    assert where(third) == [("SH-PD", "reserved", {"SKU-A": 1})]
    check_invariants(db)


def test_same_city_without_coordinates_goes_to_a_rider_node_in_the_same_city(db):
    world(db, {"HZ-XS": {"SKU-A": 5}, "SH-PD": {"SKU-A": 5}, "SH-STORE": {"SKU-A": 5}}, nodes={
        "HZ-XS": {**PLACES["HZ-XS"], "same_city_radius_km": 500},  # its radius reaches, its city does not
        "SH-PD": {**PLACES["SH-PD"], "same_city_radius_km": 0},
        "SH-STORE": {**PLACES["SH-STORE"], "same_city_radius_km": 3},
    })
    order = submit(db, order_body("O-1", [("SKU-A", 1)], delivery="same_city",
                                  address=ship_to(lat=None, lon=None)))
    assert where(order) == [("SH-STORE", "reserved", {"SKU-A": 1})]
    assert order[0]["reason"]["candidates"][0]["basis"] == "city"


def test_express_without_coordinates_prefers_the_same_city_then_province(db):
    world(db, {"HZ-XS": {"SKU-A": 5}, "SH-PD": {"SKU-A": 5}},
          nodes={"HZ-XS": PLACES["HZ-XS"], "SH-PD": {"province": "上海市", "city": "上海市"}})
    order = submit(db, order_body("O-1", [("SKU-A", 1)], address=ship_to(lat=None, lon=None)))
    assert where(order) == [("SH-PD", "reserved", {"SKU-A": 1})]


def test_an_inactive_node_gets_nothing(db):
    world(db, {"SH-PD": {"SKU-A": 5}, "HZ-XS": {"SKU-A": 5}},
          nodes={"SH-PD": {**PLACES["SH-PD"], "active": False}, "HZ-XS": PLACES["HZ-XS"]})
    assert where(submit(db, order_body("O-1", [("SKU-A", 1)]))) == [("HZ-XS", "reserved", {"SKU-A": 1})]


# --- release, re-dispatch -------------------------------------------------------------

def test_cancel_gives_back_every_unit_held(db):
    world(db, {"SH-PD": {"SKU-A": 5, "SKU-B": 2}})
    submit(db, order_body("O-1", [("SKU-A", 2), ("SKU-B", 2)]))
    with db.transaction() as s:
        assert cancel.cancel(s, s.scalar(select(Order).where(Order.external_id == "O-1")))
    assert stock_of(db, "SH-PD", "SKU-A") == (5, 0)
    assert stock_of(db, "SH-PD", "SKU-B") == (2, 0)
    check_invariants(db)


def test_redispatch_moves_the_missing_units_and_never_back_to_a_node_that_failed(db):
    world(db, {"SH-PD": {"SKU-A": 5}, "SH-JD": {"SKU-A": 5}, "HZ-XS": {"SKU-A": 5}})
    order = submit(db, order_body("O-1", [("SKU-A", 3)]))
    assert where(order) == [("SH-PD", "reserved", {"SKU-A": 3})]
    with db.transaction() as s:
        f = s.scalar(select(Fulfilment).where(Fulfilment.ref == order[0]["ref"]))
        sku = s.scalar(select(Sku.id).where(Sku.code == "SKU-A"))
        moved = redispatch.redispatch(s, f, {sku: 1}, reason="short_pick")
        assert [(m.node.code, m.status) for m in moved] == [("SH-JD", FulfilmentStatus.reserved)]
        again = redispatch.redispatch(s, moved[0], None, reason="short_pick")
        # Neither SH-PD (the origin) nor SH-JD failed twice: on to Hangzhou.
        assert [(m.node.code, m.redispatched_from.ref) for m in again] == [("HZ-XS", moved[0].ref)]
    with db.reading() as s:
        refs = {f.ref: (f.node.code, f.status.value, f.lines[0].quantity)
                for f in s.scalar(select(Order).where(Order.external_id == "O-1")).fulfilments}
    assert sorted(refs.values()) == [("HZ-XS", "reserved", 1), ("SH-JD", "redispatched", 0), ("SH-PD", "reserved", 2)]
    assert stock_of(db, "SH-PD", "SKU-A") == (5, 2)
    assert stock_of(db, "SH-JD", "SKU-A") == (5, 0)
    assert stock_of(db, "HZ-XS", "SKU-A") == (5, 1)
    check_invariants(db)


def test_a_hold_lost_to_a_concurrent_order_keeps_the_events_already_recorded(db):
    """A lost race rolls back a savepoint, not the transaction: the events the
    transaction recorded before it (order.received...) must still be written."""
    world(db, {"SH-PD": {"SKU-A": 1}})
    with db.reading() as s:
        node_id, stock_id, sku_id = s.execute(select(Stock.node_id, Stock.id, Stock.sku_id)).one()
    candidate = Candidate(node_id, "SH-PD", 3.0, "coordinates", 10, {sku_id: (stock_id, 1)})
    with db.transaction() as s:
        node = s.get(Node, node_id)
        events.record(s, "node.updated", node=node)
        # A plan made on a stale snapshot: two units where one is left.
        assert not dispatch._hold(s, Plan("single_node", [Assignment(candidate, {sku_id: 2})], {}))
        events.record(s, "node.updated", node=node)
    with db.reading() as s:
        assert s.scalars(select(Event.type).order_by(Event.seq)).all()[-2:] == ["node.updated", "node.updated"]
        assert s.scalar(select(NodeDay.booked)) is None  # the capacity booked in the savepoint went back
    check_invariants(db)


def test_an_event_recorded_in_a_savepoint_that_rolls_back_is_not_written(db):
    world(db, {"SH-PD": {}})
    with db.transaction() as s:
        node = s.scalar(select(Node))
        events.record(s, "kept.before", node=node)
        outer = s.begin_nested()
        events.record(s, "kept.outer", node=node)
        inner = s.begin_nested()
        events.record(s, "dropped.inner", node=node)
        inner.rollback()
        outer.commit()
        events.record(s, "kept.after", node=node)
    with db.reading() as s:
        assert s.scalars(select(Event.type).order_by(Event.seq)).all()[-3:] == ["kept.before", "kept.outer",
                                                                               "kept.after"]
    check_invariants(db)


def test_business_day_turns_over_at_local_midnight():
    just_before = dt.datetime(2026, 11, 24, 15, 59, tzinfo=dt.timezone.utc)  # 23:59 in Shanghai
    assert clock.business_day(just_before) == dt.date(2026, 11, 24)
    assert clock.business_day(just_before + dt.timedelta(minutes=1)) == dt.date(2026, 11, 25)
