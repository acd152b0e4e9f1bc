"""Scanning a pick list: every right scan moves one step, every wrong one is
refused with what was expected, in the picker's language, and records nothing."""
from __future__ import annotations

import pytest
import support
from handhelds import (
    BARCODES,
    Handheld,
    bin_count,
    lines_of,
    login,
    pick_through,
    refusal_of,
    scans_recorded,
    step_of,
    text,
)
from sqlalchemy import select

from app.fulfilment import pick
from app.models import Event, Fulfilment, Node, PickList

EARLY, LATE = "2026-11-25T12:00:00+08:00", "2026-11-25T18:00:00+08:00"
TOTES = ["T-1", "T-2"]  # slot 1: O-EARLY (SKU-A x2, SKU-C x1); slot 2: O-LATE (SKU-B x1, SKU-D x2)
# Walk: A-01-01-1 SKU-A (T-1), A-01-05-1 SKU-B (T-2), A-02-07-1 SKU-D (T-2), A-02-02-1 SKU-C (T-1)


@pytest.fixture
def batch(client, floor):
    """P2 (English) holds a two-order batch, totes set, at the first line."""
    floor.order(client, "O-LATE", [("SKU-B", 1), ("SKU-D", 2)], LATE)
    floor.order(client, "O-EARLY", [("SKU-A", 2), ("SKU-C", 1)], EARLY)
    login(client, "P2", "2222")
    hh = Handheld(client)
    hh.claim(4)
    pick_through(hh, TOTES)
    return hh


def refused(answer, key: str) -> str:
    """The refusal shown in place: 422, its key, and its words."""
    assert answer.status_code == 422, text(answer)
    assert refusal_of(answer) == key, text(answer)
    return text(answer)


def unchanged(db, before_scans: int, before_lines) -> None:
    assert scans_recorded(db) == before_scans
    assert lines_of(db) == before_lines


# --- the line screen, step by step ----------------------------------------------------

def test_a_line_goes_location_product_quantity_tote(batch, db):
    screen = batch.screen()
    assert step_of(screen) == "location"
    assert "Go to the location and scan it" in text(screen)
    assert "A-01-01-1" in text(screen) and "商品 SKU-A" in text(screen) and "0 / 2" in text(screen)
    assert "T-1" in text(screen) and "Line 1 of 4" in text(screen)

    at_bin = batch.scan("A-01-01-1")
    assert step_of(at_bin) == "product" and "Location A-01-01-1 confirmed." in text(at_bin)
    assert "Bin short" in text(at_bin)
    one = batch.scan(BARCODES["SKU-A"])
    assert step_of(one) == "quantity" and "1 of 2 picked." in text(one) and "Enter quantity" in text(one)
    two = batch.scan(BARCODES["SKU-A"])
    assert step_of(two) == "tote" and "Scan tote T-1" in text(two)
    next_line = batch.scan("T-1")
    assert step_of(next_line) == "location" and "Line done." in text(next_line)
    assert "A-01-05-1" in text(next_line) and "Line 2 of 4" in text(next_line)
    assert lines_of(db)[0] == ("A-01-01-1", "SKU-A", 2, 2, "done")


