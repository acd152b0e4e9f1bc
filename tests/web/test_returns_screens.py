"""Returns on the dock's handheld: from the dock home, scan a returned
parcel's label, see what is in it and where it usually goes, scan a bin,
confirm; every refusal in place (422, the catalogue's message, nothing
written, one log line), and a retried confirmation counted once."""
from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from handhelds import BARCODES, HX, bin_count, login, refusal_of, text
from sqlalchemy import select
from support import check_invariants, refused, stock_of
from test_pack_screens import add_staff, packed, picked, step_of
from test_ship_screens import Dock

from app.access import create_user
from app.fulfilment import tracking
from app.models import Parcel, ParcelStatus, TrackingStatus


@pytest.fixture
def staff(floor):
    staff = add_staff(floor)
    with floor.db.transaction() as s:
        create_user(s, "D3", "Jia Dock", "dock", "6868", "SH-JD", "en")
    return staff


class Returns:
    """Dock staff's handheld on the returns screens (htmx, like the Scan field)."""

    def __init__(self, client):
        self.client = client
        self.n = 0
        # Not id(self): a later handheld object may get a freed one, and its scan ids would repeat.
        self.device = uuid.uuid4().hex[:12]

    def _id(self) -> str:
        self.n += 1
        return f"return-{self.device}-{self.n:04d}"

    def home(self):
        return self.client.get("/ship/returns", headers=HX)

    def scan(self, code: str):
        return self.client.post("/ship/returns/scan", data={"scan": code, "scan_id": self._id()}, headers=HX)

    def bin(self, tracking_number: str, code: str, chosen: tuple[str, ...] = ()):
        """A bin scanned for the next SKU, after those `chosen`."""
        return self.client.post(f"/ship/returns/p/{tracking_number}/bin",
                                data={"scan": code, "scan_id": self._id(), "bin": list(chosen)}, headers=HX)

    def confirm(self, tracking_number: str, *bins: str, scan_id: str | None = None):
        """The put-away confirmed: each SKU's bin, in the order of the items."""
        return self.client.post(f"/ship/returns/p/{tracking_number}/receive",
                                data={"scan_id": scan_id or self._id(), "bin": list(bins)}, headers=HX)


@pytest.fixture
def back(client, staff):
    """O-1 (two of SKU-A, picked from A-01-01-1) shipped from SH-PD in one
    parcel, which its carrier then reported returned; returns the tracking
    number. Dora (D1, English) is logged in at the dock."""
    ref = picked(client, staff, "O-1", [("SKU-A", 2)], "T-1")
    tn = packed(staff.db, ref, [BARCODES["SKU-A"], BARCODES["SKU-A"]])
    login(client, "D1", "6666")
    dock = Dock(client)
    dock.open()
    assert dock.scan(tn).status_code == 200
    with staff.db.transaction() as s:
        parcel = s.scalar(select(Parcel).where(Parcel.tracking_number == tn))
        tracking.report(s, parcel, TrackingStatus.returned, dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone.utc))
    return tn


@pytest.fixture
def hh(client):
    return Returns(client)


def parcel_status(db, tn: str) -> ParcelStatus:
    with db.reading() as s:
        return s.scalar(select(Parcel.status).where(Parcel.tracking_number == tn))


def test_the_dock_home_opens_returns_and_counts_those_reported(client, staff, back):
    home = client.get("/ship")
    assert 'href="/ship/returns"' in home.get_data(as_text=True)
    assert "Returns · 1 expected" in text(home)
    screen = client.get("/ship/returns")
    assert screen.status_code == 200 and step_of(screen) == "returns"
    assert "Returns: scan the parcel or the return reference" in text(screen)
    assert "1 parcel reported returned by its carrier is not back yet." in text(screen)


