"""Two requests at one order or one parcel at the same moment, at the pack
bench, the dock, the rider's pickup, cancel, receipt and returns (issue 9,
items 1, 2 and 9c; the rules are in docs/transitions.md).

Each test runs ROUNDS races of two threads released together, each in its own
transaction without retries (racing.race), on SQLite and PostgreSQL. After
each round exactly one of them decided what happened, the other was told so
(a refusal from the catalogue, or "already counted" for the same scan id),
and the record agrees with itself: a shipped fulfilment's parcels left and
its reservations were consumed (on-hand lowered), a cancelled one's were
released and its labelled parcels intercepted; the feed never says
order.cancelled and then that something shipped."""
from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from app import access
from app.fulfilment import cancel, deliver, intake, orders, pack, reserve, returns, ride, ship, tracking
from app.models import (
    Barcode,
    Event,
    Fulfilment,
    FulfilmentStatus,
    Node,
    Order,
    OrderStatus,
    Parcel,
    ParcelStatus,
    ReservationState,
    Role,
    Sku,
    TrackingStatus,
    User,
    utcnow,
)
from racing import key, race
from support import PLACES, check_invariants, order_body, set_status, stock_of, world

ROUNDS = 24
STOCK = 500
PREFIX = "6901234"
GTIN = {"SKU-A": "6901234567892", "SKU-B": "6901234000016"}
PIN_HASH = generate_password_hash("1234", "pbkdf2:sha256:1000")
USERS = [("K001", "packer", "SH-PD"), ("K002", "packer", "SH-PD"), ("K003", "packer", "SH-STORE"),
         ("D001", "dock", "SH-PD"), ("D002", "dock", "SH-PD"), ("R001", "rider", "SH-STORE")]


@pytest.fixture
def floor(db):
    """SKU-A only at SH-PD (express), SKU-B only at the store (same-city),
    SKU-C only at HZ-XS; two packers and two dock handhelds at SH-PD, a
    packer and a rider at the store."""
    nodes = {"SH-PD": PLACES["SH-PD"], "HZ-XS": PLACES["HZ-XS"],
             "SH-STORE": {**PLACES["SH-STORE"], "kind": "store", "same_city_radius_km": 8}}
    world(db, {"SH-PD": {"SKU-A": STOCK}, "SH-STORE": {"SKU-B": STOCK}, "HZ-XS": {"SKU-C": STOCK}}, nodes=nodes)
    with db.transaction() as s:
        for sku, code in GTIN.items():
            s.add(Barcode(code=code, sku_id=s.scalar(select(Sku.id).where(Sku.code == sku))))
        node_ids = {n.code: n.id for n in s.scalars(select(Node))}
        for code, role, node in USERS:
            s.add(User(code=code, name=code, role=Role(role), node_id=node_ids[node], pin_hash=PIN_HASH,
                       language="zh"))
    return db


# --- getting an order to the moment of the race ------------------------------------------

def user(s, code: str) -> User:
    return s.scalar(select(User).where(User.code == code))


def node(s, code: str) -> Node:
    return s.scalar(select(Node).where(Node.code == code))


def order_of(s, external_id: str) -> Order:
    return s.scalar(select(Order).where(Order.external_id == external_id))


def submit(db, external_id: str, lines, delivery: str = "express") -> None:
    with db.transaction() as s:
        intake.submit(s, access.channel_named(s, "shop"),
                      json.dumps(order_body(external_id, lines, delivery=delivery)).encode())


def picked(db, external_id: str, sku: str = "SKU-A", delivery: str = "express") -> str:
    """One unit of `sku`, picked (stand-in); the fulfilment's ref."""
    submit(db, external_id, [(sku, 1)], delivery)
    set_status(db, external_id, FulfilmentStatus.picked)
    with db.reading() as s:
        return order_of(s, external_id).fulfilments[0].ref


def in_parcel(db, external_id: str, sku: str = "SKU-A", delivery: str = "express") -> str:
    """Picked, and its one unit scanned into the open parcel; the fulfilment's ref."""
    ref = picked(db, external_id, sku, delivery)
    with db.transaction() as s:
        pack.scan_item(s, order_of(s, external_id).fulfilments[0], GTIN[sku])
    return ref


