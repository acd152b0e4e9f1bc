"""The pack bench on the handheld: a tote or fulfilment opens what must go in,
each unit is scanned into the parcel (a wrong or extra one refused in place),
the parcel is weighed and closed, and its label opens in the browser's print
dialog or goes straight to the bench's printer; a printer that does not
answer leaves the parcel packed. Several parcels per fulfilment, the parcel
page, the packing slip and a day's labels in one PDF. Interception at the
bench. Helpers here are shared with the dock tests (test_ship_screens)."""
from __future__ import annotations

import io
import re

import pytest
from handhelds import BARCODES, HX, login, refusal_of, scans_recorded, text
from pypdf import PdfReader
from sqlalchemy import select

from app.access import create_user
from app.fulfilment import pack, pick
from app.models import Event, Fulfilment, Node, Parcel, User
from app.web.handheld.pack import parse_weight

PROMISED = "2026-11-25T18:00:00+08:00"


# --- the floor: orders picked into totes, a packer, dock staff ------------------------------

@pytest.fixture
def staff(floor):
    return add_staff(floor)


def add_staff(floor):
    """Besides the floor's users (K1 is an English-speaking packer): a
    Chinese-speaking packer, and dock staff in both languages. SH-PD also
    delivers same-city (its riders reach the customer, 3 km away)."""
    with floor.db.transaction() as s:
        s.scalar(select(Node).where(Node.code == "SH-PD")).same_city_radius_km = 10
        create_user(s, "K2", "李雷", "packer", "5656", "SH-PD", "zh")
        create_user(s, "D1", "Dora", "dock", "6666", "SH-PD", "en")
        create_user(s, "D2", "王强", "dock", "6767", "SH-PD", "zh")
    return floor


def picked(client, floor, external_id: str, lines: list[tuple[str, int]], tote: str,
           delivery: str = "express") -> str:
    """An order taken through the API and picked into `tote` by P1 (through
    the pick domain, scan by scan). Returns the fulfilment ref."""
    import support
    body = support.order_body(external_id, lines, promised_by=PROMISED, delivery=delivery)
    answer = client.post("/api/v1/orders", json=body, headers=floor.headers)
    assert answer.status_code == 201, answer.get_json()
    ref = answer.get_json()["fulfilments"][0]["id"]
    db = floor.db
    with db.transaction() as s:
        pick.claim_next(s, s.scalar(select(User).where(User.code == "P1")), 1)
    for n in range(200):
        with db.transaction() as s:
            picker = s.scalar(select(User).where(User.code == "P1"))
            pl = pick.held_by(s, picker)
            if pl is None:
                break
            if pick.next_tote_slot(pl) is not None:
                code = tote
            else:
                line = pick.current_line(pl)
                code = {"location": line.location.code, "product": BARCODES[line.sku.code],
                        "quantity": BARCODES[line.sku.code], "tote": pick.slot_of(pl, line).tote}[line.step.value]
            pick.scan(s, picker, f"pick-{tote}-{n:04d}", code)
    assert floor.status(ref) == "picked"
    return ref


def packed(db, ref: str, codes: list[str], weight_g: int = 900) -> str:
    """Pack `codes` into one parcel of `ref` and close it (domain, as K1);
    returns the tracking number."""
    with db.transaction() as s:
        f = s.scalar(select(Fulfilment).where(Fulfilment.ref == ref))
        for code in codes:
            pack.scan_item(s, f, code)
        return pack.close_parcel(s, f, weight_g, s.scalar(select(User).where(User.code == "K1")),
                                 "6901234").tracking_number


def parcels_of(db, ref: str) -> list[tuple[int, str, dict[str, int]]]:
    """(number, status, {sku: quantity}) of a fulfilment's parcels."""
    with db.reading() as s:
        f = s.scalar(select(Fulfilment).where(Fulfilment.ref == ref))
        return [(p.number, p.status.value, {i.sku.code: i.quantity for i in p.items}) for p in f.parcels]


def pdf_text(answer) -> str:
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    assert answer.mimetype == "application/pdf"
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(answer.data)).pages)


def pdf_pages(answer) -> int:
    return len(PdfReader(io.BytesIO(answer.data)).pages)


