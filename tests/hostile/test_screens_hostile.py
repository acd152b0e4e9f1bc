"""Every scan and form field of every screen, and the live screens' query,
against the corpus: a 4xx or a refusal on the screen in the worker's
language, never a 5xx, at most 1 s of CPU, nothing written."""
from __future__ import annotations

import pytest
from hostile import attack
from corpus import Field

HX = {"HX-Request": "true"}


def login_fields() -> list[Field]:
    return [
        Field("scan", "nobody", "POST", "/login"),
        Field("badge", "nobody", "POST", "/login/pin", data={"pin": "1111"}),
        # An unknown badge: hostile PINs are refused, not counted against anyone.
        Field("pin", "nobody", "POST", "/login/pin", data={"badge": "NOBODY"}),
        Field("next", "nobody", "POST", "/login/pin", data={"badge": "NOBODY", "pin": "1"}),
        Field("language", "nobody", "POST", "/language"),
        Field("next", "nobody", "GET", "/login", where="query"),
    ]


def test_hostile_input_on_the_login_screens_is_refused_in_either_language(site):
    site.language["nobody"] = "zh"
    assert attack(site, login_fields(), headers={"Accept-Language": "zh-CN"}) > 100
    site.clients.clear()
    site.language["nobody"] = "en"
    assert attack(site, login_fields(), headers={"Accept-Language": "en"}) > 100


def test_hostile_scans_on_the_pick_screens_are_refused_and_count_nothing(site):
    # At the tote step any label is a tote: only what the limits refuse, and
    # a label longer than a tote's (PickListFulfilment.tote is 64).
    attack(site, [Field("scan", "P1", "POST", "/pick/scan", refused_only=True)], headers=HX)
    answer = site.client("P1").post("/pick/scan", data={"scan": "T" * 65}, headers=HX)
    assert answer.status_code == 422 and "不是周转箱标签" in answer.get_data(as_text=True)
    assert site.client("P1").post("/pick/scan", data={"scan": "TOTE-1"}, headers=HX).status_code == 200
    attack(site, [
        Field("scan", "P1", "POST", "/pick/scan"),
        Field("quantity", "P1", "POST", "/pick/quantity"),
        Field("scan_id", "P1", "POST", "/pick/scan", data={"scan": "NOT-A-BIN"}),
        Field("ref", "P1", "GET", "/pick/done/{v}", where="path"),
        Field("after", "P1", "GET", "/pick/live", where="query"),
        Field("orders", "P1", "POST", "/pick/claim", refused_only=True),
        Field("ref", "L1", "POST", "/pick/lists/{v}/release", where="path"),
    ], headers=HX)


def test_hostile_input_on_the_pack_screens_is_refused(site):
    ref = site.refs[1]
    attack(site, [
        Field("scan", "K1", "POST", "/pack/start"),
        Field("scan", "K1", "POST", f"/pack/f/{ref}/scan"),
        Field("weight", "K1", "POST", f"/pack/f/{ref}/close"),
        Field("printer", "K1", "POST", "/pack/printer"),
        Field("day", "K1", "GET", "/pack/labels.pdf", where="query"),
        Field("ref", "K1", "GET", "/pack/f/{v}", where="path"),
        Field("tracking", "K1", "GET", "/pack/parcels/{v}", where="path"),
        Field("tracking", "K1", "POST", "/pack/parcels/{v}/print", where="path"),
        Field("size", "K1", "GET", "/pack/labels.pdf", where="query"),
    ], headers=HX)


def test_hostile_input_on_the_dock_and_returns_screens_is_refused(site):
    attack(site, [
        Field("carrier", "D1", "POST", "/ship/open"),
        Field("scan", "D1", "POST", f"/ship/h/{site.handover}/scan"),
        Field("ref", "D1", "GET", "/ship/h/{v}", where="path"),
        Field("scan", "D1", "POST", "/returns/scan"),
        Field("tracking", "D1", "GET", "/returns/p/{v}", where="path"),
        Field("scan", "D1", "POST", "/returns/p/NO-SUCH-PARCEL/bin"),
        Field("ref", "D1", "GET", "/returns/r/{v}", where="path"),
        Field("scan", "D1", "POST", "/returns/r/NO-SUCH-RMA/scan"),
        Field("scan", "D1", "POST", "/returns/r/NO-SUCH-RMA/u/SKU-A/sellable"),
        Field("quantity", "D1", "POST", "/returns/r/NO-SUCH-RMA/u/SKU-A/damaged"),
        Field("disposition", "D1", "POST", "/returns/r/NO-SUCH-RMA/u/SKU-A/{v}", where="path"),
    ], headers=HX)


