"""Packing verifies every unit; closing a parcel labels it; the outbound scan
ships it, consumes the reservation and lowers on-hand stock, and intercepts a
parcel whose order was cancelled."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from app import access
from app.fulfilment import cancel, intake, pack, ship
from app.fulfilment.carriers import CARRIERS
from app.fulfilment.errors import Refusal
from app.models import Barcode, Fulfilment, FulfilmentStatus, Node, Order, Parcel, ParcelStatus, Sku, User
from printing.gs1 import is_valid_sscc
from support import check_invariants, order_body, set_status, stock_of, world

PREFIX = "6901234"
GTIN = {"SKU-A": "6901234567892", "SKU-B": "6901234000016"}


@pytest.fixture
def floor(db):
    """SH-PD with stock of two SKUs that have barcodes, a packer and dock staff."""
    world(db, {"SH-PD": {"SKU-A": 10, "SKU-B": 5}})
    with db.transaction() as s:
        for sku, code in GTIN.items():
            s.add(Barcode(code=code, sku_id=s.scalar(select(Sku.id).where(Sku.code == sku))))
        access.create_user(s, "K001", "打包员", "packer", "1234", "SH-PD")
        access.create_user(s, "D001", "出库员", "dock", "1234", "SH-PD")
    return db


def _order(db, external_id, lines, delivery="express"):
    with db.transaction() as s:
        channel = access.channel_named(s, "shop")
        intake.submit(s, channel, json.dumps(order_body(external_id, lines, delivery=delivery)).encode())
    set_status(db, external_id, FulfilmentStatus.picked)


def _fulfilment(s, external_id) -> Fulfilment:
    order = s.scalar(select(Order).where(Order.external_id == external_id))
    return order.fulfilments[0]


def _user(s, code) -> User:
    return s.scalar(select(User).where(User.code == code))


def _pack_all(db, external_id, scans, weight=800) -> list[str]:
    """Scan `scans` into one parcel and close it; returns tracking numbers."""
    with db.transaction() as s:
        f = _fulfilment(s, external_id)
        for code in scans:
            pack.scan_item(s, f, code)
        parcel = pack.close_parcel(s, f, weight, _user(s, "K001"), PREFIX)
        return [parcel.tracking_number]


def test_packing_every_unit_labels_the_parcel_and_packs_the_fulfilment(floor):
    _order(floor, "T-1", [("SKU-A", 2), ("SKU-B", 1)])
    [tracking] = _pack_all(floor, "T-1", [GTIN["SKU-A"], GTIN["SKU-A"], "]E0" + GTIN["SKU-B"]])
    with floor.reading() as s:
        f = _fulfilment(s, "T-1")
        parcel = f.parcels[0]
        assert f.status == FulfilmentStatus.packed
        assert parcel.status == ParcelStatus.packed and parcel.weight_g == 800
        assert CARRIERS["ly-express"].owns(tracking) and parcel.carrier == "ly-express"
        assert is_valid_sscc(parcel.sscc) and parcel.sscc[1:8] == PREFIX
        assert {(i.sku.code, i.quantity) for i in parcel.items} == {("SKU-A", 2), ("SKU-B", 1)}
    check_invariants(floor)


def test_a_wrong_or_extra_item_is_refused_and_nothing_is_packed(floor):
    _order(floor, "T-2", [("SKU-A", 1)])
    with floor.transaction() as s:
        f = _fulfilment(s, "T-2")
        with pytest.raises(Refusal) as wrong:
            pack.scan_item(s, f, GTIN["SKU-B"])
        assert wrong.value.key == "pack_wrong_product"
        pack.scan_item(s, f, GTIN["SKU-A"])
        with pytest.raises(Refusal) as extra:
            pack.scan_item(s, f, GTIN["SKU-A"])
        assert extra.value.key == "pack_extra_item" and "1" in extra.value.message("en")
        with pytest.raises(Refusal) as unknown:
            pack.scan_item(s, f, "NOT-A-CODE")
        assert unknown.value.key == "pack_unknown_product"
        assert pack.remaining(f) == {}


def test_closing_needs_items_and_a_weight(floor):
    _order(floor, "T-3", [("SKU-A", 1)])
    with floor.transaction() as s:
        f = _fulfilment(s, "T-3")
        with pytest.raises(Refusal) as empty:
            pack.close_parcel(s, f, 500, _user(s, "K001"), PREFIX)
        assert empty.value.key == "pack_empty_parcel"
        pack.scan_item(s, f, GTIN["SKU-A"])
        with pytest.raises(Refusal) as weightless:
            pack.close_parcel(s, f, 0, _user(s, "K001"), PREFIX)
        assert weightless.value.key == "pack_weight_needed"


def test_a_fulfilment_too_big_for_one_box_goes_in_several_parcels(floor):
    _order(floor, "T-4", [("SKU-A", 3)])
    with floor.transaction() as s:
        f = _fulfilment(s, "T-4")
        pack.scan_item(s, f, GTIN["SKU-A"], quantity=2)
        first = pack.close_parcel(s, f, 1200, _user(s, "K001"), PREFIX)
        assert f.status == FulfilmentStatus.picked and first.number == 1
        pack.scan_item(s, f, GTIN["SKU-A"])
        second = pack.close_parcel(s, f, 600, _user(s, "K001"), PREFIX)
        assert second.number == 2 and f.status == FulfilmentStatus.packed
        assert first.tracking_number != second.tracking_number and first.sscc != second.sscc


def test_a_cancelled_fulfilment_is_intercepted_at_packing(floor):
    _order(floor, "T-5", [("SKU-A", 1)])
    with floor.transaction() as s:
        cancel.cancel(s, s.scalar(select(Order).where(Order.external_id == "T-5")))
    with floor.transaction() as s:
        node = s.scalar(select(Node).where(Node.code == "SH-PD"))
        with pytest.raises(Refusal) as stop:
            pack.find_for_packing(s, node, _fulfilment(s, "T-5").ref)
        assert stop.value.key == "pack_intercepted"
        assert stop.value.message("en").endswith("put the items back where they were picked: —.")  # none were


def test_scanning_out_ships_consumes_the_reservation_and_lowers_stock(floor):
    _order(floor, "T-6", [("SKU-A", 2)])
    [tracking] = _pack_all(floor, "T-6", [GTIN["SKU-A"]] * 2)
    assert stock_of(floor, "SH-PD", "SKU-A") == (10, 2)
    with floor.transaction() as s:
        node = s.scalar(select(Node).where(Node.code == "SH-PD"))
        handover = ship.open_handover(s, node, "ly-express", _user(s, "D001"))
        parcel = ship.scan_parcel(s, handover, tracking, _user(s, "D001"))
        assert parcel.status == ParcelStatus.shipped
        assert parcel.fulfilment.status == FulfilmentStatus.shipped
        assert parcel.fulfilment.order.status.value == "shipped"
    assert stock_of(floor, "SH-PD", "SKU-A") == (8, 0)
    check_invariants(floor)


def test_the_sscc_scanned_as_gs1_128_finds_the_parcel(floor):
    _order(floor, "T-7", [("SKU-B", 1)])
    _pack_all(floor, "T-7", [GTIN["SKU-B"]])
    with floor.transaction() as s:
        sscc = _fulfilment(s, "T-7").parcels[0].sscc
        node = s.scalar(select(Node).where(Node.code == "SH-PD"))
        handover = ship.open_handover(s, node, "ly-express", _user(s, "D001"))
        assert ship.scan_parcel(s, handover, "]C100" + sscc, _user(s, "D001")).sscc == sscc


@pytest.mark.parametrize("case", ["intercepted", "other_carrier", "already_shipped", "unknown"])
def test_outbound_refusals_leave_the_parcel_where_it_was(floor, case):
    _order(floor, "T-8", [("SKU-A", 1)])
    [tracking] = _pack_all(floor, "T-8", [GTIN["SKU-A"]])
    if case == "intercepted":
        with floor.transaction() as s:
            cancel.cancel(s, s.scalar(select(Order).where(Order.external_id == "T-8")))
    with floor.transaction() as s:
        node = s.scalar(select(Node).where(Node.code == "SH-PD"))
        dock = _user(s, "D001")
        carrier = "ly-rider" if case == "other_carrier" else "ly-express"
        handover = ship.open_handover(s, node, carrier, dock)
        if case == "already_shipped":
            ship.scan_parcel(s, handover, tracking, dock)
        code = "LY000000000000" if case == "unknown" else tracking
        with pytest.raises(Refusal) as refusal:
            ship.scan_parcel(s, handover, code, dock)
    expected = {"intercepted": "ship_intercepted", "other_carrier": "ship_other_carrier",
                "already_shipped": "ship_already_shipped", "unknown": "ship_unknown_parcel"}[case]
    assert refusal.value.key == expected
    with floor.reading() as s:
        parcel = s.scalar(select(Parcel).where(Parcel.tracking_number == tracking))
        status = {"intercepted": ParcelStatus.intercepted, "already_shipped": ParcelStatus.shipped}.get(
            case, ParcelStatus.packed)
        assert parcel.status == status
    check_invariants(floor)


def test_a_closed_handover_takes_no_more_parcels(floor):
    _order(floor, "T-9", [("SKU-A", 1)])
    [tracking] = _pack_all(floor, "T-9", [GTIN["SKU-A"]])
    with floor.transaction() as s:
        node = s.scalar(select(Node).where(Node.code == "SH-PD"))
        handover = ship.open_handover(s, node, "ly-express", _user(s, "D001"))
        ship.close_handover(s, handover, _user(s, "D001"))
        with pytest.raises(Refusal) as closed:
            ship.scan_parcel(s, handover, tracking, _user(s, "D001"))
        assert closed.value.key == "ship_handover_closed"