def test_the_whole_batch_is_picked_and_each_fulfilment_becomes_picked(batch, client, floor, db):
    pick_through(batch, ["A-01-01-1", BARCODES["SKU-A"], BARCODES["SKU-A"], "T-1",
                         "A-01-05-1", BARCODES["SKU-B"], "T-2",
                         "A-02-07-1", BARCODES["SKU-D"], BARCODES["SKU-D"]])
    late = floor.document(client, "O-LATE")["fulfilments"][0]["id"]
    assert floor.status(late) == "picking"
    done_late = batch.scan("T-2")
    assert floor.status(late) == "picked"  # its last line is in its tote: packing may start
    assert step_of(done_late) == "location"
    pick_through(batch, ["A-02-02-1", BARCODES["SKU-C"]])
    done = batch.scan("T-1")
    assert done.status_code == 200
    assert "List PL-000001 finished" in text(done) and "Bring the totes to packing." in text(done)
    assert done.headers["HX-Push-Url"] == "/pick/done/PL-000001"
    assert "T-1" in text(done) and "T-2" in text(done)
    # A reload of the finished list shows it again; the home screen offers the next.
    assert "List PL-000001 finished" in text(client.get("/pick/done/PL-000001"))
    assert "0 orders waiting" in text(client.get("/pick"))

    for external_id in ("O-EARLY", "O-LATE"):
        document = floor.document(client, external_id)
        assert [f["status"] for f in document["fulfilments"]] == ["picked"]
        types = [e["type"] for e in document["events"]]
        assert types.index("fulfilment.picking") < types.index("fulfilment.picked")
    with db.reading() as s:
        assert s.scalar(select(PickList.state)).value == "done"
        picked = s.scalar(select(Event).where(Event.type == "fulfilment.picked").order_by(Event.seq))
        assert picked.data["tote"] in TOTES and picked.data["units"]
        # Where each unit came from, for shipping to take from those bins.
        f = s.scalar(select(Fulfilment).where(Fulfilment.ref == document["fulfilments"][0]["id"]))
        assert sum(pick.units_by_bin(f).values()) == 3
        node = s.scalar(select(Node).where(Node.code == "SH-PD"))
        assert pick.fulfilment_in_tote(s, node, "T-2").ref == f.ref
        assert pick.fulfilment_in_tote(s, node, "NO-SUCH-TOTE") is None
    support.check_invariants(db)


def test_the_keypad_sets_how_many_are_in_hand(batch, client, db):
    pick_through(batch, ["A-01-01-1"])
    assert client.get("/pick/quantity").status_code == 302  # not before one unit is scanned
    first = batch.quantity(2)
    refused(first, "scan_product_first")
    pick_through(batch, [BARCODES["SKU-A"]])
    keypad = client.get("/pick/quantity")
    assert keypad.status_code == 200 and "How many in hand?" in text(keypad) and 'data-key="7"' in keypad.get_data(as_text=True)
    refused(batch.quantity("two"), "quantity_invalid")
    refused(batch.quantity(0), "quantity_invalid")
    complete = batch.quantity(2)
    assert complete.status_code == 200 and step_of(complete) == "tote" and "2 of 2 picked." in text(complete)


# --- refusals ----------------------------------------------------------------------------

def test_a_wrong_location_is_refused_and_says_where_to_go(batch, db):
    before = scans_recorded(db), lines_of(db)
    words = refused(batch.scan("A-02-02-1"), "wrong_location")
    assert "Wrong location: you scanned A-02-02-1. Go to A-01-01-1" in words
    # A product before its location is a wrong location too.
    refused(batch.scan(BARCODES["SKU-A"]), "wrong_location")
    unchanged(db, *before)
    assert step_of(batch.screen()) == "location"


def test_a_wrong_product_is_refused_with_the_expected_one(batch, db):
    pick_through(batch, ["A-01-01-1"])
    before = scans_recorded(db), lines_of(db)
    words = refused(batch.scan(BARCODES["SKU-E"]), "wrong_product")
    assert f"Wrong product: {BARCODES['SKU-E']} is not on this list. Pick {BARCODES['SKU-A']} (SKU-A)" in words
    refused(batch.scan("UNKNOWN-123"), "wrong_product")
    unchanged(db, *before)


def test_a_product_of_another_line_is_refused(batch, db):
    pick_through(batch, ["A-01-01-1"])
    before = scans_recorded(db), lines_of(db)
    words = refused(batch.scan(BARCODES["SKU-C"]), "product_of_another_line")
    assert "is SKU-C for another line. Here pick" in words and "(SKU-A) first" in words
    unchanged(db, *before)


def test_an_over_pick_is_refused_by_scan_and_by_keypad(batch, db):
    pick_through(batch, ["A-01-01-1", BARCODES["SKU-A"]])
    refused(batch.quantity(3), "over_pick")
    pick_through(batch, [BARCODES["SKU-A"]])
    before = scans_recorded(db), lines_of(db)
    words = refused(batch.scan(BARCODES["SKU-A"]), "over_pick")
    assert "Too many: this line needs 2 of SKU-A, that would make 3. Put them in tote T-1." in words
    unchanged(db, *before)


