"""Returns at the dock: a shipped parcel its carrier reported returned is
received into the bins of the node it left from, each SKU into its own. Its
units are on hand again in those bins and the node's stock, the parcel is
`returned`, the channel hears `parcel.received_back`, and fulfilments
waiting for those SKUs are dispatched, all at once; the contract's order and
fulfilment statuses stay as they were. A parcel not reported returned is
refused."""
from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from sqlalchemy import func, select

from app import access
from app.fulfilment import cancel, intake, pack, returns, ship, tracking
from app.fulfilment.errors import Refusal
from app.models import (
    Barcode,
    BinStock,
    Event,
    FulfilmentStatus,
    Location,
    Node,
    Order,
    Parcel,
    ParcelStatus,
    ScanRecord,
    Sku,
    Stock,
    TrackingStatus,
    User,
)
from support import check_invariants, count, fulfilments_of, order_body, set_status, snapshot, stock_of, world

PREFIX = "6901234"
GTIN = {"SKU-A": "6901234567892", "SKU-B": "6901234000016"}
AT = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.fixture
def floor(db):
    """SH-PD holds 3 of SKU-A (bin A-01-01-1) and 5 of SKU-B (A-01-02-1);
    SH-JD, 32 km further, holds 4 of SKU-B (J-01-01-1). Dock staff at both."""
    world(db, {"SH-PD": {"SKU-A": 3, "SKU-B": 5}, "SH-JD": {}})
    count(db, "SH-JD", {"SKU-B": 4}, location="J-01-01-1")
    with db.transaction() as s:
        for sku, code in GTIN.items():
            s.add(Barcode(code=code, sku_id=s.scalar(select(Sku.id).where(Sku.code == sku))))
        access.create_user(s, "K001", "打包员", "packer", "1234", "SH-PD")
        access.create_user(s, "D001", "出库员", "dock", "1234", "SH-PD")
        access.create_user(s, "D002", "嘉定出库员", "dock", "1234", "SH-JD")
    return db


def _submit(db, external_id, lines):
    with db.transaction() as s:
        intake.submit(s, access.channel_named(s, "shop"), json.dumps(order_body(external_id, lines)).encode())


def _packed(db, external_id, lines) -> str:
    """An order picked and packed in one parcel at SH-PD; its tracking number."""
    _submit(db, external_id, lines)
    set_status(db, external_id, FulfilmentStatus.picked)
    with db.transaction() as s:
        f = s.scalar(select(Order).where(Order.external_id == external_id)).fulfilments[0]
        for sku, quantity in lines:
            pack.scan_item(s, f, GTIN[sku], quantity=quantity)
        return pack.close_parcel(s, f, 800, _user(s, "K001"), PREFIX).tracking_number


def _shipped(db, external_id, lines) -> str:
    tracking_number = _packed(db, external_id, lines)
    with db.transaction() as s:
        handover = ship.open_handover(s, _node(s, "SH-PD"), "ly-express", _user(s, "D001"))
        ship.scan_parcel(s, handover, tracking_number, _user(s, "D001"))
    return tracking_number


def _back(db, external_id, lines) -> str:
    """Shipped, then reported returned by its carrier."""
    tracking_number = _shipped(db, external_id, lines)
    _report(db, tracking_number, TrackingStatus.returned)
    return tracking_number


def _user(s, code) -> User:
    return s.scalar(select(User).where(User.code == code))


def _node(s, code) -> Node:
    return s.scalar(select(Node).where(Node.code == code))


def _receive(db, code, bins, scan_id="return-0001", user="D001", node="SH-PD") -> returns.Received:
    """`bins`: SKU -> bin, or one bin for every SKU of the parcel."""
    with db.transaction() as s:
        if isinstance(bins, str):
            parcel = s.scalar(select(Parcel).where(Parcel.tracking_number == code))
            bins = {i.sku.code: bins for i in parcel.items} if parcel is not None else {"SKU-A": bins}
        return returns.receive(s, _user(s, user), scan_id, _node(s, node), code, bins)


def _report(db, tracking_number, status, at=AT):
    with db.transaction() as s:
        parcel = s.scalar(select(Parcel).where(Parcel.tracking_number == tracking_number))
        return tracking.report(s, parcel, status, at)


def _bin(db, location, sku) -> int | None:
    with db.reading() as s:
        return s.scalar(select(BinStock.on_hand).join(Location, Location.id == BinStock.location_id)
                        .join(Sku, Sku.id == BinStock.sku_id).where(Location.code == location, Sku.code == sku))