def packed(db, external_id: str, sku: str = "SKU-A", delivery: str = "express") -> str:
    """Packed in one labelled parcel; its tracking number."""
    in_parcel(db, external_id, sku, delivery)
    with db.transaction() as s:
        f = order_of(s, external_id).fulfilments[0]
        packer = "K003" if delivery == "same_city" else "K001"
        return pack.close_parcel(s, f, 500, user(s, packer), PREFIX).tracking_number


# --- what must hold after every round ------------------------------------------------------

def check_record(db, external_id: str) -> None:
    """The order's fulfilments, parcels, reservations and feed agree."""
    with db.reading() as s:
        order = order_of(s, external_id)
        for f in order.fulfilments:
            states = {r.state for line in f.lines for r in line.reservations}
            labelled = [p for p in f.parcels if p.tracking_number]
            if f.status in orders.SHIPPED_OR_LATER:
                assert states == {ReservationState.consumed}, (f.ref, f.status, states)
                assert all(p.shipped_at is not None for p in labelled), f.ref
            elif f.status == FulfilmentStatus.cancelled:
                assert states <= {ReservationState.released}, (f.ref, states)
                assert not any(p.shipped_at for p in labelled), f"{f.ref} cancelled, a parcel left"
                assert all(p.status == ParcelStatus.intercepted for p in labelled), f"{f.ref}: not intercepted"
                assert f.intercepted == bool(labelled), f.ref
            else:
                assert ReservationState.consumed not in states and ReservationState.released not in states
        feed = list(s.scalars(select(Event.type).where(Event.order_id == order.id).order_by(Event.seq)))
        if "order.cancelled" in feed:
            assert order.status == OrderStatus.cancelled, (order.status, feed)
            after = feed[feed.index("order.cancelled"):]
            assert not {"parcel.shipped", "fulfilment.shipped", "fulfilment.packed"} & set(after), feed
        assert feed.count("order.cancelled") + feed.count("order.partially_cancelled") <= 1, feed


def events_of_type(db, type_: str) -> list[dict]:
    with db.reading() as s:
        return list(s.scalars(select(Event.data).where(Event.type == type_).order_by(Event.seq)))


# --- cancel against the floor --------------------------------------------------------------

def test_a_cancel_and_an_outbound_scan_of_one_parcel_never_both_succeed(floor):
    with floor.transaction() as s:
        handover = ship.open_handover(s, node(s, "SH-PD"), "ly-express", user(s, "D001")).ref
    seen = Counter()
    for n in range(ROUNDS):
        ext = f"CS-{n}"
        tracking = packed(floor, ext)
        cancelled, scanned = race(
            floor,
            lambda s: cancel.cancel(s, order_of(s, ext)),
            lambda s: ship.scan(s, user(s, "D001"), f"ship-{ext}", node(s, "SH-PD"), handover, tracking))
        outcome = (key(cancelled), key(scanned))
        assert outcome in {("True", "ship_intercepted"), ("order_already_shipped", "shipped")}, outcome
        seen[outcome] += 1
        check_record(floor, ext)
    shipped = seen[("order_already_shipped", "shipped")]
    assert stock_of(floor, "SH-PD", "SKU-A") == (STOCK - shipped, 0)
    check_invariants(floor)


def test_a_cancel_and_the_close_of_the_last_parcel_at_the_bench_never_both_succeed(floor):
    for n in range(ROUNDS):
        ext = f"CP-{n}"
        ref = in_parcel(floor, ext)
        cancelled, closed = race(
            floor,
            lambda s: cancel.cancel(s, order_of(s, ext)),
            lambda s: pack.close(s, user(s, "K001"), f"close-{ext}", node(s, "SH-PD"), ref, 500, PREFIX))
        # The close first: the cancel intercepts the labelled parcel. The
        # cancel first: the bench is told to put the items back.
        assert (key(cancelled), key(closed)) in {("True", "pack_intercepted"), ("True", "closed")}
        check_record(floor, ext)
    assert stock_of(floor, "SH-PD", "SKU-A") == (STOCK, 0)
    check_invariants(floor)


