"""Many requests at once for the same scarce stock: nothing is oversold, the
counters stay equal to the open reservations, capacity is never overfilled,
and a retried order is taken once. Threads on both databases; on PostgreSQL
also separate server processes."""
from __future__ import annotations

import multiprocessing
import os
import random
import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from app.models import Event, Fulfilment, Node, NodeDay, Order, Sku, Stock
from support import (
    PLACES,
    check_invariants,
    check_not_oversold,
    order_body,
    submit_in_own_app,
    world,
)

POSTGRES_URL = os.environ.get("LUYUE_TEST_POSTGRES_URL")
THREADS = 8
ORDERS_PER_THREAD = 5
# 27 units of three SKUs over four nodes; the orders want about four times that.
SCARCE = {
    "SH-PD": {"SKU-A": 5, "SKU-B": 3},
    "SH-JD": {"SKU-A": 4, "SKU-C": 2},
    "HZ-XS": {"SKU-B": 4, "SKU-C": 3},
    "SH-STORE": {"SKU-A": 2, "SKU-B": 2, "SKU-C": 2},
}


def bodies(prefix: str, count: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        skus = rnd.sample(["SKU-A", "SKU-B", "SKU-C"], rnd.randint(1, 2))
        out.append(order_body(f"{prefix}-{i}", [(sku, rnd.randint(1, 3)) for sku in skus]))
    return out


def wanted(work: list[list[dict]]) -> dict[str, dict[str, int]]:
    """external_id -> {sku: units asked for}."""
    requested: dict[str, dict[str, int]] = {}
    for chunk in work:
        for b in chunk:
            want = requested.setdefault(b["external_id"], {})
            for line in b["lines"]:
                want[line["sku"]] = want.get(line["sku"], 0) + line["quantity"]
    return requested


def run_threads(work, n: int = THREADS) -> list:
    """Run work(i) in n threads released together; re-raise the first failure."""
    start = threading.Barrier(n)
    results, errors = [None] * n, []

    def target(i):
        try:
            start.wait(timeout=30)
            results[i] = work(i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


def check_promises(db, answers: list[tuple[int, dict]], requested: dict[str, dict[str, int]]) -> None:
    """Every order was taken; what the answers promised is what is held, unit
    for unit, and every unit asked for is either held or waiting."""
    assert [status for status, _ in answers] == [201] * len(answers)
    promised: Counter = Counter()
    for _, doc in answers:
        got: Counter = Counter()
        for f in doc["fulfilments"]:
            assert f["status"] in ("reserved", "awaiting_stock")
            for line in f["lines"]:
                got[line["sku"]] += line["quantity"]
                if f["status"] == "reserved":
                    promised[(f["node"], line["sku"])] += line["quantity"]
        assert got == Counter(requested[doc["external_id"]])
    with db.reading() as s:
        held = {(node, sku): reserved for node, sku, reserved in s.execute(
            select(Node.code, Stock.sku_id, Stock.reserved).join(Node, Node.id == Stock.node_id))}
        sku_code = dict(s.execute(select(Sku.id, Sku.code)).all())
    held = {(node, sku_code[sku]): n for (node, sku), n in held.items() if n}
    assert held == dict(promised)
    check_not_oversold(db)
    check_invariants(db)


def check_events(db) -> None:
    """One order.received per order, one fulfilment.reserved per reserved
    fulfilment: nothing was lost to a retry or a lost race."""
    with db.reading() as s:
        orders = s.scalar(select(func.count()).select_from(Order))
        received = s.scalar(select(func.count()).where(Event.type == "order.received"))
        reserved = s.scalar(select(func.count()).select_from(Fulfilment).where(Fulfilment.status == "reserved"))
        reserved_events = s.execute(select(Event.fulfilment_id, func.count()).where(
            Event.type == "fulfilment.reserved").group_by(Event.fulfilment_id)).all()
    assert received == orders
    assert len(reserved_events) == reserved and all(n == 1 for _, n in reserved_events)


def total_on_hand_and_reserved(db) -> tuple[int, int]:
    with db.reading() as s:
        return s.execute(select(func.sum(Stock.on_hand), func.sum(Stock.reserved))).one()


def test_eight_threads_ordering_scarce_stock_never_oversell(app, db, token_for):
    world(db, SCARCE)
    token = token_for("shop")
    work = [bodies(f"T{i}", ORDERS_PER_THREAD, seed=i) for i in range(THREADS)]

    def submit(i):
        client = app.test_client()  # each thread its own client, and so its own sessions
        return [(r.status_code, r.get_json()) for r in (
            client.post("/api/v1/orders", json=b, headers={"Authorization": f"Bearer {token}"}) for b in work[i])]

    answers = [a for chunk in run_threads(submit) for a in chunk]
    check_promises(db, answers, wanted(work))
    check_events(db)
    on_hand, reserved = total_on_hand_and_reserved(db)
    assert (on_hand, reserved) == (27, 27)  # demand exceeds supply: every unit is promised, none twice


if POSTGRES_URL:
    # SQLite is one server process (`luyue serve` runs one worker on it).
    @pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
    def test_four_server_processes_ordering_scarce_stock_never_oversell(db, token_for, database_url):
        world(db, SCARCE)
        token = token_for("shop")
        work = [bodies(f"P{i}", 8, seed=100 + i) for i in range(4)]
        with multiprocessing.get_context("spawn").Pool(4) as pool:
            chunks = pool.starmap(submit_in_own_app, [(database_url, token, chunk) for chunk in work])
        answers = [a for chunk in chunks for a in chunk]
        check_promises(db, answers, wanted(work))
        check_events(db)
        assert total_on_hand_and_reserved(db) == (27, 27)


def test_the_same_order_sent_eight_times_at_once_is_taken_once(app, db, token_for):
    world(db, {"SH-PD": {"SKU-A": 10}})
    token = token_for("shop")
    body = order_body("DUP-1", [("SKU-A", 3)])

    def submit(_):
        r = app.test_client().post("/api/v1/orders", json=body, headers={"Authorization": f"Bearer {token}"})
        return r.status_code, r.get_json()

    answers = run_threads(submit)
    assert sorted(status for status, _ in answers) == [200] * (THREADS - 1) + [201]
    assert len({str(doc["fulfilments"]) for _, doc in answers}) == 1
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 1
        assert s.scalar(select(Stock.reserved)) == 3
    check_events(db)
    check_invariants(db)


def test_a_nodes_daily_capacity_is_never_overfilled(app, db, token_for):
    capacity = {"SH-PD": 3, "SH-STORE": 2}
    world(db, {code: {"SKU-A": 100} for code in capacity},
          nodes={code: {**PLACES[code], "daily_capacity": n} for code, n in capacity.items()})
    token = token_for("shop")

    def submit(i):
        client = app.test_client()
        return [client.post("/api/v1/orders", json=order_body(f"CAP-{i}-{k}", [("SKU-A", 1)]),
                            headers={"Authorization": f"Bearer {token}"}).status_code for k in range(3)]

    assert [s for chunk in run_threads(submit) for s in chunk] == [201] * THREADS * 3
    with db.reading() as s:
        booked = dict(s.execute(select(Node.code, NodeDay.booked).join(NodeDay, Node.id == NodeDay.node_id)).all())
        placed = dict(s.execute(select(Node.code, func.count()).select_from(Fulfilment)
                                .join(Node, Node.id == Fulfilment.node_id).group_by(Node.code)).all())
        waiting = s.scalar(select(func.count()).select_from(Fulfilment).where(Fulfilment.status == "awaiting_stock"))
    assert booked == capacity  # filled, and not one over
    assert placed == capacity
    assert waiting == THREADS * 3 - sum(capacity.values())
    check_events(db)
    check_invariants(db)


def test_the_same_cancel_sent_eight_times_at_once_releases_the_stock_once(app, db, token_for):
    # Another order holds units on the same stock rows: a double release would show.
    world(db, {"SH-PD": {"SKU-A": 10, "SKU-B": 10}})
    token = token_for("shop")
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    for ext in ("KEEP-1", "GONE-1"):
        assert client.post("/api/v1/orders", json=order_body(ext, [("SKU-A", 3), ("SKU-B", 2)]),
                           headers=headers).status_code == 201

    def cancel(_):
        r = app.test_client().post("/api/v1/orders/GONE-1/cancel", headers=headers)
        return r.status_code, r.get_json()["status"]

    assert run_threads(cancel) == [(200, "cancelled")] * THREADS
    with db.reading() as s:
        reserved = dict(s.execute(select(Sku.code, Stock.reserved).join(Stock, Stock.sku_id == Sku.id)).all())
        types = Counter(s.scalars(select(Event.type).join(Order, Order.id == Event.order_id)
                                  .where(Order.external_id == "GONE-1")))
    assert reserved == {"SKU-A": 3, "SKU-B": 2}  # KEEP-1's units, still held
    assert (types["order.cancelled"], types["fulfilment.cancelled"]) == (1, 1)
    check_invariants(db)


def test_the_same_receipt_sent_eight_times_at_once_completes_the_order_once(app, db, token_for):
    from support import ship
    world(db, {"SH-PD": {"SKU-A": 10}, "HZ-XS": {"SKU-B": 10}})
    token = token_for("shop")
    headers = {"Authorization": f"Bearer {token}"}
    app.test_client().post("/api/v1/orders", json=order_body("R-1", [("SKU-A", 1), ("SKU-B", 1)]), headers=headers)
    ship(db, "R-1")

    def receipt(_):
        r = app.test_client().post("/api/v1/orders/R-1/receipt", headers=headers)
        return r.status_code, r.get_json()["status"]

    assert run_threads(receipt) == [(200, "completed")] * THREADS
    with db.reading() as s:
        types = Counter(s.scalars(select(Event.type)))
    assert (types["order.completed"], types["fulfilment.completed"]) == (1, 2)
    check_invariants(db)