def test_a_returned_parcel_goes_back_into_a_bin_scan_by_scan(client, staff, back, hh):
    before = bin_count(staff.db, "A-01-01-1", "SKU-A")
    items = hh.scan(back)
    assert items.status_code == 200 and step_of(items) == "items"
    assert items.headers["HX-Push-Url"] == f"/ship/returns/p/{back}"
    words = text(items)
    assert "Scan the bin for 商品 SKU-A" in words and "SKU 1 of 1" in words
    assert re.search(r'data-quantity>2<', items.get_data(as_text=True))
    assert "Usually in A-01-01-1" in words and "returned · 11-26 17:00" in words and "O-1" in words
    assert "Into its usual bin A-01-01-1" in words

    putaway = hh.bin(back, "a-01-01-1")
    assert putaway.status_code == 200 and step_of(putaway) == "putaway"
    assert putaway.headers["HX-Push-Url"] == f"/ship/returns/p/{back}?bin=A-01-01-1"
    assert "Put 2 units into these bins?" in text(putaway) and "Yes, put away 2 units" in text(putaway)
    assert "Into A-01-01-1" in text(putaway)
    assert step_of(client.get(f"/ship/returns/p/{back}?bin=A-01-01-1", headers=HX)) == "putaway"
    assert bin_count(staff.db, "A-01-01-1", "SKU-A") == before  # nothing yet

    done = hh.confirm(back, "A-01-01-1")
    assert done.status_code == 200 and step_of(done) == "returns"
    assert f"{back} received back: 2 units into A-01-01-1." in text(done)
    assert re.search(rf'<li class="fresh" data-returned="{back}">', done.get_data(as_text=True))
    assert bin_count(staff.db, "A-01-01-1", "SKU-A") == before + 2
    assert stock_of(staff.db, "SH-PD", "SKU-A") == (10, 0)
    assert parcel_status(staff.db, back) == ParcelStatus.returned
    assert "Returns · " not in text(client.get("/ship"))  # none expected any more
    check_invariants(staff.db)


def test_the_same_confirmation_twice_counts_once(client, staff, back, hh):
    first = hh.confirm(back, "A-01-01-1", scan_id="return-retry-0001")
    assert first.status_code == 200
    again = hh.confirm(back, "A-01-01-1", scan_id="return-retry-0001")
    assert again.status_code == 200 and step_of(again) == "returns" and "Already received." in text(again)
    assert bin_count(staff.db, "A-01-01-1", "SKU-A") == 10
    check_invariants(staff.db)


def test_the_parcel_page_says_where_it_went(client, staff, back, hh):
    hh.confirm(back, "A-01-01-1")
    page = client.get(f"/pack/parcels/{back}")
    assert page.status_code == 200 and "received back" in text(page) and "into A-01-01-1" in text(page)


# --- refusals: 422 in place, nothing written, one log line ------------------------------------------

def test_an_unknown_label_is_refused_on_the_returns_screen(client, staff, back, hh, caplog):
    with refused(staff.db, caplog):
        answer = hh.scan("LY999999999990")
    assert answer.status_code == 422 and step_of(answer) == "returns"
    assert refusal_of(answer) == "return_unknown_parcel"
    assert "LY999999999990 is not a parcel label" in text(answer)


def test_a_parcel_still_packed_is_not_a_return(client, staff, back, hh, caplog):
    ref = picked(client, staff, "O-2", [("SKU-B", 1)], "T-2")
    tn = packed(staff.db, ref, [BARCODES["SKU-B"]])
    with refused(staff.db, caplog):
        answer = hh.scan(tn)
    assert answer.status_code == 422 and refusal_of(answer) == "return_not_shipped"
    assert f"Parcel {tn} has not left yet: it is not a return." in text(answer)


def test_a_parcel_of_another_node_is_refused(client, staff, back, caplog):
    client.post("/logout")
    login(client, "D3", "6868")
    with refused(staff.db, caplog):
        answer = Returns(client).scan(back)
    assert answer.status_code == 422 and refusal_of(answer) == "return_other_node"
    assert f"Parcel {back} shipped from SH-PD, not from here." in text(answer)


def test_a_parcel_already_received_back_is_refused_at_the_scan_and_at_the_confirmation(
        client, staff, back, hh, caplog):
    hh.confirm(back, "A-01-01-1")
    with refused(staff.db, caplog):
        answer = hh.scan(back)
    assert answer.status_code == 422 and step_of(answer) == "returns"
    assert refusal_of(answer) == "return_already_received" and "Dora" in text(answer)
    with refused(staff.db, caplog):  # a second handheld confirming the same parcel
        late = hh.confirm(back, "A-01-01-1")
    assert late.status_code == 422 and step_of(late) == "returns" and refusal_of(late) == "return_already_received"
    assert bin_count(staff.db, "A-01-01-1", "SKU-A") == 10


@pytest.mark.parametrize("bin_code", ["Z-99-99-9", "J-01-01-1"], ids=["nowhere", "another_nodes_bin"])
def test_a_bin_not_at_this_node_is_refused_on_the_items_screen(client, staff, back, hh, caplog, bin_code):
    with refused(staff.db, caplog):
        answer = hh.bin(back, bin_code)
    assert answer.status_code == 422 and step_of(answer) == "items"
    assert refusal_of(answer) == "return_unknown_bin" and f"{bin_code} is not a bin at SH-PD" in text(answer)
    with refused(staff.db, caplog):
        confirm = hh.confirm(back, bin_code)
    assert confirm.status_code == 422 and step_of(confirm) == "items"
    assert parcel_status(staff.db, back) == ParcelStatus.shipped