def test_a_cancel_and_a_riders_pickup_of_one_parcel_never_both_succeed(floor):
    seen = Counter()
    for n in range(ROUNDS):
        ext = f"CR-{n}"
        tracking = packed(floor, ext, "SKU-B", "same_city")
        cancelled, taken = race(
            floor,
            lambda s: cancel.cancel(s, order_of(s, ext)),
            lambda s: ride.pickup(s, user(s, "R001"), tracking, f"ride-{ext}")[1])
        outcome = (key(cancelled), key(taken))
        assert outcome in {("True", "ride_intercepted"), ("order_already_shipped", "True")}, outcome
        seen[outcome] += 1
        check_record(floor, ext)
    assert stock_of(floor, "SH-STORE", "SKU-B") == (STOCK - seen[("order_already_shipped", "True")], 0)
    check_invariants(floor)


def _ship_part(db, external_id: str, node_code: str) -> None:
    """The order's fulfilment at `node_code` ships (stand-in for the dock)."""
    with db.transaction() as s:
        order = order_of(s, external_id)
        f = next(f for f in order.fulfilments if f.node.code == node_code)
        reserve.consume(s, f)
        f.status, f.shipped_at = FulfilmentStatus.shipped, utcnow()
        orders.refresh(order)


def test_a_receipt_and_a_cancel_of_a_partly_shipped_order_leave_it_shipped_or_completed(floor):
    for n in range(ROUNDS):
        ext = f"RC-{n}"
        submit(floor, ext, [("SKU-A", 1), ("SKU-C", 1)])
        _ship_part(floor, ext, "SH-PD")
        received, cancelled = race(
            floor,
            lambda s: deliver.confirm_receipt(s, order_of(s, ext)),
            lambda s: cancel.cancel(s, order_of(s, ext)))
        outcome = (key(received), key(cancelled))
        # The receipt first: refused (SKU-C has not shipped), then the cancel
        # stops SKU-C. The cancel first: the receipt completes what shipped.
        assert outcome in {("receipt_not_allowed", "True"), ("True", "True")}, outcome
        with floor.reading() as s:
            status = order_of(s, ext).status
        assert status == (OrderStatus.completed if outcome == ("True", "True") else OrderStatus.shipped)
        check_record(floor, ext)
    assert stock_of(floor, "HZ-XS", "SKU-C") == (STOCK, 0)
    assert stock_of(floor, "SH-PD", "SKU-A") == (STOCK - ROUNDS, 0)
    check_invariants(floor)


def test_a_cancel_that_leaves_shipped_fulfilments_says_partially_cancelled_not_cancelled(floor):
    submit(floor, "PC-1", [("SKU-A", 1), ("SKU-C", 1)])
    _ship_part(floor, "PC-1", "SH-PD")
    with floor.transaction() as s:
        assert cancel.cancel(s, order_of(s, "PC-1")) is True
    with floor.reading() as s:
        order = order_of(s, "PC-1")
        refs = {f.node.code: f.ref for f in order.fulfilments}
        assert order.status == OrderStatus.shipped
        feed = [(e.type, e.data) for e in s.scalars(select(Event).where(Event.order_id == order.id)
                                                    .order_by(Event.seq))]
    assert "order.cancelled" not in [t for t, _ in feed]
    assert feed[-3][0] == "fulfilment.cancelled"
    assert feed[-2] == ("order.status_changed", {"status": "shipped", "previous": "partially_shipped"})
    assert feed[-1] == ("order.partially_cancelled", {"reason": "channel_request", "cancelled": [refs["HZ-XS"]],
                                                      "shipped": [refs["SH-PD"]]})
    check_record(floor, "PC-1")
    # Cancelling again changes nothing.
    with floor.transaction() as s:
        assert cancel.cancel(s, order_of(s, "PC-1")) is False
    check_invariants(floor)


def test_a_couriers_delivery_report_and_the_customers_receipt_at_once_end_completed(floor):
    with floor.transaction() as s:
        handover = ship.open_handover(s, node(s, "SH-PD"), "ly-express", user(s, "D001")).ref
    for n in range(ROUNDS):
        ext = f"DR-{n}"
        tracking_number = packed(floor, ext)
        with floor.transaction() as s:
            ship.scan(s, user(s, "D001"), f"out-{ext}", node(s, "SH-PD"), handover, tracking_number)
        reported, received = race(
            floor,
            lambda s: tracking.report(s, tracking.find_for_carrier(s, "ly-express", tracking_number),
                                      TrackingStatus.delivered, utcnow()).result,
            lambda s: deliver.confirm_receipt(s, order_of(s, ext)))
        assert (reported, key(received)) == ("applied", "True")
        with floor.reading() as s:
            order = order_of(s, ext)
            f = order.fulfilments[0]
            # Receipt first: the delivery keeps its time, the status stays completed.
            assert (order.status, f.status) == (OrderStatus.completed, FulfilmentStatus.completed)
            assert f.delivered_at is not None and f.completed_at is not None
        check_record(floor, ext)
    check_invariants(floor)