def tracking_on(answer) -> str:
    found = re.search(r"data-tracking>([A-Z0-9]+)<", answer.get_data(as_text=True))
    assert found, text(answer)
    return found.group(1)


def step_of(answer) -> str | None:
    found = re.search(r'<main id="screen"[^>]*data-step="([a-z]+)"', answer.get_data(as_text=True))
    return found.group(1) if found else None


class Bench:
    """A packer's handheld: scans as the Scan field sends them (htmx)."""

    def __init__(self, client):
        self.client = client
        self.n = 0

    def _id(self) -> str:
        self.n += 1
        return f"bench-{id(self)}-{self.n:04d}"

    def start(self, code: str):
        return self.client.post("/pack/start", data={"scan": code, "scan_id": self._id()}, headers=HX)

    def item(self, ref: str, code: str, scan_id: str | None = None):
        return self.client.post(f"/pack/f/{ref}/scan", data={"scan": code, "scan_id": scan_id or self._id()},
                                headers=HX)

    def close(self, ref: str, weight: str, scan_id: str | None = None):
        return self.client.post(f"/pack/f/{ref}/close", data={"weight": weight, "scan_id": scan_id or self._id()},
                                headers=HX)

    def printer(self, name: str):
        return self.client.post("/pack/printer", data={"printer": name}, headers=HX)


@pytest.fixture
def bench(client, staff):
    login(client, "K1", "5555")
    return Bench(client)


# --- the bench ----------------------------------------------------------------------------

def test_home_shows_the_totes_waiting_and_the_printer_choice(client, staff, bench, app):
    picked(client, staff, "O-1", [("SKU-A", 1)], "T-1")
    app.config["LUYUE"].printers = "bench-3=zpl://127.0.0.1:9100"
    home = client.get("/pack")
    assert home.status_code == 200 and step_of(home) == "home"
    assert "SH-PD" in text(home) and "1 tote waiting to be packed" in text(home)
    assert "Browser print dialog" in text(home) and "bench-3 · ZPL 100x150" in text(home)


def test_a_tote_opens_what_must_go_in(client, staff, bench):
    ref = picked(client, staff, "O-1", [("SKU-A", 2), ("SKU-B", 1)], "T-1")
    screen = bench.start("T-1")
    assert screen.status_code == 200 and step_of(screen) == "items"
    words = text(screen)
    assert ref in words and "Parcel 1" in words and "3 units left" in words
    assert "商品 SKU-A" in words and BARCODES["SKU-A"] in words and "0 / 2" in words and "0 / 1" in words
    assert screen.headers["HX-Push-Url"] == f"/pack/f/{ref}"


def test_the_fulfilment_ref_opens_it_too(client, staff, bench):
    ref = picked(client, staff, "O-1", [("SKU-A", 1)], "T-1")
    assert step_of(bench.start(ref)) == "items"
    assert step_of(client.get(f"/pack/f/{ref}")) == "items"


def test_each_unit_scanned_counts_and_the_last_one_asks_for_the_weight(client, staff, bench):
    ref = picked(client, staff, "O-1", [("SKU-A", 2), ("SKU-B", 1)], "T-1")
    first = bench.item(ref, BARCODES["SKU-A"])
    assert first.status_code == 200 and "SKU-A packed." in text(first) and "1 / 2" in text(first)
    assert step_of(first) == "items"
    bench.item(ref, BARCODES["SKU-A"])
    last = bench.item(ref, "]E0" + BARCODES["SKU-B"])  # with the scanner's AIM prefix
    assert step_of(last) == "weight" and "3 units in the box" in text(last)
    assert parcels_of(staff.db, ref) == [(1, "open", {"SKU-A": 2, "SKU-B": 1})]


@pytest.mark.parametrize("code, key, words", [
    (BARCODES["SKU-C"], "pack_wrong_product", "SKU-C is not in"),
    ("NOT-A-PRODUCT", "pack_unknown_product", "NOT-A-PRODUCT is not a product barcode"),
])
def test_a_wrong_item_is_refused_in_place_and_nothing_is_counted(client, staff, bench, code, key, words):
    ref = picked(client, staff, "O-1", [("SKU-A", 1)], "T-1")
    before = scans_recorded(staff.db)
    answer = bench.item(ref, code)
    assert answer.status_code == 422 and refusal_of(answer) == key and step_of(answer) == "items"
    assert words in text(answer)
    assert parcels_of(staff.db, ref) == [] and scans_recorded(staff.db) == before


