"""POST /api/v1/orders and GET /api/v1/orders/{external_id}: every status the
contract names, and that a refused request writes nothing and logs one line."""
from __future__ import annotations

import copy
import datetime as dt
import json

import pytest

from support import check_invariants, error, order_body, refused, snapshot, stock_of

ORDERS = "/api/v1/orders"


def body(external_id: str = "TM-20261124-000123", **extra):
    return order_body(external_id, [("SKU-0001", 2), ("SKU-0002", 1)], **extra)


def rfc3339(value: str) -> dt.datetime:
    stamp = dt.datetime.fromisoformat(value)
    assert stamp.tzinfo is not None, value
    return stamp


# --- 201, 200, 409 ---------------------------------------------------------------------

def test_a_new_order_answers_201_with_the_document_split_dispatched_and_reserved(client, headers, stocked):
    r = client.post(ORDERS, json=body(), headers=headers)
    assert r.status_code == 201
    doc = r.get_json()
    assert doc["external_id"] == "TM-20261124-000123"
    assert doc["status"] == "in_fulfilment"
    assert rfc3339(doc["created_at"]) <= rfc3339(doc["updated_at"])
    [f] = doc["fulfilments"]
    assert {k: f[k] for k in ("node", "status", "delivery", "lines", "parcels")} == {
        "node": "SH-PD", "status": "reserved", "delivery": "express",
        "lines": [{"sku": "SKU-0001", "quantity": 2}, {"sku": "SKU-0002", "quantity": 1}], "parcels": []}
    assert f["id"].startswith("F-")
    assert [e["type"] for e in doc["events"]] == ["order.received", "fulfilment.reserved", "order.status_changed"]
    assert doc["events"][1]["fulfilment"] == f["id"]
    assert doc["events"][0]["seq"] < doc["events"][1]["seq"]
    rfc3339(doc["events"][0]["at"])
    assert stock_of(stocked, "SH-PD", "SKU-0001") == (10, 2)
    check_invariants(stocked)