def test_two_carrier_batches_naming_the_same_parcels_in_opposite_order_are_both_taken(floor):
    with floor.transaction() as s:
        handover = ship.open_handover(s, node(s, "SH-PD"), "ly-express", user(s, "D001")).ref
    for n in range(ROUNDS):
        numbers = []
        for part in ("a", "b"):
            numbers.append(packed(floor, f"CB-{n}{part}"))
            with floor.transaction() as s:
                ship.scan(s, user(s, "D001"), f"out-{n}{part}", node(s, "SH-PD"), handover, numbers[-1])
        at = utcnow()

        def batch(status, order):
            return tracking.CarrierBatch.model_validate({"events": [
                {"tracking_number": numbers[i], "status": status, "at": at} for i in order]}).events
        first, second = race(
            floor,
            lambda s: [r["result"] for r in tracking.take_all(s, "ly-express", batch("in_transit", (0, 1)))],
            lambda s: [r["result"] for r in tracking.take_all(s, "ly-express", batch("delivered", (1, 0)))])
        assert (first, second) == (["applied", "applied"], ["applied", "applied"]) or \
            (first, second) == (["recorded", "recorded"], ["applied", "applied"])
        for part in ("a", "b"):
            with floor.reading() as s:
                assert order_of(s, f"CB-{n}{part}").status == OrderStatus.delivered
    check_invariants(floor)


# --- the same scan from two handhelds, or sent twice ---------------------------------------

def test_two_dock_handhelds_scanning_one_parcel_ship_it_once(floor):
    with floor.transaction() as s:
        handover = ship.open_handover(s, node(s, "SH-PD"), "ly-express", user(s, "D001")).ref
    for n in range(ROUNDS):
        ext = f"DD-{n}"
        tracking = packed(floor, ext)
        # Even rounds: one scan sent twice (a Wi-Fi retry: the same worker, the
        # same id); odd: two devices of two workers.
        same = n % 2 == 0
        first, second = race(
            floor,
            lambda s: ship.scan(s, user(s, "D001"), f"dock-{ext}", node(s, "SH-PD"), handover, tracking),
            lambda s: ship.scan(s, user(s, "D001" if same else "D002"), f"dock-{ext}" if same else f"dock2-{ext}",
                                node(s, "SH-PD"), handover, tracking))
        assert sorted([key(first), key(second)]) == sorted(["shipped", "repeat" if same else "again"])
        check_record(floor, ext)
    assert len(events_of_type(floor, "parcel.shipped")) == ROUNDS
    assert stock_of(floor, "SH-PD", "SKU-A") == (STOCK - ROUNDS, 0)
    check_invariants(floor)


def test_one_unit_scanned_at_the_bench_and_sent_twice_at_once_counts_once(floor):
    for n in range(ROUNDS):
        ext = f"PU-{n}"
        ref = picked(floor, ext)
        first, second = race(
            floor,
            lambda s: pack.scan(s, user(s, "K001"), f"unit-{ext}", node(s, "SH-PD"), ref, GTIN["SKU-A"]),
            lambda s: pack.scan(s, user(s, "K001"), f"unit-{ext}", node(s, "SH-PD"), ref, GTIN["SKU-A"]))
        assert sorted([key(first), key(second)]) == ["item", "repeat"]
        with floor.reading() as s:
            f = order_of(s, ext).fulfilments[0]
            assert pack.packed_units(f) == {f.lines[0].sku_id: 1}
    check_invariants(floor)