def _parcel(db, tracking_number) -> Parcel:
    with db.reading() as s:
        parcel = s.scalar(select(Parcel).where(Parcel.tracking_number == tracking_number))
        s.expunge(parcel)
        return parcel


def _events(db, type_) -> list[Event]:
    with db.reading() as s:
        return list(s.scalars(select(Event).where(Event.type == type_).order_by(Event.seq)))


# --- receiving ------------------------------------------------------------------------------

def test_a_parcel_reported_returned_goes_back_into_the_bin_and_the_nodes_stock(floor):
    tn = _shipped(floor, "T-1", [("SKU-A", 2), ("SKU-B", 1)])
    assert stock_of(floor, "SH-PD", "SKU-A") == (1, 0) and stock_of(floor, "SH-PD", "SKU-B") == (4, 0)
    assert _report(floor, tn, TrackingStatus.returned).result == "applied"

    done = _receive(floor, tn, "A-01-01-1")

    assert done.what == "received" and done.units == 3 and done.bins == (("SKU-A", "A-01-01-1"), ("SKU-B", "A-01-01-1"))
    assert stock_of(floor, "SH-PD", "SKU-A") == (3, 0) and stock_of(floor, "SH-PD", "SKU-B") == (5, 0)
    assert _bin(floor, "A-01-01-1", "SKU-A") == 3
    assert _bin(floor, "A-01-01-1", "SKU-B") == 1  # a new bin row: the SKU was never there
    assert _bin(floor, "A-01-02-1", "SKU-B") == 4
    parcel = _parcel(floor, tn)
    assert parcel.status == ParcelStatus.returned and parcel.returned_at is not None
    check_invariants(floor)


def test_the_return_is_one_event_in_the_channels_feed_and_the_document_says_returned(floor, client, headers):
    tn = _shipped(floor, "T-1", [("SKU-A", 2), ("SKU-B", 1)])
    _report(floor, tn, TrackingStatus.returned)
    _receive(floor, tn, "a-01-01-1")  # bin labels read in any case, as picking reads them

    [event] = _events(floor, "parcel.received_back")
    assert event.data == {"tracking_number": tn, "carrier": "ly-express",
                          "status": "returned", "parcel_status": "returned",
                          "items": [{"sku": "SKU-A", "quantity": 2, "location": "A-01-01-1"},
                                    {"sku": "SKU-B", "quantity": 1, "location": "A-01-01-1"}],
                          "location": "A-01-01-1", "by": "D001", "carrier_status": "returned"}
    feed = client.get("/api/v1/events?after=0&limit=1000", headers=headers).get_json()["events"]
    assert [e["type"] for e in feed].count("parcel.received_back") == 1
    assert feed[-1]["type"] == "parcel.received_back" and feed[-1]["order"] == "T-1"

    document = client.get("/api/v1/orders/T-1", headers=headers).get_json()
    assert document["status"] == "shipped"
    [f] = document["fulfilments"]
    assert f["status"] == "shipped"
    assert [p["status"] for p in f["parcels"]] == ["returned"]
    # Stamped when received, in the same transaction as the event (stamped at commit).
    returned_at = dt.datetime.fromisoformat(f["parcels"][0]["returned_at"])
    assert dt.timedelta(0) <= dt.datetime.fromisoformat(feed[-1]["at"]) - returned_at < dt.timedelta(seconds=5)
    check_invariants(floor)


def test_each_sku_goes_into_its_own_bin(floor):
    tn = _back(floor, "T-1", [("SKU-A", 2), ("SKU-B", 1)])

    done = _receive(floor, tn, {"SKU-A": "A-01-01-1", "sku-b": "a-01-02-1"})

    assert done.bins == (("SKU-A", "A-01-01-1"), ("SKU-B", "A-01-02-1")) and done.units == 3
    assert _bin(floor, "A-01-01-1", "SKU-A") == 3 and _bin(floor, "A-01-01-1", "SKU-B") is None
    assert _bin(floor, "A-01-02-1", "SKU-B") == 5
    [event] = _events(floor, "parcel.received_back")
    assert event.data["items"] == [{"sku": "SKU-A", "quantity": 2, "location": "A-01-01-1"},
                                   {"sku": "SKU-B", "quantity": 1, "location": "A-01-02-1"}]
    assert event.data["location"] is None  # not one bin for all
    check_invariants(floor)