def test_an_extra_unit_is_refused_and_says_how_many_were_needed(client, staff, bench):
    ref = picked(client, staff, "O-1", [("SKU-A", 2), ("SKU-B", 1)], "T-1")
    bench.item(ref, BARCODES["SKU-A"])
    bench.item(ref, BARCODES["SKU-A"])
    extra = bench.item(ref, BARCODES["SKU-A"])
    assert extra.status_code == 422 and refusal_of(extra) == "pack_extra_item"
    assert "Extra item: all 2 of SKU-A are already packed. Set this one aside." in text(extra)
    assert parcels_of(staff.db, ref) == [(1, "open", {"SKU-A": 2})]


def test_a_parcel_left_half_filled_is_offered_to_resume(client, staff, bench):
    ref = picked(client, staff, "O-1", [("SKU-A", 2)], "T-1")
    bench.item(ref, BARCODES["SKU-A"])
    later = client.get("/pack", headers=HX)
    assert f"Resume {ref}" in text(later) and f'href="/pack/f/{ref}"' in later.get_data(as_text=True)
    assert "1 / 2" in text(client.get(f"/pack/f/{ref}"))


def test_the_same_scan_id_counts_once(client, staff, bench):
    ref = picked(client, staff, "O-1", [("SKU-A", 2)], "T-1")
    bench.item(ref, BARCODES["SKU-A"], scan_id="retry-0000-0001")
    again = bench.item(ref, BARCODES["SKU-A"], scan_id="retry-0000-0001")
    assert again.status_code == 200 and "Already counted." in text(again) and "1 / 2" in text(again)
    assert parcels_of(staff.db, ref) == [(1, "open", {"SKU-A": 1})]


def test_an_empty_parcel_cannot_be_closed(client, staff, bench):
    ref = picked(client, staff, "O-1", [("SKU-A", 1)], "T-1")
    answer = bench.close(ref, "500")
    assert answer.status_code == 422 and refusal_of(answer) == "pack_empty_parcel"
    assert "The parcel is empty" in text(answer) and step_of(answer) == "items"


@pytest.mark.parametrize("weight", ["", "abc", "0", "70001"])
def test_a_parcel_needs_a_weight(client, staff, bench, weight):
    ref = picked(client, staff, "O-1", [("SKU-A", 1)], "T-1")
    bench.item(ref, BARCODES["SKU-A"])
    answer = bench.close(ref, weight)
    assert answer.status_code == 422 and refusal_of(answer) == "pack_weight_needed"
    assert step_of(answer) == "weight" and "weight in grams" in text(answer)
    assert parcels_of(staff.db, ref) == [(1, "open", {"SKU-A": 1})]


@pytest.mark.parametrize("raw, grams", [
    ("1250", 1250), (" 1250 g", 1250), ("1.25 kg", 1250), ("1,250KG", 1250), ("ST,GS,+  1.250kg\r", 1250),
    ("0.8", 800), ("2 lb", 907), ("", None), ("kg", None), ("0", None),
])
def test_weights_typed_or_sent_by_a_scale(raw, grams):
    assert parse_weight(raw) == grams


def test_closing_the_last_parcel_packs_the_fulfilment_and_opens_its_label(client, staff, bench):
    ref = picked(client, staff, "O-1", [("SKU-A", 2), ("SKU-B", 1)], "T-1")
    for code in (BARCODES["SKU-A"], BARCODES["SKU-B"], BARCODES["SKU-A"]):
        bench.item(ref, code)
    done = bench.close(ref, "1.25 kg")
    assert done.status_code == 200 and step_of(done) == "done"
    assert f"{ref} packed" in text(done) and "1 of 1 · 1.25 kg · packed" in text(done)
    assert staff.status(ref) == "packed"
    tracking = re.search(r"(LY\d{12})", text(done)).group(1)
    # The browser prints: the label PDF is in the screen, to print on load.
    html = done.get_data(as_text=True)
    assert f'data-autoprint="/pack/parcels/{tracking}/label.pdf"' in html
    label = client.get(f"/pack/parcels/{tracking}/label.pdf")
    # Printed from a hidden frame of this screen: framed by this site only.
    assert label.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert label.headers["X-Frame-Options"] == "SAMEORIGIN" and label.headers["X-Content-Type-Options"] == "nosniff"
    words = pdf_text(label)
    assert tracking in words and ref in words and "O-1" in words and "138****0000" in words
    assert "件数 1/1" in words and "1.25 kg" in words and "13800000000" not in words
    with staff.db.reading() as s:
        assert s.scalar(select(Parcel.label_printed_at).where(Parcel.tracking_number == tracking)) is not None