def test_hostile_input_on_the_count_screens_is_refused(site):
    attack(site, [
        Field("scan", "P1", "POST", "/count/scan"),
        Field("scan", "P1", "POST", "/count/b/A-01-01-1/product"),
        Field("code", "P1", "GET", "/count/b/{v}", where="path"),
        Field("quantity", "P1", "POST", "/count/b/A-01-01-1/s/SKU-A/confirm", refused_only=True),
        Field("scan", "P1", "POST", "/count/b/A-01-01-1/s/SKU-A/unit"),
        Field("sku", "P1", "GET", "/count/b/A-01-01-1/s/{v}", where="path"),
    ], headers=HX)


def test_hostile_input_on_the_rider_screens_is_refused(site):
    attack(site, [
        Field("scan", "R1", "POST", "/ride/pickup"),
        Field("code", "R1", "POST", "/ride/drops/1/code"),
        Field("note", "R1", "POST", "/ride/drops/1/failed"),
        Field("action", "L1", "POST", "/ride/locked/1/{v}", where="path"),  # the lead's page of locked codes
        Field("scan_id", "R1", "POST", "/ride/pickup", data={"scan": "NO-SUCH-PARCEL"}),
    ], headers=HX)


def test_hostile_input_on_the_lead_forms_and_reports_is_refused(site):
    ref = site.refs[1]
    attack(site, [
        Field("q", "L1", "GET", "/lead/find", where="query"),
        Field("reason", "L2", "POST", f"/lead/f/{ref}/hold", refused_only=True),
        Field("hours", "L1", "POST", f"/lead/f/{ref}/hold", data={"reason": ""}),
        Field("bin", "L2", "POST", "/lead/counts/request", data={"sku": "NO-SUCH-SKU"}),
        Field("sku", "L1", "POST", "/lead/counts/request", data={"bin": "NO-SUCH-BIN"}),
        Field("ref", "L2", "GET", "/lead/f/{v}", where="path"),
        Field("node", "L1", "GET", "/reports/sla", where="query"),
        Field("from", "L2", "GET", "/reports/sla", where="query"),
        Field("node", "L1", "GET", "/reports/sla.csv", where="query"),
        Field("after", "L1", "GET", "/lead/live", where="query"),
        Field("node", "L2", "GET", "/lead/live", where="query"),
        # The fulfilment was not delivered: nothing to return, whatever is typed.
        Field("q-SKU-B", "L1", "POST", f"/lead/f/{ref}/return", data={"reason": "damaged"}),
        Field("reason", "L2", "POST", f"/lead/f/{ref}/return", data={"q-SKU-B": "1"}),
        Field("decision", "L1", "POST", "/lead/counts/1/{v}", where="path"),
    ], headers=HX)


@pytest.mark.parametrize("url", ["/ride/drops/2147483648", "/ride/proofs/2147483648", "/ride/drops/99999999999999999999",
                                 "/lead/counts/2147483648/approve"])
def test_an_id_beyond_a_database_integer_is_not_found(site, url):
    who = "L1" if url.startswith("/lead") else "R1"
    method = "POST" if url.endswith("approve") else "GET"
    assert site.client(who).open(url, method=method).status_code == 404


def test_a_screen_form_over_16_kib_is_refused_before_it_is_read(site):
    answer = site.client("P1").post("/pick/scan", data={"scan": "A", "pad": "x" * 20_000}, headers=HX)
    assert answer.status_code == 413
    assert "请求体超过" in answer.get_data(as_text=True)