def test_a_sku_without_a_bin_is_refused_and_nothing_is_received(floor):
    tn = _back(floor, "T-1", [("SKU-A", 2), ("SKU-B", 1)])
    refusal = _refused(floor, tn, bin_code={"SKU-A": "A-01-01-1"})
    assert refusal.key == "return_bin_needed" and "SKU-B" in refusal.message("en")
    assert _parcel(floor, tn).status == ParcelStatus.shipped


@pytest.mark.parametrize("report", [None, TrackingStatus.in_transit, TrackingStatus.failed_attempt],
                         ids=["no_report", "in_transit", "failed_attempt"])
def test_a_parcel_its_carrier_did_not_report_returned_is_refused(floor, report):
    tn = _shipped(floor, "T-1", [("SKU-A", 1)])  # loaded minutes ago, brought back in
    if report is not None:
        _report(floor, tn, report)
    refusal = _refused(floor, tn)
    assert refusal.key == "return_not_reported" and refusal.status == 422
    word = report.value if report is not None else "-"
    assert "its carrier has not reported it returned" in refusal.message("en") and f"(last report: {word})" in (
        refusal.message("en"))
    assert "承运商未报告退回" in refusal.message("zh") and "交给组长" in refusal.message("zh")
    assert _parcel(floor, tn).status == ParcelStatus.shipped


def test_the_sscc_on_the_label_finds_the_returned_parcel(floor):
    tn = _back(floor, "T-1", [("SKU-A", 1)])
    sscc = _parcel(floor, tn).sscc
    assert _receive(floor, "]C100" + sscc, "A-01-01-1").what == "received"
    assert _parcel(floor, tn).status == ParcelStatus.returned


def test_returned_units_dispatch_a_fulfilment_awaiting_stock(floor):
    tn = _back(floor, "T-1", [("SKU-A", 3)])
    _submit(floor, "T-2", [("SKU-A", 2)])
    [waiting] = fulfilments_of(floor, "T-2")
    assert waiting.status == FulfilmentStatus.awaiting_stock

    done = _receive(floor, tn, "A-01-01-1")

    [placed] = fulfilments_of(floor, "T-2")
    assert placed.status == FulfilmentStatus.reserved and done.dispatched == (placed.ref,)
    with floor.reading() as s:
        assert s.get(Node, placed.node_id).code == "SH-PD"
        seqs = {e.type: e.seq for e in s.scalars(select(Event).where(Event.order_id.isnot(None)))}
    assert seqs["parcel.received_back"] < seqs["fulfilment.reserved"]  # the cause comes first in the feed
    assert stock_of(floor, "SH-PD", "SKU-A") == (3, 2)
    check_invariants(floor)


def test_the_same_scan_id_twice_counts_once(floor):
    tn = _back(floor, "T-1", [("SKU-A", 2)])
    first = _receive(floor, tn, "A-01-01-1", scan_id="return-retry-1")
    before = snapshot(floor)
    again = _receive(floor, tn, "A-01-01-1", scan_id="return-retry-1")
    assert first.what == "received" and again.what == "repeat" and again.parcel_id == first.parcel_id
    assert snapshot(floor) == before
    assert stock_of(floor, "SH-PD", "SKU-A") == (3, 0)
    with floor.reading() as s:
        assert s.scalar(select(func.count()).select_from(ScanRecord).where(ScanRecord.work == "return")) == 1
    check_invariants(floor)


def test_the_order_keeps_its_statuses_and_receipt_still_completes_it(floor, client, headers):
    tn = _back(floor, "T-1", [("SKU-A", 1)])
    _receive(floor, tn, "A-01-01-1")
    [f] = fulfilments_of(floor, "T-1")
    assert f.status == FulfilmentStatus.shipped
    # What the platform does about it is its decision; the contract's calls work as before.
    assert client.post("/api/v1/orders/T-1/receipt", headers=headers).get_json()["status"] == "completed"


# --- after the return -------------------------------------------------------------------------

def test_carrier_reports_after_the_return_are_history_only(floor):
    tn = _back(floor, "T-1", [("SKU-A", 1)])
    _receive(floor, tn, "A-01-01-1")
    late = _report(floor, tn, TrackingStatus.returned, AT + dt.timedelta(hours=2))
    delivered = _report(floor, tn, TrackingStatus.delivered, AT + dt.timedelta(hours=3))
    assert (late.result, late.parcel_status) == ("recorded", "returned")
    assert (delivered.result, delivered.parcel_status) == ("recorded", "returned")
    assert _parcel(floor, tn).status == ParcelStatus.returned
    [f] = fulfilments_of(floor, "T-1")
    assert f.status == FulfilmentStatus.shipped
    [event] = _events(floor, "parcel.delivered")
    assert event.data["applied"] is False and event.data["parcel_status"] == "returned"


