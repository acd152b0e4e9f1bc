"""The dock on the handheld: choose a carrier, open (or resume) its handover,
scan parcels onto it (each one ships, consumes the reservation and lowers the
bins), meet every refusal in place, close it, and print the manifest the
courier signs."""
from __future__ import annotations

import re
import uuid

import pytest
from handhelds import BARCODES, HX, bin_count, login, refusal_of, scans_recorded, text
from sqlalchemy import select
from support import check_invariants, stock_of
from test_pack_screens import add_staff, packed, pdf_pages, pdf_text, picked, step_of

from app.models import Handover, Parcel


@pytest.fixture
def staff(floor):
    return add_staff(floor)


@pytest.fixture
def dock(client, staff):
    login(client, "D1", "6666")
    return Dock(client)


class Dock:
    """Dock staff's handheld: scans as the Scan field sends them (htmx)."""

    def __init__(self, client):
        self.client = client
        self.n = 0
        # Not id(self): a later handheld object may get a freed one, and its scan ids would repeat.
        self.device = uuid.uuid4().hex[:12]
        self.ref: str | None = None

    def open(self, carrier: str = "ly-express"):
        answer = self.client.post("/ship/open", data={"carrier": carrier}, headers=HX)
        found = re.search(r"/ship/h/([A-Za-z0-9-]+)/scan", answer.get_data(as_text=True))
        self.ref = found.group(1) if found else None
        return answer

    def scan(self, code: str, scan_id: str | None = None):
        self.n += 1
        return self.client.post(f"/ship/h/{self.ref}/scan",
                                data={"scan": code, "scan_id": scan_id or f"dock-{self.device}-{self.n:04d}"},
                                headers=HX)

    def close(self):
        return self.client.post(f"/ship/h/{self.ref}/close", headers=HX)


def count_on(answer) -> int:
    found = re.search(r"data-count>(\d+)<", answer.get_data(as_text=True))
    assert found, text(answer)
    return int(found.group(1))


def parcel_status(db, tracking: str) -> str:
    with db.reading() as s:
        return s.scalar(select(Parcel.status).where(Parcel.tracking_number == tracking)).value


@pytest.fixture
def ready(client, staff):
    """Two express parcels (O-1, two boxes) and a same-city one (O-2), packed at SH-PD."""
    one = picked(client, staff, "O-1", [("SKU-A", 2)], "T-1")
    two = picked(client, staff, "O-2", [("SKU-B", 1)], "T-2", delivery="same_city")
    return {"express": [packed(staff.db, one, [BARCODES["SKU-A"]]), packed(staff.db, one, [BARCODES["SKU-A"]])],
            "rider": packed(staff.db, two, [BARCODES["SKU-B"]]), "refs": (one, two)}


def test_home_lists_the_carriers_with_their_waiting_parcels(client, staff, ready, dock):
    home = client.get("/ship")
    assert home.status_code == 200 and step_of(home) == "home"
    words = text(home)
    assert "履约快递 LY Express" in words and "2 parcels waiting" in words
    assert "同城配 Same-city rider" in words and "1 parcel waiting" in words
    assert words.count("Open a handover") == 2


def test_opening_a_handover_twice_resumes_the_same_one(client, staff, ready, dock):
    first = dock.open()
    assert first.status_code == 200 and step_of(first) == "scan" and count_on(first) == 0
    assert "2 more waiting" in text(first)
    ref = dock.ref
    assert f"Resume {ref} · 0 scanned" in text(client.get("/ship"))
    dock.open()
    assert dock.ref == ref


def test_each_parcel_scanned_ships_and_counts(client, staff, ready, dock):
    dock.open()
    before = bin_count(staff.db, "A-01-01-1", "SKU-A")
    one = dock.scan(ready["express"][0])
    assert one.status_code == 200 and count_on(one) == 1
    assert f"{ready['express'][0]} loaded." in text(one) and "1 more waiting" in text(one)
    assert parcel_status(staff.db, ready["express"][0]) == "shipped"
    assert staff.status(ready["refs"][0]) == "packed"  # its second box is still here
    two = dock.scan(ready["express"][1])
    assert count_on(two) == 2 and staff.status(ready["refs"][0]) == "shipped"
    assert bin_count(staff.db, "A-01-01-1", "SKU-A") == before - 2
    assert stock_of(staff.db, "SH-PD", "SKU-A")[1] == 0
    check_invariants(staff.db)


def test_the_sscc_on_the_label_ships_the_parcel_too(client, staff, ready, dock):
    with staff.db.reading() as s:
        sscc = s.scalar(select(Parcel.sscc).where(Parcel.tracking_number == ready["express"][0]))
    dock.open()
    assert count_on(dock.scan("]C100" + sscc)) == 1


def test_the_same_scan_id_and_the_same_parcel_again_count_once(client, staff, ready, dock):
    dock.open()
    dock.scan(ready["express"][0], scan_id="dock-retry-0001")
    recorded = scans_recorded(staff.db)
    retry = dock.scan(ready["express"][0], scan_id="dock-retry-0001")
    assert retry.status_code == 200 and count_on(retry) == 1 and "Already counted." in text(retry)
    again = dock.scan(ready["express"][0])
    assert again.status_code == 200 and count_on(again) == 1
    assert "is already on this handover; counted once." in text(again)
    assert scans_recorded(staff.db) == recorded


def test_an_intercepted_parcel_is_refused_with_the_alarm(client, staff, ready, dock):
    assert client.post("/api/v1/orders/O-1/cancel", headers=staff.headers).status_code == 200
    dock.open()
    answer = dock.scan(ready["express"][0])
    assert answer.status_code == 422 and refusal_of(answer) == "ship_intercepted"
    assert f"STOP: parcel {ready['express'][0]}" in text(answer) and "Do not load it" in text(answer)
    assert count_on(answer) == 0 and step_of(answer) == "scan"
    assert parcel_status(staff.db, ready["express"][0]) == "intercepted"
    assert "js/outbound.js" in answer.get_data(as_text=True)


