"""A count applied while the same bin is shipped from or picked from keeps
the books equal to what is on the shelf plus what is in totes. Threads
released together, on PostgreSQL (SQLite has one writer: nothing overlaps)."""
from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import select

from app import masterdata
from app.fulfilment import count, pick
from app.models import CountStatus, StockCount
from counting import BIN, GTIN, bin_on_hand, busy_floor, now, order, pack_all, pick_all, ship_parcel, units_in_totes, user
from support import check_invariants, stock_of
from test_concurrency import run_threads

POSTGRES_URL = os.environ.get("LUYUE_TEST_POSTGRES_URL")
ROUNDS = 20
SHIPPERS = 3

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="real concurrency needs PostgreSQL")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_count_and_a_shipment_from_the_same_bin_at_once_keep_the_books_true(db, database_url):
    busy_floor(db, 400)
    for round_ in range(ROUNDS):
        parcels = []
        for n in range(SHIPPERS):
            ref = order(db, f"CS-{round_}-{n}", 3)
            pick_all(db, f"T-{round_:03d}-{n}")
            parcels.append(pack_all(db, ref, 3))
        book = bin_on_hand(db)
        on_shelf = book - 3 * SHIPPERS - 1  # the counter finds one unit missing from the shelf

        def work(i):
            if i == SHIPPERS:  # as PUT /api/v1/nodes/SH-PD/stock does
                body = masterdata.StockBody(items=[masterdata.StockItem(location=BIN, sku="SKU-A", on_hand=on_shelf)])
                db.run(lambda s: masterdata.count_shelf(s, user(s, "D1").node, body, by="api:ops", reason="api"))
            else:  # the dock ships the parcels picked from the bin
                db.run(lambda s: ship_parcel(s, parcels[i]))

        run_threads(work, SHIPPERS + 1)
        assert units_in_totes(db) == 0
        assert bin_on_hand(db) == on_shelf, f"round {round_}"
        assert stock_of(db, "SH-PD", "SKU-A") == (on_shelf, 0)
    check_invariants(db)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_count_and_a_pick_from_the_same_bin_at_once_keep_the_books_true(db, database_url):
    busy_floor(db, 200)
    outcomes = []
    for round_ in range(ROUNDS):
        order(db, f"CP-{round_}", 2)
        with db.transaction() as s:
            picker = user(s, "P1")
            pick.claim_next(s, picker, 1)
            pick.scan(s, picker, "t-" + uuid.uuid4().hex, f"T-{round_:03d}")
            pick.scan(s, picker, "t-" + uuid.uuid4().hex, BIN)
        book, totes = bin_on_hand(db), units_in_totes(db)
        on_shelf = book - totes + 1  # the counter finds one unit more than the books
        started = now()  # the counter scans the bin, then counts

        def work(i):
            if i == 0:
                return db.run(lambda s: count.record(s, user(s, "C1"), f"c-{round_}", BIN, GTIN, on_shelf,
                                                     started, limit=2))
            db.run(lambda s: pick.scan(s, user(s, "P1"), f"p-{round_}", GTIN))  # a unit off the shelf

        counted = run_threads(work, 2)[0]
        outcomes.append(counted.what)
        # The truth now: one unit went from the shelf into the tote.
        shelf, in_totes = on_shelf - 1, units_in_totes(db)
        assert in_totes == totes + 1
        if counted.what == "applied":
            assert bin_on_hand(db) == shelf + in_totes, f"round {round_}"
        else:  # the pick fell inside the count: nothing applied, the bin is asked for again
            assert counted.what == "recount" and bin_on_hand(db) == book
            with db.transaction() as s:
                [task] = count.requested(s, user(s, "L1").node)
                assert task.recount_of_id == counted.count_id
                s.delete(task)  # this test's next round starts without it
        pick_all(db, f"T-{round_:03d}")  # finish the list
        with db.reading() as s:
            assert s.get(StockCount, counted.count_id).status == CountStatus(counted.what)
    check_invariants(db)
    print("count x pick outcomes:", {w: outcomes.count(w) for w in set(outcomes)})