def test_a_wrong_tote_is_refused_with_the_orders_tote(batch, db):
    pick_through(batch, ["A-01-01-1", BARCODES["SKU-A"], BARCODES["SKU-A"]])
    before = scans_recorded(db), lines_of(db)
    words = refused(batch.scan("T-2"), "wrong_tote")
    assert "Wrong tote: you scanned T-2. Put SKU-A for" in words and "in tote T-1 (slot 1)" in words
    refused(batch.scan("A-01-01-1"), "wrong_tote")
    unchanged(db, *before)


def test_the_tote_before_the_units_are_in_hand_is_refused(batch, db):
    pick_through(batch, ["A-01-01-1", BARCODES["SKU-A"]])
    refused(batch.scan("T-1"), "pick_incomplete")


def test_refusals_speak_the_pickers_language(client, floor, app):
    floor.order(client, "O-1", [("SKU-A", 1)], EARLY)
    zh = app.test_client()
    login(zh, "P1", "1111")
    hh = Handheld(zh)
    hh.claim(1)
    pick_through(hh, ["T-9"])
    answer = hh.scan("B-01-03-1")
    assert refusal_of(answer) == "wrong_location"
    assert "库位错误：扫描的是 B-01-03-1。请到库位 A-01-01-1 扫描库位标签。" in text(answer)
    assert "前往库位并扫描库位标签" in text(answer)


def test_an_empty_scan_is_refused(batch):
    refused(batch.scan("   "), "scan_unreadable")


# --- scan ids and barcodes ----------------------------------------------------------------

def test_a_repeated_scan_id_counts_once(batch, db):
    pick_through(batch, ["A-01-01-1"])
    first = batch.scan(BARCODES["SKU-A"], scan_id="retry-over-wifi-0001")
    retry = batch.scan(BARCODES["SKU-A"], scan_id="retry-over-wifi-0001")
    assert first.status_code == retry.status_code == 200
    assert "Already counted." in text(retry)
    assert lines_of(db)[0][3] == 1
    # The keypad and a short report are scans too.
    batch.quantity(2, scan_id="keypad-0000000001")
    batch.quantity(2, scan_id="keypad-0000000001")
    assert lines_of(db)[0][3] == 2


@pytest.mark.parametrize("scanned", [
    "]E0{ean}",                                   # EAN-13 with its AIM symbology identifier
    "]C101{gtin14}10LOT-7\x1d21SN0001",           # GS1-128: GTIN, batch, GS, serial
    "]d201{gtin14}17271231\x1d10B1",              # GS1 DataMatrix
    "01{gtin14}10LOT",                            # GS1 element strings without a prefix
    "(01){gtin14}(10)LOT",                        # the label's printed text
    "https://id.gs1.org/01/{gtin14}",             # a GS1 Digital Link
])
def test_gs1_and_prefixed_barcodes_find_the_product(batch, db, scanned):
    ean = BARCODES["SKU-A"]
    pick_through(batch, ["]C0A-01-01-1"])  # a location label with its prefix too
    answer = batch.scan(scanned.format(ean=ean, gtin14="0" + ean))
    assert answer.status_code == 200, text(answer)
    assert lines_of(db)[0][3] == 1


def test_any_of_the_products_barcodes_will_do(client, floor, db):
    floor.order(client, "O-C", [("SKU-C", 2)], EARLY)
    login(client, "P2", "2222")
    hh = Handheld(client)
    hh.claim(1)
    pick_through(hh, ["T-5", "A-02-02-1", "C-INHOUSE-3", BARCODES["SKU-C"]])
    assert lines_of(db)[0][3] == 2


# --- short picks -------------------------------------------------------------------------

