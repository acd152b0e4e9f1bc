"""Counts mean what a counter sees on the shelf: units picked into totes and
not yet shipped stay in the bin's on_hand until they ship. A count is
recorded with its variance; on the handheld a variance over the limit waits
for a lead; a short pick asks for a count."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.fulfilment import count, pick
from app.fulfilment.errors import Refusal
from app.models import CountStatus, Event, ScanRecord, StockCount
from counting import (
    BIN,
    GTIN,
    bin_on_hand,
    busy_floor,
    now,
    order,
    pack_all,
    pick_all,
    ship_parcel,
    units_in_totes,
    user,
)
from support import check_invariants, stock_of

LIMIT = 2


def _put_count(client, admin_headers, on_shelf: int):
    answer = client.put("/api/v1/nodes/SH-PD/stock", headers=admin_headers,
                        json={"items": [{"location": BIN, "sku": "SKU-A", "on_hand": on_shelf}]})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def _counts(db) -> list[StockCount]:
    with db.reading() as s:
        return list(s.scalars(select(StockCount).order_by(StockCount.id)))


def _record(db, counter: str, units: int, scan_id: str, started=None):
    with db.transaction() as s:
        return count.record(s, user(s, counter), scan_id, BIN, GTIN, units, started or now(), LIMIT)


def test_a_count_of_a_busy_bin_keeps_the_picked_units_until_they_ship(db, client, admin_headers):
    """The issue's bin: 35 on the books, 7 picked into a tote, 28 on the
    shelf. Counted at 28, the books must still say 35 until the 7 ship, then
    28 — not 21."""
    busy_floor(db, 35)
    ref = order(db, "BUSY-1", 7)
    pick_all(db, "T-01")
    assert units_in_totes(db) == 7
    tracking = pack_all(db, ref, 7)

    answer = _put_count(client, admin_headers, 28)
    assert bin_on_hand(db) == 35 and stock_of(db, "SH-PD", "SKU-A") == (35, 7)
    assert answer["counts"] == [{"location": BIN, "sku": "SKU-A", "book_on_shelf": 28, "counted": 28,
                                 "in_totes": 7, "variance": 0}]

    with db.transaction() as s:
        ship_parcel(s, tracking)
    assert bin_on_hand(db) == 28 and stock_of(db, "SH-PD", "SKU-A") == (28, 0)
    check_invariants(db)


def test_a_count_records_the_variance_as_a_row_and_an_event(db, client, admin_headers):
    busy_floor(db, 10)
    order(db, "V-1", 3)
    pick_all(db, "T-02")
    _put_count(client, admin_headers, 5)  # the books say 7 on the shelf: 2 missing
    assert bin_on_hand(db) == 8
    [c] = _counts(db)
    assert (c.status, c.book_on_shelf, c.counted, c.in_totes, c.variance, c.counted_by, c.reason) == (
        CountStatus.applied, 7, 5, 3, -2, "api:ops", "api")
    assert c.counted_at is not None and c.applied_at is not None and c.open_key is None
    with db.reading() as s:
        data = s.scalars(select(Event.data).where(Event.type == "stock.counted").order_by(Event.seq.desc())).first()
    assert data["counts"][0] | {"at": None} == {"location": BIN, "sku": "SKU-A", "book_on_shelf": 7, "counted": 5,
                                                "in_totes": 3, "variance": -2, "status": "applied", "reason": "api",
                                                "by": "api:ops", "at": None}
    check_invariants(db)


def test_a_handheld_count_within_the_limit_is_applied_and_a_retry_counts_once(db):
    busy_floor(db, 10)
    order(db, "H-1", 4)
    pick_all(db, "T-03")
    first = _record(db, "C1", 8, "count-0001")  # books: 6 on the shelf; 8 found
    assert first.what == "applied"
    assert bin_on_hand(db) == 12 and stock_of(db, "SH-PD", "SKU-A") == (12, 4)
    again = _record(db, "C1", 8, "count-0001")
    assert again.what == "repeat" and again.count_id == first.count_id
    assert bin_on_hand(db) == 12 and len(_counts(db)) == 1
    check_invariants(db)


def test_a_variance_over_the_limit_waits_for_a_lead_who_approves_it_after_a_shipment(db):
    busy_floor(db, 20)
    ref = order(db, "H-2", 5)
    pick_all(db, "T-04")
    tracking = pack_all(db, ref, 5)
    pending = _record(db, "C1", 9, "count-0002")  # books: 15 on the shelf; 9 found: 6 missing
    assert pending.what == "pending_approval" and bin_on_hand(db) == 20
    with db.transaction() as s:
        ship_parcel(s, tracking)  # the 5 in the tote leave before the lead decides
    assert bin_on_hand(db) == 15
    with db.transaction() as s:
        assert [c.id for c in count.pending(s, user(s, "L1").node)] == [pending.count_id]
        count.approve(s, user(s, "L1"), pending.count_id)
    assert bin_on_hand(db) == 9 and stock_of(db, "SH-PD", "SKU-A") == (9, 0)  # what the shelf holds
    with db.transaction() as s:
        with pytest.raises(Refusal) as late:
            count.order_recount(s, user(s, "L1"), pending.count_id)
    assert late.value.key == "count_already_decided" and "L1" in late.value.message("en")
    check_invariants(db)


def test_a_lead_orders_a_recount_and_the_bin_is_back_on_the_counters_list(db):
    busy_floor(db, 10)
    pending = _record(db, "C1", 3, "count-0003")
    assert pending.what == "pending_approval"
    with db.transaction() as s:
        count.order_recount(s, user(s, "L1"), pending.count_id)
        [task] = count.requested(s, user(s, "L1").node)
        assert (task.reason, task.recount_of_id, task.requested_by) == ("recount", pending.count_id, "L1")
    assert bin_on_hand(db) == 10
    recount = _record(db, "C1", 10, "count-0004")
    assert recount.what == "applied" and recount.count_id == task.id
    with db.reading() as s:
        assert count.requested(s, user(s, "L1").node) == []
        assert s.get(StockCount, pending.count_id).status == CountStatus.recount


def test_a_newer_count_replaces_a_variance_still_waiting_for_the_lead(db):
    busy_floor(db, 10)
    old = _record(db, "C1", 3, "count-0005")
    _record(db, "C1", 10, "count-0006")
    with db.reading() as s:
        assert s.get(StockCount, old.count_id).status == CountStatus.rejected
        assert s.get(StockCount, old.count_id).decided_by == "superseded"


def test_a_pick_from_the_bin_during_the_count_sends_it_back_for_a_recount(db):
    busy_floor(db, 10)
    order(db, "H-3", 2)
    started = now()
    pick_all(db, "T-05", units=1)  # one unit taken while the counter counted
    outcome = _record(db, "C1", 9, "count-0007", started=started)
    assert outcome.what == "recount" and bin_on_hand(db) == 10
    with db.reading() as s:
        [task] = count.requested(s, user(s, "L1").node)
        assert (task.reason, task.recount_of_id) == ("picked_during_count", outcome.count_id)


def test_counting_refuses_what_it_cannot_count_and_writes_nothing(db):
    busy_floor(db, 10)
    for bin_code, product, units, key in [("Z-99", GTIN, 1, "count_unknown_bin"),
                                          (BIN, "NOPE-1", 1, "count_unknown_product"),
                                          (BIN, GTIN, -1, "count_quantity_invalid"),
                                          (BIN, GTIN, None, "count_quantity_invalid")]:
        with db.transaction() as s:
            with pytest.raises(Refusal) as refused:
                count.record(s, user(s, "C1"), "count-x", bin_code, product, units, now(), LIMIT)
        assert refused.value.key == key
        assert refused.value.message("zh") != refused.value.message("en")
    assert _counts(db) == [] and bin_on_hand(db) == 10
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(ScanRecord).where(ScanRecord.work == "count")) == 0


def test_asking_twice_for_a_count_of_a_bin_gives_one_open_request(db):
    busy_floor(db, 10)
    with db.transaction() as s:
        first = count.request_by_codes(s, user(s, "L1"), BIN, "SKU-A")
        second = count.request_by_codes(s, user(s, "L1"), BIN.lower(), GTIN)
        assert first.id == second.id and first.status == CountStatus.requested
    with db.transaction() as s:
        with pytest.raises(Refusal) as unknown:
            count.request_by_codes(s, user(s, "L1"), "Z-99", "SKU-A")
        assert unknown.value.key == "count_unknown_bin"


def test_a_short_pick_asks_for_a_count_of_its_bin(db):
    busy_floor(db, 10)
    order(db, "S-1", 4)
    pick_all(db, "T-06", units=1)
    with db.transaction() as s:
        pick.short_pick(s, user(s, "P1"), "short-0001")
    with db.reading() as s:
        [task] = count.requested(s, user(s, "L1").node)
        assert (task.location.code, task.sku.code, task.reason, task.requested_by) == (BIN, "SKU-A", "short_pick", "P1")


def test_a_csv_stock_import_counts_the_shelf_too(db, runner, tmp_path):
    busy_floor(db, 12)
    order(db, "CSV-1", 5)
    pick_all(db, "T-07")
    path = tmp_path / "stock.csv"
    path.write_text(f"node,location,sku,on_hand\nSH-PD,{BIN},SKU-A,6\n", encoding="utf-8")
    result = runner.invoke(args=["import", "stock", str(path)])
    assert result.exit_code == 0, result.output
    assert bin_on_hand(db) == 11  # 6 on the shelf + 5 in the tote (the books said 7 on the shelf)
    [c] = _counts(db)
    assert (c.variance, c.counted_by, c.reason) == (-1, "import", "import")
    check_invariants(db)