def test_a_parcel_received_back_does_not_ship_again(floor):
    tn = _back(floor, "T-1", [("SKU-A", 1)])
    _receive(floor, tn, "A-01-01-1")
    with floor.transaction() as s:
        handover = ship.open_handover(s, _node(s, "SH-PD"), "ly-express", _user(s, "D001"))
    with floor.transaction() as s:
        handover = ship.handover_at(s, _node(s, "SH-PD"), handover.ref)
        with pytest.raises(Refusal) as refused:
            ship.scan_parcel(s, handover, tn, _user(s, "D001"))
    assert refused.value.key == "parcel_received_back" and tn in refused.value.message("en")


# --- refusals: nothing written ------------------------------------------------------------------

def _refused(db, code, bin_code: str | dict = "A-01-01-1", user="D001", node="SH-PD", scan_id="return-refused") -> Refusal:
    before = snapshot(db)
    with pytest.raises(Refusal) as refusal:
        _receive(db, code, bin_code, scan_id=scan_id, user=user, node=node)
    assert snapshot(db) == before
    with db.reading() as s:
        assert s.scalar(select(ScanRecord.id).where(ScanRecord.scan_id == scan_id)) is None
    check_invariants(db)
    return refusal.value


def test_an_unknown_label_is_refused(floor):
    refusal = _refused(floor, "LY999999999990")
    assert refusal.key == "return_unknown_parcel" and refusal.status == 422
    assert "LY999999999990 is not a parcel label" in refusal.message("en")
    assert "不是包裹面单条码" in refusal.message("zh")


def test_an_empty_scan_is_refused(floor):
    assert _refused(floor, "  ").key == "scan_unreadable"


def test_a_parcel_of_another_node_is_refused(floor):
    tn = _back(floor, "T-1", [("SKU-A", 1)])
    refusal = _refused(floor, tn, bin_code="J-01-01-1", user="D002", node="SH-JD")
    assert refusal.key == "return_other_node" and "shipped from SH-PD" in refusal.message("en")
    assert "从 SH-PD 发出" in refusal.message("zh")
    assert _parcel(floor, tn).status == ParcelStatus.shipped


def test_a_parcel_already_received_back_is_refused(floor):
    tn = _back(floor, "T-1", [("SKU-A", 1)])
    _receive(floor, tn, "A-01-01-1", scan_id="return-first")
    refusal = _refused(floor, tn, scan_id="return-second")
    assert refusal.key == "return_already_received" and refusal.status == 409
    assert "出库员" in refusal.message("en") and "已退货入库" in refusal.message("zh")
    assert stock_of(floor, "SH-PD", "SKU-A") == (3, 0)


def test_a_parcel_still_packed_is_not_a_return(floor):
    tn = _packed(floor, "T-1", [("SKU-A", 1)])
    refusal = _refused(floor, tn)
    assert refusal.key == "return_not_shipped" and "has not left yet" in refusal.message("en")
    assert _parcel(floor, tn).status == ParcelStatus.packed


def test_an_intercepted_parcel_is_not_received(floor):
    tn = _packed(floor, "T-1", [("SKU-A", 1)])
    with floor.transaction() as s:
        cancel.cancel(s, s.scalar(select(Order).where(Order.external_id == "T-1")))
    refusal = _refused(floor, tn)
    assert refusal.key == "return_intercepted" and "never taken off stock" in refusal.message("en")
    # (This floor packs without picking, so no bins are known; the screens' test names them.)
    assert refusal.message("en").endswith("put the items back where they were picked: —.")


def test_a_delivered_parcel_is_not_received_here(floor):
    tn = _shipped(floor, "T-1", [("SKU-A", 1)])
    _report(floor, tn, TrackingStatus.delivered)
    refusal = _refused(floor, tn)
    assert refusal.key == "return_delivered" and "delivered to the customer" in refusal.message("en")