def test_a_parcel_of_another_carrier_is_refused(client, staff, ready, dock):
    dock.open("ly-express")
    answer = dock.scan(ready["rider"])
    assert answer.status_code == 422 and refusal_of(answer) == "ship_other_carrier"
    assert "goes with 同城配 Same-city rider, not 履约快递 LY Express" in text(answer)
    assert parcel_status(staff.db, ready["rider"]) == "packed"


def test_a_parcel_shipped_on_another_handover_is_refused(client, staff, ready, dock):
    dock.open()
    first = dock.ref
    dock.scan(ready["express"][0])
    dock.close()
    dock.open()
    assert dock.ref != first
    answer = dock.scan(ready["express"][0])
    assert answer.status_code == 422 and refusal_of(answer) == "ship_already_shipped"
    assert f"already left on handover {first}" in text(answer) and count_on(answer) == 0


def test_an_unknown_barcode_is_refused(client, staff, ready, dock):
    dock.open()
    answer = dock.scan("LY999999999990")
    assert answer.status_code == 422 and refusal_of(answer) == "ship_unknown_parcel"
    assert "is not a parcel label. Scan the tracking or SSCC barcode." in text(answer)


def test_a_parcel_still_being_packed_is_refused(client, staff, ready, dock):
    ref = picked(client, staff, "O-3", [("SKU-A", 1)], "T-3")
    dock.open()
    answer = dock.scan(ref)  # the fulfilment's ref is no parcel label
    assert refusal_of(answer) == "ship_unknown_parcel"


def test_closing_prints_the_manifest_with_the_handovers_parcels(client, staff, ready, dock):
    dock.open()
    for tracking in ready["express"]:
        dock.scan(tracking)
    confirm = client.get(f"/ship/h/{dock.ref}/close", headers=HX)
    assert step_of(confirm) == "confirm" and "Yes, close with 2 parcels" in text(confirm)
    closed = dock.close()
    assert closed.status_code == 200 and step_of(closed) == "closed"
    assert "Handover closed: 2 parcels" in text(closed) and "data-autoprint" in closed.get_data(as_text=True)
    with staff.db.reading() as s:
        assert s.scalar(select(Handover.status).where(Handover.ref == dock.ref)).value == "closed"
    manifest = pdf_text(client.get(f"/ship/h/{dock.ref}/manifest.pdf"))
    assert "交接单" in manifest and dock.ref in manifest and "履约快递 LY Express" in manifest
    assert all(t in manifest for t in ready["express"]) and ready["rider"] not in manifest
    assert "共 2 件" in manifest
    labels = client.get(f"/ship/h/{dock.ref}/labels.pdf")
    assert pdf_pages(labels) == 2 and all(t in pdf_text(labels) for t in ready["express"])
    # Coming back later: the manifest, without printing again by itself.
    later = client.get(f"/ship/h/{dock.ref}")
    assert step_of(later) == "closed" and "data-autoprint" not in later.get_data(as_text=True)


def test_a_closed_handover_takes_no_more_parcels(client, staff, ready, dock):
    dock.open()
    dock.close()
    answer = dock.scan(ready["express"][0])
    assert answer.status_code == 422 and refusal_of(answer) == "ship_handover_closed"
    assert parcel_status(staff.db, ready["express"][0]) == "packed"
    empty = client.get(f"/ship/h/{dock.ref}/labels.pdf", headers=HX)
    assert empty.status_code == 422 and refusal_of(empty) == "handover_empty"


def test_the_dock_reads_chinese(client, staff, ready):
    login(client, "D2", "6767")
    dock = Dock(client)
    dock.open()
    answer = dock.scan("NOPE-1")
    assert refusal_of(answer) == "ship_unknown_parcel" and "NOPE-1 不是包裹面单条码" in text(answer)


def test_the_dock_reprints_a_torn_label_from_the_parcel_page(client, staff, ready, dock):
    dock.open()
    loaded = dock.scan(ready["express"][0])
    assert f'href="/pack/parcels/{ready["express"][0]}"' in loaded.get_data(as_text=True)
    page = client.get(f"/pack/parcels/{ready['express'][0]}")
    assert page.status_code == 200 and "shipped" in text(page) and f"handover {dock.ref}" in text(page)
    assert 'href="/ship"' in page.get_data(as_text=True)  # back to the dock, not the bench
    assert ready["express"][0] in pdf_text(client.get(f"/pack/parcels/{ready['express'][0]}/label.pdf"))
    missing = client.get("/pack/parcels/LY000000009999")
    assert refusal_of(missing) == "parcel_not_found" and step_of(missing) is None  # not the bench's home


def test_dock_staff_start_at_the_dock_and_packers_may_not_ship(client, staff):
    answer = client.post("/login/pin", data={"badge": "D1", "pin": "6666"})
    assert answer.headers["Location"].endswith("/ship")
    client.post("/logout")
    login(client, "K1", "5555")
    assert refusal_of(client.get("/ship")) == "forbidden"


def test_an_unknown_handover_or_carrier_goes_back_to_the_carriers(client, staff, dock):
    missing = client.get("/ship/h/H-NOPE", headers=HX)
    assert missing.status_code == 422 and refusal_of(missing) == "handover_not_found" and step_of(missing) == "home"
    unknown = dock.open("pigeon")
    assert unknown.status_code == 422 and refusal_of(unknown) == "ship_unknown_carrier"
