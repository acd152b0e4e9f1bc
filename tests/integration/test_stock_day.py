"""A day at one bin, through the real steps: orders picked into totes, a
count in the middle of picking, parcels shipped, one intercepted, a count at
the end, a parcel its carrier brought back and a customer's return with
mixed dispositions. The test keeps the physical world beside the books (what
is on the shelf, what is in totes) and at every count and at the end the
books must agree: on_hand = received - shipped + returned sellable = shelf +
in totes, reserved = the open reservations, and quarantined or damaged
units are never available."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from app import access
from app.fulfilment import cancel, count, returns
from app.fulfilment.errors import Refusal
from app.models import (
    Disposition,
    Fulfilment,
    FulfilmentStatus,
    Node,
    Order,
    QuarantineStock,
    Sku,
    Stock,
    StockCount,
)
from counting import BIN, GTIN, busy_floor, order, pack_all, pick_all, ship_parcel, units_in_totes, user
from support import check_invariants, order_body, stock_of

RECEIVED = 30


def sid() -> str:
    return "day-" + uuid.uuid4().hex


def count_by_api(client, admin_headers, shelf: int) -> dict:
    answer = client.put("/api/v1/nodes/SH-PD/stock", headers=admin_headers,
                        json={"items": [{"location": BIN, "sku": "SKU-A", "on_hand": shelf}]})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


def carrier_reports(client, carrier_headers, tracking: str, status: str) -> None:
    at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)).isoformat()
    answer = client.post("/api/v1/carrier-events", headers=carrier_headers,
                         json={"events": [{"tracking_number": tracking, "status": status, "at": at}]})
    assert answer.status_code == 200 and answer.get_json()["results"][0]["result"] == "applied", answer.get_json()


def books(db) -> tuple[int, int]:
    return stock_of(db, "SH-PD", "SKU-A")


def test_a_day_of_picks_counts_shipments_and_returns_keeps_the_books_equal_to_the_shelf(db, client, headers,
                                                                                       admin_headers):
    busy_floor(db, RECEIVED)
    with db.transaction() as s:
        carrier_headers = {"Authorization": f"Bearer {access.create_carrier_token(s, 'ly-express')}"}
    shelf, shipped, sellable_back = RECEIVED, 0, 0

    # Morning: four orders; the first picked whole, the second half-way.
    refs = {name: order(db, name, units) for name, units in (("D-1", 3), ("D-2", 2), ("D-3", 4), ("D-4", 1))}
    pick_all(db, "T-1")
    shelf -= 3
    pick_all(db, "T-2", units=1)
    shelf -= 1
    assert units_in_totes(db) == 4

    # A counter counts the shelf mid-pick: what is in totes is not on it, and stays in the books.
    counted = count_by_api(client, admin_headers, shelf)
    assert [c["variance"] for c in counted["counts"]] == [0]
    assert books(db)[0] == shelf + units_in_totes(db) == RECEIVED

    pick_all(db, "T-2")
    shelf -= 1
    first, second = pack_all(db, refs["D-1"], 3), pack_all(db, refs["D-2"], 2)
    with db.transaction() as s:
        ship_parcel(s, first)
        ship_parcel(s, second)
    shipped += 5
    pick_all(db, "T-3")
    pick_all(db, "T-4")
    shelf -= 5
    third = pack_all(db, refs["D-3"], 4)
    with db.transaction() as s:
        ship_parcel(s, third)
    shipped += 4
    intercepted = pack_all(db, refs["D-4"], 1)
    assert client.post("/api/v1/orders/D-4/cancel", headers=headers).get_json()["status"] == "cancelled"
    with pytest.raises(Refusal) as refused, db.transaction() as s:
        ship_parcel(s, intercepted)
    assert refused.value.key == "ship_intercepted"
    shelf += 1  # the intercepted unit goes back where it was picked; the books never took it off
    assert books(db) == (RECEIVED - shipped, 0) and units_in_totes(db) == 0

    # End of the picking: a blind count on the handheld agrees with the books.
    with db.transaction() as s:
        scanned_bin_at = dt.datetime.now(dt.timezone.utc)  # after the last pick from it
        done = count.record(s, user(s, "C1"), sid(), BIN, "SKU-A", shelf, started_at=scanned_bin_at, limit=2)
        assert done.what == "applied" and s.get(StockCount, done.count_id).variance == 0
    assert books(db)[0] == shelf == RECEIVED - shipped

    # The carrier brings D-1's parcel back: each SKU into its bin, sellable again.
    carrier_reports(client, carrier_headers, first, "returned")
    with db.transaction() as s:
        dock = user(s, "D1")
        returns.receive(s, dock, sid(), s.get(Node, dock.node_id), first, {"SKU-A": BIN})
    shelf += 3
    sellable_back += 3

    # D-3 is delivered; the customer sends three of its four units back: one sellable, one damaged, one quarantined.
    carrier_reports(client, carrier_headers, third, "delivered")
    authorised = client.post("/api/v1/orders/D-3/returns", headers=headers,
                             json={"return_id": "RT-DAY-1", "reason": "不想要了",
                                   "lines": [{"sku": "SKU-A", "quantity": 3}]})
    assert authorised.status_code == 201, authorised.get_data(as_text=True)
    with db.transaction() as s:
        dock = user(s, "D1")
        node = s.get(Node, dock.node_id)
        ref = returns.return_by_reference(s, "RT-DAY-1").ref
        for disposition in (Disposition.sellable, Disposition.damaged, Disposition.quarantine):
            returns.receive_units(s, dock, sid(), node, ref, "SKU-A", 1, disposition, BIN if
                                  disposition == Disposition.sellable else None)
    shelf += 1
    sellable_back += 1
    doc = client.get("/api/v1/orders/D-3", headers=headers).get_json()
    [line] = doc["returns"][0]["lines"]
    assert (doc["returns"][0]["status"], line["received"], line["sellable"], line["damaged"]) == ("received", 3, 1, 1)

    # Evening: the books are the shelf, reservations are what is open, and what is held out is not for sale.
    on_hand, reserved = books(db)
    assert on_hand == RECEIVED - shipped + sellable_back == shelf
    assert reserved == 0
    check_invariants(db)
    with db.reading() as s:
        held = s.scalar(select(QuarantineStock).join(Sku, Sku.id == QuarantineStock.sku_id)
                        .where(Sku.code == "SKU-A"))
        assert (held.quarantined, held.damaged) == (1, 1)
    wanted = on_hand + 1  # one more than the shelf holds: the held-out units must not make up the difference
    answer = client.post("/api/v1/orders", headers=headers, json=order_body("D-5", [("SKU-A", wanted)]))
    assert answer.status_code == 201
    statuses = sorted((f["status"], sum(x["quantity"] for x in f["lines"])) for f in answer.get_json()["fulfilments"])
    assert statuses == [("awaiting_stock", 1), ("reserved", on_hand)]
    assert books(db) == (on_hand, on_hand)
    with db.reading() as s:
        waiting = s.scalars(select(Fulfilment).join(Order).where(Order.external_id == "D-5",
                                                                 Fulfilment.status == FulfilmentStatus.awaiting_stock))
        assert len(list(waiting)) == 1
        assert s.scalar(select(Stock.on_hand - Stock.reserved).join(Sku).where(Sku.code == "SKU-A")) == 0
    check_invariants(db)
