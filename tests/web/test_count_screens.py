"""The cycle count on the handheld (/count) and the lead's counts page:
blind counts, scan by scan or keyed, applied within the limit or sent to a
lead, who approves or orders a recount; refusals in place, in the worker's
language; a retried confirmation counts once."""
from __future__ import annotations

import re

from handhelds import BARCODES, HX, bin_count, login, refusal_of, text
from sqlalchemy import select

from app.models import CountStatus, StockCount

BIN = "A-01-01-1"  # 10 of SKU-A on the books


def _step(answer) -> str | None:
    found = re.search(r'data-step="([a-z-]+)"', answer.get_data(as_text=True))
    return found.group(1) if found else None


def _started(answer) -> str:
    return re.search(r'name="started" value="([^"]+)"', answer.get_data(as_text=True)).group(1)


def _tally(answer) -> int:
    return int(re.search(r"data-tally>(\d+)<", answer.get_data(as_text=True)).group(1))


def _count_at_bin(client, units_scanned: int):
    """Scan the bin, then the product and `units_scanned - 1` more units; the tally screen."""
    at_bin = client.post("/count/scan", data={"scan": BIN}, headers=HX)
    assert _step(at_bin) == "count-bin", text(at_bin)
    started = _started(at_bin)
    tally = client.post(f"/count/b/{BIN}/product", data={"scan": BARCODES["SKU-A"], "started": started}, headers=HX)
    for _ in range(units_scanned - 1):
        tally = client.post(f"/count/b/{BIN}/s/SKU-A/unit",
                            data={"scan": BARCODES["SKU-A"], "n": _tally(tally), "started": started}, headers=HX)
    return tally, started


def _confirm(client, quantity, started, scan_id="count-scan-0001"):
    return client.post(f"/count/b/{BIN}/s/SKU-A/confirm",
                       data={"quantity": str(quantity), "started": started, "scan_id": scan_id}, headers=HX)


def test_a_blind_count_scanned_unit_by_unit_is_applied_and_a_retried_confirmation_counts_once(client, floor):
    login(client, "P2", "2222")  # Tom, English
    tally, started = _count_at_bin(client, 3)
    assert _step(tally) == "count-tally" and _tally(tally) == 3
    assert "10" not in text(tally)  # blind: the books' figure is not shown
    done = _confirm(client, 11, started)
    assert done.status_code == 200 and _step(done) == "count-bin"
    assert "Counted: 11 × SKU-A in A-01-01-1." in text(done)
    assert bin_count(floor.db, BIN, "SKU-A") == 11
    again = _confirm(client, 11, started)
    assert "Already counted." in text(again) and bin_count(floor.db, BIN, "SKU-A") == 11


def test_a_variance_over_the_limit_goes_to_the_lead_who_approves_it(client, floor, app):
    login(client, "P2", "2222")
    _, started = _count_at_bin(client, 1)
    sent = _confirm(client, 4, started)  # 6 missing: over the default limit of 2
    assert "a lead will check it" in text(sent) and bin_count(floor.db, BIN, "SKU-A") == 10

    lead = app.test_client()
    login(lead, "L1", "3333")  # 李娜, Chinese
    page = lead.get("/lead/counts")
    assert page.status_code == 200 and "-6" in text(page) and "待处理" in text(page)
    with floor.db.reading() as s:
        count_id = s.scalar(select(StockCount.id).where(StockCount.status == CountStatus.pending_approval))
    approved = lead.post(f"/lead/counts/{count_id}/approve", headers=HX)
    assert approved.status_code == 200 and bin_count(floor.db, BIN, "SKU-A") == 4
    late = lead.post(f"/lead/counts/{count_id}/recount", headers=HX)
    assert late.status_code == 422 and refusal_of(late) == "count_already_decided"
    assert "已处理" in text(late)


def test_a_lead_asks_for_a_count_and_it_is_on_the_counters_list(client, floor, app):
    lead = app.test_client()
    login(lead, "L1", "3333")
    asked = lead.post("/lead/counts/request", data={"bin": BIN, "sku": "SKU-A"}, headers=HX)
    assert asked.status_code == 200 and 'data-task="' in asked.get_data(as_text=True)
    wrong = lead.post("/lead/counts/request", data={"bin": "Z-99", "sku": "SKU-A"}, headers=HX)
    assert wrong.status_code == 422 and refusal_of(wrong) == "count_unknown_bin"
    empty = lead.post("/lead/counts/request", data={}, headers=HX)
    assert empty.status_code == 422 and refusal_of(empty) == "scan_unreadable"

    login(client, "P2", "2222")
    home = client.get("/count", headers=HX)
    assert f'data-bin="{BIN}" data-sku="SKU-A"' in home.get_data(as_text=True)
    assert "asked by a lead" in text(home)
    at_bin = client.get(f"/count/b/{BIN}", headers=HX)
    zero = client.get(f"/count/b/{BIN}/s/SKU-A?n=0&started={_started(at_bin)}", headers=HX)
    assert _tally(zero) == 0
    _confirm(client, 10, _started(at_bin))
    assert 'data-task="' not in client.get("/count", headers=HX).get_data(as_text=True)


def test_wrong_scans_are_refused_in_place_and_nothing_is_written(client, floor):
    login(client, "P1", "1111")  # 张伟, Chinese
    unknown = client.post("/count/scan", data={"scan": "Z-99"}, headers=HX)
    assert unknown.status_code == 422 and refusal_of(unknown) == "count_unknown_bin" and "不是" in text(unknown)
    tally, started = _count_at_bin(client, 2)
    other = client.post(f"/count/b/{BIN}/s/SKU-A/unit",
                        data={"scan": BARCODES["SKU-B"], "n": 2, "started": started}, headers=HX)
    assert other.status_code == 422 and refusal_of(other) == "count_other_product" and _tally(other) == 2
    bad = _confirm(client, "lots", started)
    assert bad.status_code == 422 and refusal_of(bad) == "count_quantity_invalid"
    not_product = client.post(f"/count/b/{BIN}/product", data={"scan": "NOTHING-1", "started": started}, headers=HX)
    assert not_product.status_code == 422 and refusal_of(not_product) == "count_unknown_product"
    with floor.db.reading() as s:
        assert s.scalar(select(StockCount.id)) is None
    assert bin_count(floor.db, BIN, "SKU-A") == 10


def test_a_packer_cannot_count(client, floor):
    login(client, "K1", "5555")
    answer = client.get("/count", headers=HX)
    assert answer.status_code == 403 and refusal_of(answer) == "forbidden"