def test_a_full_box_closes_early_and_the_next_parcel_takes_the_rest(client, staff, bench):
    ref = picked(client, staff, "O-1", [("SKU-A", 3)], "T-1")
    bench.item(ref, BARCODES["SKU-A"])
    bench.item(ref, BARCODES["SKU-A"])
    weigh = client.get(f"/pack/f/{ref}/weight", headers=HX)
    assert step_of(weigh) == "weight" and "1 unit stays for the next parcel." in text(weigh)
    closed = bench.close(ref, "1400")
    assert closed.status_code == 200 and step_of(closed) == "closed"
    assert "Parcel 1 closed" in text(closed) and "1 unit left" in text(closed) and "Next parcel" in text(closed)
    first = tracking_on(closed)
    assert "件数 1/2" in pdf_text(client.get(f"/pack/parcels/{first}/label.pdf"))
    assert staff.status(ref) == "picked"

    second_box = client.get(f"/pack/f/{ref}", headers=HX)
    assert step_of(second_box) == "items" and "Parcel 2" in text(second_box) and "2 / 3" in text(second_box)
    assert step_of(bench.item(ref, BARCODES["SKU-A"])) == "weight"
    done = bench.close(ref, "700")
    assert step_of(done) == "done" and staff.status(ref) == "packed"
    assert parcels_of(staff.db, ref) == [(1, "packed", {"SKU-A": 2}), (2, "packed", {"SKU-A": 1})]
    assert "件数 1/2" in pdf_text(client.get(f"/pack/parcels/{first}/label.pdf"))


def test_a_repeated_close_answers_with_the_parcel_closed_the_first_time(client, staff, bench):
    ref = picked(client, staff, "O-1", [("SKU-A", 1)], "T-1")
    bench.item(ref, BARCODES["SKU-A"])
    first = bench.close(ref, "500", scan_id="close-0000-0001")
    again = bench.close(ref, "500", scan_id="close-0000-0001")
    assert step_of(first) == step_of(again) == "done" and "Already counted." in text(again)
    assert parcels_of(staff.db, ref) == [(1, "packed", {"SKU-A": 1})]


def test_a_packed_fulfilment_scanned_again_says_so(client, staff, bench):
    ref = picked(client, staff, "O-1", [("SKU-A", 1)], "T-1")
    packed(staff.db, ref, [BARCODES["SKU-A"]])
    answer = bench.start(ref)
    assert answer.status_code == 422 and refusal_of(answer) == "pack_already_packed"
    assert "already packed (parcels: 1)" in text(answer)


def test_a_cancelled_fulfilment_is_intercepted_at_the_bench(client, staff, bench):
    ref = picked(client, staff, "O-1", [("SKU-A", 1)], "T-1")
    assert client.post("/api/v1/orders/O-1/cancel", headers=staff.headers).status_code == 200
    answer = bench.start("T-1")
    assert answer.status_code == 422 and refusal_of(answer) == "pack_intercepted"
    assert ("STOP: order of " + ref + " was cancelled. Do not pack; put the items back where they were picked: "
            "SKU-A × 1 → A-01-01-1.") in text(answer)
    assert step_of(answer) == "home"
    assert "js/outbound.js" in answer.get_data(as_text=True)  # the alarm


def test_a_fulfilment_cancelled_while_packing_is_intercepted_at_the_next_scan(client, staff, bench):
    ref = picked(client, staff, "O-1", [("SKU-A", 2)], "T-1")
    bench.item(ref, BARCODES["SKU-A"])
    assert client.post("/api/v1/orders/O-1/cancel", headers=staff.headers).status_code == 200
    answer = bench.item(ref, BARCODES["SKU-A"])
    assert answer.status_code == 422 and refusal_of(answer) == "pack_intercepted" and step_of(answer) == "home"
    assert refusal_of(client.get(f"/pack/f/{ref}")) == "pack_intercepted"