@pytest.mark.parametrize("bin_code", ["Z-99-99-9", "J-01-01-1"], ids=["nowhere", "another_nodes_bin"])
def test_a_bin_not_at_this_node_is_refused(floor, bin_code):
    tn = _back(floor, "T-1", [("SKU-A", 1)])
    refusal = _refused(floor, tn, bin_code=bin_code)
    assert refusal.key == "return_unknown_bin"
    assert f"{bin_code} is not a bin at SH-PD" in refusal.message("en")
    assert f"{bin_code} 不是 SH-PD 的库位" in refusal.message("zh")
    assert _parcel(floor, tn).status == ParcelStatus.shipped


# --- what the screens read ------------------------------------------------------------------------

def test_items_name_the_bins_each_sku_usually_goes_to(floor):
    tn = _back(floor, "T-1", [("SKU-A", 2), ("SKU-B", 1)])
    with floor.reading() as s:
        parcel = returns.parcel_at(s, _node(s, "SH-PD"), tn)
        assert returns.items(s, parcel) == [returns.Item("SKU-A", "商品 SKU-A", 2, ("A-01-01-1",)),
                                            returns.Item("SKU-B", "商品 SKU-B", 1, ("A-01-02-1",))]


def test_the_dock_sees_what_the_carriers_reported_returned_and_what_came_back(floor):
    one = _shipped(floor, "T-1", [("SKU-A", 1)])
    two = _shipped(floor, "T-2", [("SKU-B", 1)])
    _report(floor, one, TrackingStatus.returned)
    _report(floor, two, TrackingStatus.returned)
    with floor.reading() as s:
        assert returns.out_count(s, _node(s, "SH-PD")) == 2
    _receive(floor, two, "A-01-02-1")
    with floor.reading() as s:
        node = _node(s, "SH-PD")
        assert returns.out_count(s, node) == 1
        assert [p.tracking_number for p in returns.recent(s, node)] == [two]
        assert returns.recent(s, _node(s, "SH-JD")) == []


def test_a_shortage_the_returned_units_cover_is_over(floor):
    tn = _back(floor, "T-1", [("SKU-A", 2)])
    with floor.transaction() as s:  # a count had found SKU-A short at SH-PD
        row = s.scalar(select(Stock).join(Sku).join(Node).where(Sku.code == "SKU-A", Node.code == "SH-PD"))
        row.short_since = AT
    _receive(floor, tn, "A-01-01-1")
    with floor.reading() as s:
        row = s.scalar(select(Stock).join(Sku).join(Node).where(Sku.code == "SKU-A", Node.code == "SH-PD"))
        assert (row.on_hand, row.reserved, row.short_since) == (3, 0, None)
    check_invariants(floor)


def test_two_handhelds_confirming_one_parcel_at_once_put_it_back_once(floor):
    """Many times over; on PostgreSQL the two transactions really overlap."""
    with floor.transaction() as s:  # a second dock worker at SH-PD
        access.create_user(s, "D003", "出库员三", "dock", "1234", "SH-PD")
    for n in range(20):
        tn = _back(floor, f"T-{n}", [("SKU-A", 2)])
        barrier = threading.Barrier(2)
        outcome: dict[str, str] = {}

        def confirm(user: str) -> None:
            barrier.wait()
            try:
                outcome[user] = _receive(floor, tn, "A-01-01-1", scan_id=f"return-{n}-{user}", user=user).what
            except Refusal as refusal:
                outcome[user] = refusal.key

        threads = [threading.Thread(target=confirm, args=(u,)) for u in ("D001", "D003")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcome.values()) == ["received", "return_already_received"], (n, outcome)
        assert _bin(floor, "A-01-01-1", "SKU-A") == 3  # 3 - 2 shipped + 2 back, once
    assert len(_events(floor, "parcel.received_back")) == 20
    check_invariants(floor)


def test_a_same_city_parcel_our_rider_could_not_deliver_is_received(floor):
    """Our rider is its carrier: the failed attempt is the word that it comes back."""
    tn = _shipped(floor, "T-1", [("SKU-A", 1)])
    with floor.transaction() as s:  # as if it had left with a rider
        s.scalar(select(Parcel).where(Parcel.tracking_number == tn)).carrier = tracking.RIDER_CARRIER
    assert _refused(floor, tn).key == "return_not_reported"
    _report(floor, tn, TrackingStatus.out_for_delivery)
    assert _refused(floor, tn).key == "return_not_reported"
    _report(floor, tn, TrackingStatus.failed_attempt, AT + dt.timedelta(hours=1))
    assert _receive(floor, tn, "A-01-01-1").what == "received"
    check_invariants(floor)