def test_one_parcel_closed_at_the_bench_and_sent_twice_at_once_is_labelled_once(floor):
    for n in range(ROUNDS):
        ext = f"PC-{n}"
        ref = in_parcel(floor, ext)
        first, second = race(
            floor,
            lambda s: pack.close(s, user(s, "K001"), f"close-{ext}", node(s, "SH-PD"), ref, 500, PREFIX),
            # The same worker's close sent twice (a Wi-Fi retry: a scan id is its worker's).
            lambda s: pack.close(s, user(s, "K001"), f"close-{ext}", node(s, "SH-PD"), ref, 500, PREFIX))
        assert sorted([key(first), key(second)]) == ["closed", "repeat"]
        assert first.parcel_id == second.parcel_id is not None
        with floor.reading() as s:
            f = order_of(s, ext).fulfilments[0]
            assert f.status == FulfilmentStatus.packed and len(f.parcels) == 1
        check_record(floor, ext)
    assert len(events_of_type(floor, "fulfilment.packed")) == ROUNDS
    check_invariants(floor)


def test_two_dock_handhelds_closing_one_handover_close_it_once(floor):
    for n in range(ROUNDS):
        with floor.transaction() as s:
            handover = ship.open_handover(s, node(s, "SH-PD"), "ly-express", user(s, "D001")).ref
        first, second = race(
            floor,
            lambda s: ship.close_handover(s, ship.handover_at(s, node(s, "SH-PD"), handover),
                                          user(s, "D001")).status.value,
            lambda s: ship.close_handover(s, ship.handover_at(s, node(s, "SH-PD"), handover),
                                          user(s, "D002")).status.value)
        assert (first, second) == ("closed", "closed")
        closed = [d for d in events_of_type(floor, "handover.closed") if d["handover"] == handover]
        assert len(closed) == 1, closed
    check_invariants(floor)


def test_a_scan_onto_a_handover_and_its_close_at_once_agree_on_what_left(floor):
    for n in range(ROUNDS):
        ext = f"SC-{n}"
        tracking_number = packed(floor, ext)
        with floor.transaction() as s:
            handover = ship.open_handover(s, node(s, "SH-PD"), "ly-express", user(s, "D001")).ref
        scanned, closed = race(
            floor,
            lambda s: ship.scan(s, user(s, "D001"), f"sc-{ext}", node(s, "SH-PD"), handover, tracking_number),
            lambda s: ship.close_handover(s, ship.handover_at(s, node(s, "SH-PD"), handover),
                                          user(s, "D002")).status.value)
        assert (key(scanned), closed) in {("shipped", "closed"), ("ship_handover_closed", "closed")}
        [event] = [d for d in events_of_type(floor, "handover.closed") if d["handover"] == handover]
        with floor.reading() as s:
            on_it = len(ship.handover_at(s, node(s, "SH-PD"), handover).parcels)
        # The manifest's count is what is on the handover.
        assert event["parcels"] == on_it == (1 if key(scanned) == "shipped" else 0)
        if on_it == 0:
            with floor.transaction() as s:
                assert cancel.cancel(s, order_of(s, ext))
        check_record(floor, ext)
    check_invariants(floor)


def test_a_return_confirmed_twice_at_once_puts_the_units_back_once(floor):
    with floor.transaction() as s:
        handover = ship.open_handover(s, node(s, "SH-PD"), "ly-express", user(s, "D001")).ref
    for n in range(ROUNDS):
        ext = f"RT-{n}"
        number = packed(floor, ext)
        with floor.transaction() as s:
            ship.scan(s, user(s, "D001"), f"out-{ext}", node(s, "SH-PD"), handover, number)
            parcel = s.scalar(select(Parcel).where(Parcel.tracking_number == number))
            tracking.report(s, parcel, TrackingStatus.returned, utcnow())  # the carrier brought it back
        bins = {"SKU-A": "A-01-01-1"}
        first, second = race(
            floor,
            lambda s: returns.receive(s, user(s, "D001"), f"back-{ext}", node(s, "SH-PD"), number, bins),
            # The same worker's confirmation sent twice (a scan id is its worker's).
            lambda s: returns.receive(s, user(s, "D001"), f"back-{ext}", node(s, "SH-PD"), number, bins))
        assert sorted([key(first), key(second)]) == ["received", "repeat"]
    assert len(events_of_type(floor, "parcel.received_back")) == ROUNDS
    assert stock_of(floor, "SH-PD", "SKU-A") == (STOCK, 0)
    with floor.reading() as s:
        assert s.scalar(select(func.count()).select_from(Fulfilment)
                        .where(Fulfilment.status == FulfilmentStatus.shipped)) == ROUNDS
    check_invariants(floor)