def test_an_unknown_tote_is_refused(client, staff, bench):
    answer = bench.start("T-404")
    assert answer.status_code == 422 and refusal_of(answer) == "pack_not_found"
    assert "T-404 is not a picked tote or fulfilment at this node" in text(answer)


def test_refusals_speak_the_packers_language(client, staff):
    ref = picked(client, staff, "O-1", [("SKU-A", 1)], "T-1")
    login(client, "K2", "5656")
    answer = Bench(client).item(ref, BARCODES["SKU-C"])
    assert refusal_of(answer) == "pack_wrong_product" and f"SKU-C 不属于 {ref}" in text(answer)


# --- printers -----------------------------------------------------------------------------

def test_a_bench_printer_receives_the_label_as_zpl(client, staff, bench, app, zpl_printer):
    app.config["LUYUE"].printers = f"bench-1=zpl://127.0.0.1:{zpl_printer.port}?timeout=3"
    chosen = bench.printer("bench-1")
    assert chosen.status_code == 200 and "Labels go to printer bench-1." in text(chosen)
    ref = picked(client, staff, "O-1", [("SKU-A", 1)], "T-1")
    bench.item(ref, BARCODES["SKU-A"])
    done = bench.close(ref, "600")
    assert done.status_code == 200 and "Label sent to printer bench-1." in text(done)
    assert "data-autoprint" not in done.get_data(as_text=True)
    zpl = zpl_printer.wait(5).decode("utf-8")
    [tracking] = re.findall(r"LY\d{12}", text(done))[:1]
    assert zpl.startswith("^XA") and tracking in zpl and "100x150 mm at 203 dpi" in zpl
    with staff.db.reading() as s:
        assert s.scalar(select(Parcel.label_printed_at).where(Parcel.tracking_number == tracking)) is not None


def test_a_printer_that_does_not_answer_leaves_the_parcel_packed(client, staff, bench, app, closed_port):
    app.config["LUYUE"].printers = f"bench-2=zpl://127.0.0.1:{closed_port}?timeout=1"
    bench.printer("bench-2")
    ref = picked(client, staff, "O-1", [("SKU-A", 1)], "T-1")
    bench.item(ref, BARCODES["SKU-A"])
    answer = bench.close(ref, "600")
    assert answer.status_code == 422 and refusal_of(answer) == "printer_unavailable"
    assert "Printer bench-2 did not answer" in text(answer) and "The parcel stays packed" in text(answer)
    assert staff.status(ref) == "packed" and parcels_of(staff.db, ref) == [(1, "packed", {"SKU-A": 1})]
    tracking = re.search(r"(LY\d{12})", text(answer)).group(1)
    assert f"/pack/parcels/{tracking}/print" in answer.get_data(as_text=True)  # try again
    again = client.post(f"/pack/parcels/{tracking}/print", headers=HX)
    assert again.status_code == 422 and refusal_of(again) == "printer_unavailable"
    with staff.db.reading() as s:
        assert s.scalar(select(Parcel.label_printed_at).where(Parcel.tracking_number == tracking)) is None
        # The lead sees both failures; the sales channel's feed does not.
        failures = s.execute(select(Event.data, Event.node_id, Event.channel_id)
                             .where(Event.type == "printer.failed").order_by(Event.seq)).all()
        node_id = s.scalar(select(Fulfilment.node_id).where(Fulfilment.ref == ref))
    assert [(d["printer"], d["parcel"], d["fulfilment"]) for d, _, _ in failures] == [("bench-2", tracking, ref)] * 2
    assert all(node == node_id and channel is None for _, node, channel in failures)


def test_an_unknown_printer_cannot_be_chosen_and_none_means_the_browser(client, bench, app):
    app.config["LUYUE"].printers = "bench-1=zpl://127.0.0.1:9100"
    answer = bench.printer("bench-9")
    assert answer.status_code == 422 and refusal_of(answer) == "printer_unknown"
    assert "Labels open in the browser&#39;s print dialog." in text(bench.printer(""))


# --- the parcel page, the slip, many labels -------------------------------------------------