def test_a_short_pick_redispatches_the_missing_units_and_corrects_the_bin(batch, client, floor, db):
    pick_through(batch, ["A-01-01-1", BARCODES["SKU-A"], BARCODES["SKU-A"], "T-1", "A-01-05-1"])
    confirm = client.get("/pick/short")
    assert confirm.status_code == 200
    assert "Is the bin short?" in text(confirm) and "0 / 1" in text(confirm)
    assert "Yes, report 1 short" in text(confirm)

    after = batch.short()
    assert after.status_code == 200 and "Short reported: 1 re-dispatched." in text(after)
    # The rest of the list goes on.
    assert step_of(after) == "location" and "A-02-07-1" in text(after)

    document = floor.document(client, "O-LATE")
    here, moved = document["fulfilments"]
    assert here["node"] == "SH-PD" and here["status"] == "picking"
    assert here["lines"] == [{"sku": "SKU-D", "quantity": 2}]
    assert moved["node"] == "SH-JD" and moved["status"] == "reserved"
    assert moved["lines"] == [{"sku": "SKU-B", "quantity": 1}] and moved["redispatched_from"] == here["id"]
    assert moved["dispatch_reason"]["trigger"] == "short_pick"
    assert "pick.short" in [e["type"] for e in document["events"]]

    assert bin_count(db, "A-01-05-1", "SKU-B") == 0
    assert support.stock_of(db, "SH-PD", "SKU-B") == (0, 0)
    support.check_invariants(db)

    pick_through(batch, ["A-02-07-1", BARCODES["SKU-D"], BARCODES["SKU-D"], "T-2"])
    assert floor.status(here["id"]) == "picked"


def test_a_short_pick_keeps_the_units_in_hand_and_counts_them_in_the_bin(batch, client, floor, db):
    pick_through(batch, ["A-01-01-1", BARCODES["SKU-A"]])
    after = batch.short()
    assert after.status_code == 200 and step_of(after) == "tote"
    assert lines_of(db)[0] == ("A-01-01-1", "SKU-A", 1, 1, "tote")
    # The unit in hand has not shipped: the bin still counts it.
    assert bin_count(db, "A-01-01-1", "SKU-A") == 1
    assert support.stock_of(db, "SH-PD", "SKU-A") == (1, 1)
    document = floor.document(client, "O-EARLY")
    assert [(f["node"], f["lines"]) for f in document["fulfilments"]] == [
        ("SH-PD", [{"sku": "SKU-A", "quantity": 1}, {"sku": "SKU-C", "quantity": 1}]),
        ("SH-JD", [{"sku": "SKU-A", "quantity": 1}])]
    pick_through(batch, ["T-1"])
    support.check_invariants(db)


def test_a_short_pick_with_nowhere_else_waits_for_stock(client, floor, db):
    floor.order(client, "O-E", [("SKU-E", 2)], EARLY)  # SKU-E is only at SH-PD
    login(client, "P2", "2222")
    hh = Handheld(client)
    hh.claim(1)
    pick_through(hh, ["T-3", "B-01-03-1"])
    done = hh.short()
    assert done.status_code == 200 and "List PL-000001 finished" in text(done)
    statuses = [(f["status"], f["node"]) for f in floor.document(client, "O-E")["fulfilments"]]
    assert statuses == [("redispatched", "SH-PD"), ("awaiting_stock", None)]
    assert bin_count(db, "B-01-03-1", "SKU-E") == 0
    support.check_invariants(db)


def test_a_short_pick_needs_the_location_and_something_missing(batch, client):
    assert client.get("/pick/short").status_code == 302
    refused(batch.short(), "short_needs_location")
    pick_through(batch, ["A-01-01-1", BARCODES["SKU-A"], BARCODES["SKU-A"]])
    refused(batch.short(), "short_not_needed")


def test_a_cancelled_order_drops_out_of_the_list(batch, client, floor, db):
    pick_through(batch, ["A-01-01-1", BARCODES["SKU-A"], BARCODES["SKU-A"], "T-1"])
    cancel = client.post("/api/v1/orders/O-LATE/cancel", headers=floor.headers)
    assert cancel.status_code == 200
    # Its lines are skipped: next is the other order's last line.
    screen = batch.scan("A-02-02-1")
    assert screen.status_code == 200, text(screen)
    pick_through(batch, [BARCODES["SKU-C"]])
    assert "finished" in text(batch.scan("T-1"))
