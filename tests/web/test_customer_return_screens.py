"""Customer returns on the screens: a lead authorises a return of delivered
units on the order's page; the dock finds it by its reference (or the
delivered parcel's label), scans each unit and gives it a disposition:
sellable into a bin (each SKU its own, its usual one offered), damaged or
quarantine (held out of stock, on the lead's returns page). Also a parcel of
two SKUs from its carrier, each SKU into its own bin, and a parcel nobody
reported returned refused. Both languages; refusals in place, nothing written."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from handhelds import BARCODES, HX, bin_count, login, refusal_of, text
from sqlalchemy import select
from support import check_invariants, refused, stock_of
from test_pack_screens import add_staff, packed, picked, step_of
from test_returns_screens import Returns
from test_ship_screens import Dock

from app.access import create_user
from app.fulfilment import tracking
from app.models import CustomerReturn, Parcel, QuarantineStock, TrackingStatus

AT = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def staff(floor):
    staff = add_staff(floor)
    with floor.db.transaction() as s:
        create_user(s, "L2", "Lee", "lead", "3434", "SH-PD", "en")
    return staff


def shipped(client, staff, external_id, lines, tote, report=None) -> tuple[str, str]:
    """Picked, packed and shipped by Dora at SH-PD; then `report` from its
    carrier. Returns (fulfilment ref, tracking number); Dora stays logged in."""
    ref = picked(client, staff, external_id, lines, tote)
    tn = packed(staff.db, ref, [BARCODES[sku] for sku, q in lines for _ in range(q)])
    login(client, "D1", "6666")
    dock = Dock(client)
    dock.open()
    assert dock.scan(tn).status_code == 200
    if report is not None:
        with staff.db.transaction() as s:
            tracking.report(s, s.scalar(select(Parcel).where(Parcel.tracking_number == tn)), report, AT)
    return ref, tn


class Rma(Returns):
    def open(self, ref):
        return self.client.get(f"/ship/returns/r/{ref}", headers=HX)

    def unit(self, ref, code):
        return self.client.post(f"/ship/returns/r/{ref}/scan", data={"scan": code, "scan_id": self._id()}, headers=HX)

    def count(self, ref, sku, disposition, q=1, **form):
        return self.client.post(f"/ship/returns/r/{ref}/u/{sku}/{disposition}",
                                data={"q": q, "scan_id": self._id(), **form}, headers=HX)


def authorise(client, ref, **quantities):
    """A lead's authorisation on the fulfilment's page."""
    form = {f"q-{sku.replace('_', '-')}": q for sku, q in quantities.items()}
    return client.post(f"/lead/f/{ref}/return", data={**form, "reason": "customer changed mind"})


@pytest.fixture
def delivered(client, staff):
    """O-1 (two of SKU-A, one of SKU-B) delivered to its customer."""
    return shipped(client, staff, "O-1", [("SKU-A", 2), ("SKU-B", 1)], "T-1", TrackingStatus.delivered)


def test_a_lead_authorises_a_return_and_the_dock_receives_it_unit_by_unit(client, staff, delivered):
    ref, tn = delivered
    client.post("/logout")
    login(client, "L2", "3434")
    page = client.get(f"/lead/f/{ref}")
    assert "Authorise a return of delivered units" in text(page) and "2 delivered, 0 already authorised" in text(page)
    answer = authorise(client, ref, SKU_A=2, SKU_B=1)
    assert answer.status_code == 200
    with staff.db.reading() as s:
        rma = s.scalar(select(CustomerReturn.ref))
    assert f"Return {rma} authorised: the dock can receive it." in text(answer)
    assert re.search(rf'data-return="{rma}" data-status="authorised"', answer.get_data(as_text=True))
    assert "Authorise the return" not in text(answer)  # nothing left to return
    [event] = [e for e in client.get("/api/v1/events?after=0&limit=1000", headers=staff.headers)
               .get_json()["events"] if e["type"] == "return.authorised"]
    assert event["data"]["by"] == "L2" and event["data"]["reason"] == "customer changed mind"

    client.post("/logout")
    login(client, "D1", "6666")
    hh = Rma(client)
    home = hh.home()
    assert rma in text(home) and "Customer returns expected" in text(home)
    screen = hh.scan(tn)  # the delivered parcel's label finds its return
    assert step_of(screen) == "return" and screen.headers["HX-Push-Url"] == f"/ship/returns/r/{rma}"
    assert "Customer return: scan each item" in text(screen) and "0 of 3 received" in text(screen)

    unit = hh.unit(rma, BARCODES["SKU-A"])
    assert step_of(unit) == "unit" and "1 unit of 商品 SKU-A: sellable? Scan its bin" in text(unit)
    assert "Sellable, into its usual bin A-01-01-1" in text(unit)
    before = bin_count(staff.db, "A-01-01-1", "SKU-A")
    counted = hh.count(rma, "SKU-A", "sellable", bin="A-01-01-1")
    assert step_of(counted) == "return" and "1 × SKU-A into A-01-01-1 (sellable)." in text(counted)
    assert bin_count(staff.db, "A-01-01-1", "SKU-A") == before + 1
    scanned = hh.count(rma, "SKU-A", "sellable", scan="a-01-05-1")  # a bin scanned instead
    assert "1 × SKU-A into A-01-05-1 (sellable)." in text(scanned) and bin_count(staff.db, "A-01-05-1", "SKU-A") == 1
    done = hh.count(rma, "SKU-B", "quarantine")
    assert step_of(done) == "returns" and f"Return {rma} received." in text(done)
    assert "held out of stock" in text(done)
    with staff.db.reading() as s:
        assert s.scalar(select(QuarantineStock.quarantined)) == 1
    assert stock_of(staff.db, "SH-PD", "SKU-B") == (9, 0)  # the quarantined unit is not on hand

    client.post("/logout")
    login(client, "L2", "3434")
    held = client.get("/lead/returns")
    assert held.status_code == 200 and "Held out of stock" in text(held)
    assert re.search(r'data-sku="SKU-B">.*?data-quarantined>1<', held.get_data(as_text=True), re.S)
    assert rma in text(held) and "2 sellable, 0 damaged, 1 quarantine" in text(held)
    check_invariants(staff.db)


def test_a_quantity_keyed_and_damaged_units(client, staff, delivered):
    ref, _tn = delivered
    client.post("/logout")
    login(client, "L2", "3434")
    authorise(client, ref, SKU_A=2)
    with staff.db.reading() as s:
        rma = s.scalar(select(CustomerReturn.ref))
    client.post("/logout")
    login(client, "D1", "6666")
    hh = Rma(client)
    keyed = client.get(f"/ship/returns/r/{rma}/u/SKU-A?q=2", headers=HX)
    assert step_of(keyed) == "unit" and "2 units of 商品 SKU-A" in text(keyed)
    done = hh.count(rma, "SKU-A", "damaged", q=2)
    assert step_of(done) == "returns" and "2 × SKU-A: damaged, held out of stock." in text(done)
    with staff.db.reading() as s:
        assert s.scalar(select(QuarantineStock.damaged)) == 2


def test_refusals_on_the_return_screens_are_in_place_and_write_nothing(client, staff, delivered, caplog):
    ref, _tn = delivered
    client.post("/logout")
    login(client, "L2", "3434")
    authorise(client, ref, SKU_A=1)
    with staff.db.reading() as s:
        rma = s.scalar(select(CustomerReturn.ref))
    client.post("/logout")
    login(client, "D1", "6666")
    hh = Rma(client)
    with refused(staff.db, caplog):
        wrong = hh.unit(rma, BARCODES["SKU-B"])
    assert wrong.status_code == 422 and step_of(wrong) == "return" and refusal_of(wrong) == "rma_not_in_return"
    with refused(staff.db, caplog):
        bad_bin = hh.count(rma, "SKU-A", "sellable", scan="Z-99-99-9")
    assert bad_bin.status_code == 422 and step_of(bad_bin) == "unit" and refusal_of(bad_bin) == "return_unknown_bin"
    with refused(staff.db, caplog):
        too_many = hh.count(rma, "SKU-A", "damaged", q=5)
    assert too_many.status_code == 422 and refusal_of(too_many) == "quantity_invalid"
    assert hh.count(rma, "SKU-A", "sellable", bin="A-01-01-1").status_code == 200
    with refused(staff.db, caplog):
        late = hh.count(rma, "SKU-A", "sellable", bin="A-01-01-1")  # a second handheld, too late
    assert late.status_code == 422
    assert step_of(late) == "returns" and refusal_of(late) == "rma_already_received"


def test_a_delivered_parcel_without_a_return_sends_the_dock_to_the_lead(client, staff, delivered, caplog):
    _ref, tn = delivered
    with refused(staff.db, caplog):
        answer = Rma(client).scan(tn)
    assert answer.status_code == 422 and refusal_of(answer) == "return_delivered"
    assert "who can authorise the return on the order" in text(answer)


def test_a_parcel_nobody_reported_returned_is_refused(client, staff, caplog):
    _ref, tn = shipped(client, staff, "O-2", [("SKU-A", 1)], "T-2")  # loaded minutes ago
    with refused(staff.db, caplog):
        answer = Rma(client).scan(tn)
    assert answer.status_code == 422 and step_of(answer) == "returns"
    assert refusal_of(answer) == "return_not_reported"
    assert "its carrier has not reported it returned" in text(answer)
    client.post("/logout")
    login(client, "D2", "6767")
    with refused(staff.db, caplog):
        zh = Rma(client).scan(tn)
    assert "承运商未报告退回" in text(zh) and "请勿入库" in text(zh)


def test_each_sku_of_a_returned_parcel_goes_into_its_own_bin(client, staff):
    _ref, tn = shipped(client, staff, "O-3", [("SKU-A", 1), ("SKU-B", 2)], "T-3", TrackingStatus.returned)
    hh = Rma(client)
    first = hh.scan(tn)
    assert step_of(first) == "items" and "Scan the bin for 商品 SKU-A" in text(first) and "SKU 1 of 2" in text(first)
    second = client.get(f"/ship/returns/p/{tn}?bin=A-01-01-1", headers=HX)  # its usual bin, taken
    assert step_of(second) == "items" and "Scan the bin for 商品 SKU-B" in text(second)
    assert "Into A-01-01-1" in text(second) and "Into its usual bin A-01-05-1" in text(second)
    putaway = hh.bin(tn, "A-02-02-1", chosen=("A-01-01-1",))  # SKU-B into another bin, scanned
    assert step_of(putaway) == "putaway" and "Put 3 units into these bins?" in text(putaway)
    done = hh.confirm(tn, "A-01-01-1", "A-02-02-1")
    assert step_of(done) == "returns" and f"{tn} received back: 3 units into A-01-01-1, A-02-02-1." in text(done)
    assert bin_count(staff.db, "A-02-02-1", "SKU-B") == 2 and bin_count(staff.db, "A-01-05-1", "SKU-B") == 8
    assert re.search(rf'data-returned="{tn}">.*?A-01-01-1, A-02-02-1', done.get_data(as_text=True), re.S)
    assert "into A-01-01-1, A-02-02-1" in text(client.get(f"/pack/parcels/{tn}"))
    check_invariants(staff.db)


def test_the_customer_return_reads_chinese(client, staff, delivered):
    ref, tn = delivered
    client.post("/logout")
    login(client, "L1", "3333")
    page = authorise(client, ref, SKU_A=1)
    assert "已授权，月台可以收货" in text(page) and "顾客退货" in text(page)
    with staff.db.reading() as s:
        rma = s.scalar(select(CustomerReturn.ref))
    client.post("/logout")
    login(client, "D2", "6767")
    hh = Rma(client)
    screen = hh.scan(rma)
    assert "顾客退货：请逐件扫描商品" in text(screen) and "已收 0 / 1 件" in text(screen)
    unit = hh.unit(rma, BARCODES["SKU-A"])
    assert "可售，放入常用库位 A-01-01-1" in text(unit) and "残损：隔离，不计入库存" in text(unit)
    done = hh.count(rma, "SKU-A", "quarantine")
    assert f"退货 {rma} 已收货。" in text(done)