def test_the_parcel_page_shows_the_parcel_and_reprints_its_label(client, staff, bench):
    ref = picked(client, staff, "O-1", [("SKU-A", 2), ("SKU-B", 1)], "T-1")
    tracking = packed(staff.db, ref, [BARCODES["SKU-A"], BARCODES["SKU-A"], BARCODES["SKU-B"]], 1500)
    page = client.get(f"/pack/parcels/{tracking}")
    assert page.status_code == 200 and step_of(page) == "parcel"
    words = text(page)
    with staff.db.reading() as s:
        sscc = s.scalar(select(Parcel.sscc).where(Parcel.tracking_number == tracking))
    for expected in (tracking, "履约快递 LY Express", f"(00) {sscc}", "1 of 1 · 1.50 kg", "packed", ref, "O-1",
                     "商品 SKU-A", "商品 SKU-B", "Label not printed yet"):
        assert expected in words, expected
    again = client.post(f"/pack/parcels/{tracking}/print", headers=HX)
    assert again.status_code == 200 and "data-autoprint" in again.get_data(as_text=True)
    # Scanning the label at the bench's home opens the same page.
    assert step_of(bench.start(tracking)) == "parcel"
    assert step_of(bench.start("]C100" + sscc)) == "parcel"


def test_the_packing_slip_lists_what_is_in_the_parcel(client, staff, bench):
    ref = picked(client, staff, "O-1", [("SKU-A", 2), ("SKU-B", 1)], "T-1")
    tracking = packed(staff.db, ref, [BARCODES["SKU-A"], BARCODES["SKU-B"]], 1500)
    words = pdf_text(client.get(f"/pack/parcels/{tracking}/slip.pdf"))
    assert "装箱单" in words and ref in words and "O-1" in words and "SKU-A" in words and "SKU-B" in words


def test_a_days_labels_come_in_one_pdf(client, staff, bench):
    refs = [picked(client, staff, f"O-{n}", [("SKU-A", 1)], f"T-{n}") for n in (1, 2)]
    tracking = [packed(staff.db, ref, [BARCODES["SKU-A"]]) for ref in refs]
    batch = client.get("/pack/labels.pdf")
    words = pdf_text(batch)
    assert pdf_pages(batch) == 2 and all(t in words for t in tracking)
    small = client.get("/pack/labels.pdf?size=76x130")
    assert pdf_pages(small) == 2
    none = client.get("/pack/labels.pdf?day=2020-01-01", headers=HX)
    assert none.status_code == 422 and refusal_of(none) == "labels_none"


def test_labels_open_in_the_configured_size(client, staff, bench, app):
    ref = picked(client, staff, "O-1", [("SKU-A", 1)], "T-1")
    tracking = packed(staff.db, ref, [BARCODES["SKU-A"]])
    mm = 72 / 25.4
    default = PdfReader(io.BytesIO(client.get(f"/pack/parcels/{tracking}/label.pdf").data)).pages[0].mediabox
    assert (round(float(default.width) / mm), round(float(default.height) / mm)) == (100, 150)
    app.config["LUYUE"].label_size = "76x130"
    small = PdfReader(io.BytesIO(client.get(f"/pack/parcels/{tracking}/label.pdf").data)).pages[0].mediabox
    assert (round(float(small.width) / mm), round(float(small.height) / mm)) == (76, 130)


def test_a_parcel_of_another_node_is_not_found(client, staff, bench):
    answer = client.get("/pack/parcels/LY000000009999", headers=HX)
    assert answer.status_code == 422 and refusal_of(answer) == "parcel_not_found"


# --- who may pack ---------------------------------------------------------------------------

def test_packers_start_at_the_bench_and_pickers_may_not_pack(client, staff):
    answer = client.post("/login/pin", data={"badge": "K1", "pin": "5555"})
    assert answer.headers["Location"].endswith("/pack")
    client.post("/logout")
    login(client, "P1", "1111")
    refused = client.get("/pack")
    assert refused.status_code == 403 and refusal_of(refused) == "forbidden"


def test_the_menu_links_the_packers_and_the_docks_screens(client, staff):
    login(client, "L1", "3333")
    menu = text(client.get("/menu"))
    assert "打包" in menu and "出库" in menu