def test_a_delivered_parcel_is_refused(client, staff, back, hh, caplog):
    ref = picked(client, staff, "O-3", [("SKU-B", 1)], "T-3")
    tn = packed(staff.db, ref, [BARCODES["SKU-B"]])
    dock = Dock(client)
    dock.open()
    dock.scan(tn)
    with staff.db.transaction() as s:
        parcel = s.scalar(select(Parcel).where(Parcel.tracking_number == tn))
        tracking.report(s, parcel, TrackingStatus.delivered, dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone.utc))
    with refused(staff.db, caplog):
        answer = hh.scan(tn)
    assert answer.status_code == 422 and refusal_of(answer) == "return_delivered"


def test_a_returned_parcel_scanned_at_outbound_is_refused(client, staff, back, hh):
    hh.confirm(back, "A-01-01-1")
    dock = Dock(client)
    dock.open()
    answer = dock.scan(back)
    assert answer.status_code == 422 and refusal_of(answer) == "parcel_received_back"
    assert "does not leave again" in text(answer)


# --- who, and in which language ----------------------------------------------------------------------

def test_returns_read_chinese(client, staff, back):
    client.post("/logout")
    login(client, "D2", "6767")
    hh = Returns(client)
    assert "退货" in text(hh.home())
    items = hh.scan(back)
    assert "请扫描 商品 SKU-A 的库位" in text(items) and "常放于 A-01-01-1" in text(items)
    assert "放入常用库位 A-01-01-1" in text(items)
    wrong = hh.bin(back, "NOPE-1")
    assert "NOPE-1 不是 SH-PD 的库位" in text(wrong)
    putaway = hh.bin(back, "A-01-01-1")
    assert "确认将 2 件放入这些库位？" in text(putaway) and "放入 A-01-01-1" in text(putaway)
    done = hh.confirm(back, "A-01-01-1")
    assert f"{back} 已退货入库：2 件放入 A-01-01-1。" in text(done)


def test_leads_may_receive_returns_and_packers_may_not(client, staff, back):
    client.post("/logout")
    login(client, "K1", "5555")
    assert refusal_of(client.get("/ship/returns")) == "forbidden"
    client.post("/logout")
    login(client, "L1", "3333")
    assert step_of(client.get("/ship/returns")) == "returns"


def test_the_lead_sees_a_parcel_coming_back_among_the_exceptions(client, staff, back):
    client.post("/logout")
    login(client, "L1", "3333")  # 李娜 reads Chinese
    page = client.get("/lead").get_data(as_text=True)
    [item] = re.findall(r'<li id="exc-\d+"[^>]*data-type="parcel.returned">.*?</li>', page, re.S)
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", item))
    assert "退回中" in words and f"正在退回包裹 {back}：到货后请在出库口的“退货入库”中接收" in words

    # A report that comes after the parcel was received back asks nothing of anyone.
    client.post("/logout")
    login(client, "D1", "6666")
    assert Returns(client).confirm(back, "A-01-01-1").status_code == 200
    with staff.db.transaction() as s:
        parcel = s.scalar(select(Parcel).where(Parcel.tracking_number == back))
        tracking.report(s, parcel, TrackingStatus.returned, dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone.utc))
    client.post("/logout")
    login(client, "L1", "3333")
    page = client.get("/lead").get_data(as_text=True)
    items = re.findall(r'<li id="exc-\d+"[^>]*data-type="parcel.returned">.*?</li>', page, re.S)
    newest, first = items  # newest first
    assert "无需处理" in newest and "无需处理" not in first
    # ...and between them, the parcel arriving at the dock.
    [arrived] = re.findall(r'<li id="exc-\d+"[^>]*data-type="parcel.received_back">.*?</li>', page, re.S)
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", arrived))
    assert f"已退货入库 {back} 放入 A-01-01-1： SKU-A × 2 · D1" in words


def test_an_intercepted_parcel_is_not_received_and_its_items_go_back_where_they_were_picked(client, staff, hh):
    ref = picked(client, staff, "O-2", [("SKU-A", 1)], "T-2")
    tn = packed(staff.db, ref, [BARCODES["SKU-A"]])
    assert client.post("/api/v1/orders/O-2/cancel", headers=staff.headers).status_code == 200
    login(client, "D1", "6666")
    answer = hh.scan(tn)
    assert answer.status_code == 422 and refusal_of(answer) == "return_intercepted"
    assert "unpack it and put the items back where they were picked: SKU-A × 1 → A-01-01-1." in text(answer)
    assert parcel_status(staff.db, tn) == ParcelStatus.intercepted