def test_the_same_order_again_answers_200_with_the_order_already_stored(client, headers, stocked):
    first = client.post(ORDERS, json=body(), headers=headers)
    before = snapshot(stocked)
    again = client.post(ORDERS, json=body(), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["fulfilments"] == first.get_json()["fulfilments"]
    assert snapshot(stocked) == before


def test_the_same_order_with_keys_reordered_is_still_the_same_order(client, headers, stocked):
    client.post(ORDERS, json=body(), headers=headers)
    reordered = json.dumps(dict(reversed(list(body().items()))), indent=2, ensure_ascii=True)
    r = client.post(ORDERS, data=reordered, headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 200


def test_the_same_order_written_differently_is_still_the_same_order(client, headers, stocked):
    first = client.post(ORDERS, json=body(), headers=headers)
    same = body(placed_at="2026-11-24T02:02:00Z", promised_by="2026-11-25T10:00:00.000+00:00")
    same["ship_to"].update(lat=31.2335, lon=121.5055, line1="  世纪大道100号 ", unknown_field="kept, ignored")
    before = snapshot(stocked)
    again = client.post(ORDERS, json=same, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["fulfilments"] == first.get_json()["fulfilments"]
    assert snapshot(stocked) == before


def test_an_order_stored_under_the_digest_of_its_bytes_is_still_recognised(client, headers, stocked):
    from sqlalchemy import update

    from app.fulfilment.intake import _digest_as_received
    from app.models import Order
    assert client.post(ORDERS, json=body(), headers=headers).status_code == 201
    with stocked.transaction() as s:  # as the releases before digests of meaning stored it
        s.execute(update(Order).values(payload_sha256=_digest_as_received(body())))
    assert client.post(ORDERS, json=body(), headers=headers).status_code == 200


def test_coordinates_as_whole_numbers_mean_the_same_as_with_a_decimal_point(client, headers, stocked):
    first = body()
    first["ship_to"].update(lat=31, lon=121.5)
    second = body()
    second["ship_to"].update(lat=31.0, lon=121.50)
    assert client.post(ORDERS, json=first, headers=headers).status_code == 201
    assert client.post(ORDERS, json=second, headers=headers).status_code == 200


@pytest.mark.parametrize("change", [
    lambda b: b.update(placed_at="2026-11-24T10:02:01+08:00"),
    lambda b: b["ship_to"].update(lat=31.2336),
    lambda b: b["lines"].reverse(),
], ids=["a second later", "another place", "lines in another order"])
def test_an_order_that_means_something_else_under_the_same_external_id_is_409(client, headers, stocked, change):
    client.post(ORDERS, json=body(), headers=headers)
    changed = body()
    change(changed)
    assert error(client.post(ORDERS, json=changed, headers=headers), 409, "conflict")["reason"] == "external_id_reused"


def test_the_same_external_id_with_another_body_is_409_conflict(client, headers, stocked, caplog):
    client.post(ORDERS, json=body(), headers=headers)
    changed = body()
    changed["lines"][0]["quantity"] = 3
    with refused(stocked, caplog):
        r = client.post(ORDERS, json=changed, headers=headers)
    details = error(r, 409, "conflict")
    assert details["reason"] == "external_id_reused"
    assert "TM-20261124-000123" in r.get_json()["error"]["message"]


def test_another_channel_may_use_the_same_external_id(client, headers, other_headers, stocked):
    assert client.post(ORDERS, json=body(), headers=headers).status_code == 201
    assert client.post(ORDERS, json=body(), headers=other_headers).status_code == 201
    assert stock_of(stocked, "SH-PD", "SKU-0001") == (10, 4)


def test_an_order_with_500_lines_is_taken(client, headers, stocked):
    lines = [("SKU-0001", 1)] * 250 + [("SKU-0042", 1)] * 250
    r = client.post(ORDERS, json=order_body("BIG", lines), headers=headers)
    assert r.status_code == 201
    fulfilments = r.get_json()["fulfilments"]
    # Nobody holds 250 of either: what can ship ships, the rest waits.
    assert sum(line["quantity"] for f in fulfilments for line in f["lines"]) == 500
    assert sorted(f["status"] for f in fulfilments) == ["awaiting_stock", "reserved", "reserved"]
    check_invariants(stocked)


# --- 422 invalid_request ------------------------------------------------------------------

def mutate(change):
    b = order_body("BAD-1", [("SKU-0001", 1), ("SKU-0002", 1), ("SKU-0001", 1)])
    change(b)
    return b


INVALID = {
    "zero quantity": (lambda b: b["lines"][2].update(quantity=0), ["lines[2].quantity"]),
    "negative quantity": (lambda b: b["lines"][2].update(quantity=-1), ["lines[2].quantity"]),
    "fractional quantity": (lambda b: b["lines"][2].update(quantity=1.5), ["lines[2].quantity"]),
    "quantity as text": (lambda b: b["lines"][0].update(quantity="2"), ["lines[0].quantity"]),
    "quantity over 100000": (lambda b: b["lines"][1].update(quantity=100_001), ["lines[1].quantity"]),
    "missing quantity": (lambda b: b["lines"][1].pop("quantity"), ["lines[1].quantity"]),
    "missing city": (lambda b: b["ship_to"].pop("city"), ["ship_to.city"]),
    "blank district": (lambda b: b["ship_to"].update(district="  "), ["ship_to.district"]),
    "missing phone and line1": (lambda b: [b["ship_to"].pop("phone"), b["ship_to"].pop("line1")],
                                ["ship_to.phone", "ship_to.line1"]),
    "missing ship_to": (lambda b: b.pop("ship_to"), ["ship_to"]),
    "latitude not a number": (lambda b: b["ship_to"].update(lat="north"), ["ship_to.lat"]),
    "latitude out of range": (lambda b: b["ship_to"].update(lat=91), ["ship_to.lat"]),
    "unknown delivery": (lambda b: b.update(delivery="drone"), ["delivery"]),
    "no lines": (lambda b: b.update(lines=[]), ["lines"]),
    "501 lines": (lambda b: b.update(lines=[{"sku": "SKU-0001", "quantity": 1}] * 501), ["lines"]),
    "naive presale time": (lambda b: b["lines"][0].update(presale_release_at="2026-12-01T00:00:00"),
                           ["lines[0].presale_release_at"]),
    "missing external_id": (lambda b: b.pop("external_id"), ["external_id"]),
    "a NUL in a name": (lambda b: b["customer"].update(name="王\u0000"), ["customer.name"]),
    "a NUL in a sku": (lambda b: b["lines"][1].update(sku="SKU-0002\u0000"), ["lines[1].sku"]),
    "a time past year 9999 in UTC": (lambda b: b.update(placed_at="9999-12-31T23:59:59-12:00"), ["placed_at"]),
    "a time before year 1 in UTC": (lambda b: b["lines"][0].update(presale_release_at="0001-01-01T00:00:00+14:00"),
                                    ["lines[0].presale_release_at"]),
    "longitude an object": (lambda b: b["ship_to"].update(lon={"float": 1}), ["ship_to.lon"]),
    "latitude a list": (lambda b: b["ship_to"].update(lat=[31]), ["ship_to.lat"]),
    "a NUL and other bad fields": (lambda b: [b["customer"].update(name="王\u0000"), b["ship_to"].update(lat="x"),
                                              b["lines"][0].update(quantity=0)],
                                   ["customer.name", "ship_to.lat", "lines[0].quantity"]),
    "two problems at once": (lambda b: [b["lines"][2].update(quantity=0), b["ship_to"].pop("city")],
                             ["ship_to.city", "lines[2].quantity"]),
}


@pytest.mark.parametrize("change, fields", INVALID.values(), ids=INVALID.keys())
def test_an_invalid_order_is_422_naming_each_bad_field_by_json_path(client, headers, stocked, caplog,
                                                                     change, fields):
    with refused(stocked, caplog):
        r = client.post(ORDERS, json=mutate(change), headers=headers)
    details = error(r, 422, "invalid_request")
    assert sorted(details["fields"]) == sorted(fields)


@pytest.mark.parametrize("raw", [b'{"external_id": "X", "lines": [', b"\xff\xfe{}", b"", b"[1, 2]", b"null",
                                 b"[" * 100_000 + b"]" * 100_000],
                         ids=["truncated", "not utf-8", "empty", "an array", "null", "nested too deeply"])
def test_a_body_that_is_not_a_json_object_is_422_invalid_request(client, headers, stocked, caplog, raw):
    with refused(stocked, caplog):
        r = client.post(ORDERS, data=raw, headers={**headers, "Content-Type": "application/json"})
    assert error(r, 422, "invalid_request")["fields"] == ["$"]


def test_unknown_skus_are_422_unknown_sku_listing_them(client, headers, stocked, caplog):
    b = order_body("BAD-2", [("SKU-0001", 1), ("NOPE-2", 1), ("NOPE-1", 3), ("NOPE-2", 1)])
    with refused(stocked, caplog):
        r = client.post(ORDERS, json=b, headers=headers)
    assert error(r, 422, "unknown_sku")["skus"] == ["NOPE-1", "NOPE-2"]


# --- 401, 404, 413, 415, 405 ----------------------------------------------------------------

@pytest.mark.parametrize("authorization", [None, "Bearer ly_not-a-token", "Bearer ", "Basic b3BzOm9wcw==",
                                           "ly_token-without-scheme"])
def test_a_missing_or_wrong_token_is_401(client, stocked, caplog, authorization):
    hdrs = {"Authorization": authorization} if authorization else {}
    with refused(stocked, caplog):
        r = client.post(ORDERS, json=body(), headers=hdrs)
    error(r, 401, "unauthorized")
    for url in ("/api/v1/orders/TM-1", "/api/v1/events"):
        error(client.get(url, headers=hdrs), 401, "unauthorized")


def test_another_channels_order_is_404_exactly_as_if_it_did_not_exist(client, headers, other_headers, stocked,
                                                                      caplog):
    client.post(ORDERS, json=body("SHARED-NAME"), headers=headers)
    client.post(ORDERS, json=body("MINE-ONLY"), headers=headers)
    for path in ("", "/cancel", "/receipt"):
        method = client.get if not path else client.post
        with refused(stocked, caplog):
            theirs = method(f"{ORDERS}/MINE-ONLY{path}", headers=other_headers)
        absent = method(f"{ORDERS}/NO-SUCH-ORDER{path}", headers=other_headers)
        assert error(theirs, 404, "not_found") == {"external_id": "MINE-ONLY"}
        assert error(absent, 404, "not_found") == {"external_id": "NO-SUCH-ORDER"}
        assert theirs.get_json()["error"]["message"] == absent.get_json()["error"]["message"]
    assert client.get(f"{ORDERS}/MINE-ONLY", headers=headers).status_code == 200


def test_an_external_id_no_order_can_have_is_404(client, headers, stocked, caplog):
    for path in ("%00", "%00/cancel", "%00/receipt"):
        with refused(stocked, caplog):
            r = (client.get if "/" not in path else client.post)(f"{ORDERS}/{path}", headers=headers)
        error(r, 404, "not_found")


def test_a_2_mib_body_is_413_too_large(client, headers, stocked, caplog):
    b = body()
    b["note"] = "x" * (2 * 1024 * 1024)
    with refused(stocked, caplog):
        r = client.post(ORDERS, json=b, headers=headers)
    error(r, 413, "too_large")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_declared_json_is_415_with_the_error_body(client, headers, stocked, caplog,
                                                                      content_type):
    hdrs = {**headers, **({"Content-Type": content_type} if content_type else {})}
    with refused(stocked, caplog):
        r = client.post(ORDERS, data=json.dumps(body()), headers=hdrs)
    error(r, 415, "unsupported_media_type")


def test_json_with_a_charset_is_json(client, headers, stocked):
    r = client.post(ORDERS, data=json.dumps(body()).encode(),
                    headers={**headers, "Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201


def test_a_method_the_address_does_not_take_answers_the_error_body(client, headers, stocked, caplog):
    with refused(stocked, caplog):
        r = client.delete(f"{ORDERS}/TM-1", headers=headers)
    error(r, 405, "method_not_allowed")
    error(client.get("/api/v1/no-such-thing", headers=headers), 404, "not_found")


# --- the document -----------------------------------------------------------------------

def test_get_answers_the_same_document_as_the_submission(client, headers, stocked):
    created = client.post(ORDERS, json=body(), headers=headers).get_json()
    got = client.get(f"{ORDERS}/TM-20261124-000123", headers=headers)
    assert got.status_code == 200
    assert got.get_json() == created


def test_an_order_split_across_nodes_lists_every_fulfilment(client, headers, stocked):
    b = order_body("SPLIT-1", [("SKU-0001", 2), ("SKU-0042", 1), ("SKU-0002", 9)])
    doc = client.post(ORDERS, json=b, headers=headers).get_json()
    got = {(f["node"], f["status"]): f["lines"] for f in doc["fulfilments"]}
    assert got == {
        # SH-PD is near: it ships what it can, Hangzhou only what SH-PD lacks.
        ("SH-PD", "reserved"): [{"sku": "SKU-0001", "quantity": 2}, {"sku": "SKU-0002", "quantity": 5}],
        ("HZ-XS", "reserved"): [{"sku": "SKU-0042", "quantity": 1}],
        (None, "awaiting_stock"): [{"sku": "SKU-0002", "quantity": 4}],
    }
    assert doc["status"] == "in_fulfilment"
    assert len({f["id"] for f in doc["fulfilments"]}) == 3
    check_invariants(stocked)


def test_an_order_waiting_for_stock_is_received(client, headers, stocked):
    doc = client.post(ORDERS, json=order_body("WAIT-1", [("SKU-0002", 6)]), headers=headers).get_json()
    # 5 are at SH-PD: those go, the sixth waits.
    assert [(f["node"], f["status"]) for f in doc["fulfilments"]] == [("SH-PD", "reserved"),
                                                                       (None, "awaiting_stock")]
    doc = client.post(ORDERS, json=order_body("WAIT-2", [("SKU-0002", 1)]), headers=headers).get_json()
    assert doc["status"] == "received"
    assert [f["status"] for f in doc["fulfilments"]] == ["awaiting_stock"]


def test_a_presale_line_is_held_apart_until_its_release(client, headers, stocked):
    release = "2099-12-01T00:00:00+08:00"
    b = order_body("PRE-1", [("SKU-0001", 1), {"sku": "SKU-0042", "quantity": 2, "presale_release_at": release}])
    doc = client.post(ORDERS, json=b, headers=headers).get_json()
    presale = [f for f in doc["fulfilments"] if f["status"] == "awaiting_release"]
    assert [(f["node"], f["lines"]) for f in presale] == [(None, [{"sku": "SKU-0042", "quantity": 2}])]
    assert rfc3339(presale[0]["release_at"]) == rfc3339(release)
    assert stock_of(stocked, "HZ-XS", "SKU-0042") == (4, 0)


def test_the_raw_payload_is_kept_as_received(client, headers, stocked, db):
    from sqlalchemy import select

    from app.models import Order
    b = body()
    b["extra_field"] = {"kept": ["as", "is"]}
    client.post(ORDERS, json=b, headers=headers)
    with db.reading() as s:
        assert s.scalar(select(Order.payload)) == copy.deepcopy(b)
