"""Master data over the API (admin token): nodes, SKUs and barcodes, and
stock counts that keep reservations true to what is on the shelf."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.models import Location, Node, Stock
from support import (
    check_invariants,
    check_not_oversold,
    error,
    node_body,
    order_body,
    refused,
    stock_of,
    world,
)

NODE = "/api/v1/nodes/SH-PD-01"
SKU = "/api/v1/skus/SKU-0001"
GTIN = "6901234567892"  # a valid EAN-13


def stock(*items: tuple[str, str, int]) -> dict:
    return {"items": [{"location": loc, "sku": sku, "on_hand": n} for loc, sku, n in items]}


# --- who may ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method, url, body", [
    ("put", NODE, node_body()), ("put", SKU, {"name": "x"}),
    ("put", "/api/v1/nodes/SH-PD/stock", stock(("A-01-01-1", "SKU-0001", 1))),
], ids=["node", "sku", "stock"])
def test_a_sales_channel_token_may_not_change_master_data(client, headers, stocked, caplog, method, url, body):
    with refused(stocked, caplog):
        r = getattr(client, method)(url, json=body, headers=headers)
    error(r, 403, "forbidden")


def test_master_data_without_a_token_is_401(client, stocked, caplog):
    with refused(stocked, caplog):
        r = client.put(NODE, json=node_body())
    error(r, 401, "unauthorized")


# --- nodes ------------------------------------------------------------------------------------

def test_a_new_node_is_201_and_a_replaced_one_200(client, admin_headers, db):
    r = client.put(NODE, json=node_body(name="浦东仓", daily_capacity=5000), headers=admin_headers)
    assert r.status_code == 201
    assert r.get_json() == {"code": "SH-PD-01", "name": "浦东仓", "kind": "warehouse", "province": "上海市",
                            "city": "上海市", "lat": 31.22, "lon": 121.54, "daily_capacity": 5000,
                            "same_city_radius_km": 0, "active": True}
    r = client.put(NODE, json=node_body(name="浦东门店", kind="store", daily_capacity=300, same_city_radius_km=5,
                                        lat=None, lon=None, active=False), headers=admin_headers)
    assert r.status_code == 200
    assert {k: r.get_json()[k] for k in ("name", "kind", "daily_capacity", "same_city_radius_km", "lat", "active")} \
        == {"name": "浦东门店", "kind": "store", "daily_capacity": 300, "same_city_radius_km": 5, "lat": None,
            "active": False}
    with db.reading() as s:
        assert s.scalars(select(Node.name)).all() == ["浦东门店"]


@pytest.mark.parametrize("change, fields", [
    ({"kind": "depot"}, ["kind"]),
    ({"daily_capacity": -1}, ["daily_capacity"]),
    ({"daily_capacity": 1.5}, ["daily_capacity"]),
    ({"lat": "north"}, ["lat"]),
    ({"same_city_radius_km": -3, "city": ""}, ["city", "same_city_radius_km"]),
    ({"name": None}, ["name"]),
    ({"name": "浦东\u0000仓"}, ["name"]),
    ({"lat": {"float": 1}, "lon": [121]}, ["lat", "lon"]),
    ({"name": "浦东\u0000仓", "daily_capacity": -1}, ["daily_capacity", "name"]),
], ids=["kind", "negative capacity", "fractional capacity", "lat", "radius and city", "name", "NUL in name",
        "coordinates as an object and a list", "NUL and a bad capacity"])
def test_an_invalid_node_is_422_naming_the_fields(client, admin_headers, stocked, caplog, change, fields):
    with refused(stocked, caplog):
        r = client.put(NODE, json=node_body(**change), headers=admin_headers)
    assert sorted(error(r, 422, "invalid_request")["fields"]) == fields


def test_a_node_code_that_is_not_a_code_is_422(client, admin_headers, stocked, caplog):
    with refused(stocked, caplog):
        r = client.put("/api/v1/nodes/浦东 仓", json=node_body(), headers=admin_headers)
    assert error(r, 422, "invalid_request")["fields"] == ["code"]


def test_master_data_not_sent_as_json_is_415(client, admin_headers, stocked, caplog):
    with refused(stocked, caplog):
        r = client.put(NODE, data="name=x", headers={**admin_headers, "Content-Type": "text/plain"})
    error(r, 415, "unsupported_media_type")


def test_master_data_with_invalid_json_is_422(client, admin_headers, stocked, caplog):
    with refused(stocked, caplog):
        r = client.put(NODE, data="{", headers={**admin_headers, "Content-Type": "application/json"})
    assert error(r, 422, "invalid_request")["fields"] == ["$"]


# --- SKUs -------------------------------------------------------------------------------------

def test_a_new_sku_is_201_and_a_replaced_one_200(client, admin_headers, db):
    r = client.put(SKU, json={"name": "保温杯", "barcodes": [GTIN, "INHOUSE-7"], "weight_g": 350}, headers=admin_headers)
    assert r.status_code == 201
    assert r.get_json() == {"sku": "SKU-0001", "name": "保温杯", "barcodes": sorted([GTIN, "INHOUSE-7"]),
                            "weight_g": 350, "presale": False}
    r = client.put(SKU, json={"name": "保温杯 500ml", "barcodes": [GTIN], "presale": True}, headers=admin_headers)
    assert r.status_code == 200
    assert (r.get_json()["barcodes"], r.get_json()["presale"], r.get_json()["weight_g"]) == ([GTIN], True, 0)


def test_a_gtin_with_a_wrong_check_digit_is_422_naming_the_barcode(client, admin_headers, stocked, caplog):
    with refused(stocked, caplog):
        r = client.put(SKU, json={"name": "x", "barcodes": ["6901234567893", GTIN]}, headers=admin_headers)
    assert error(r, 422, "invalid_request")["fields"] == ["barcodes[0]"]
    with refused(stocked, caplog):
        r = client.put(SKU, json={"name": "x", "barcodes": [GTIN, "96385074"[:-1] + "5"]}, headers=admin_headers)
    assert error(r, 422, "invalid_request")["fields"] == ["barcodes[1]"]


def test_a_barcode_another_sku_has_is_409(client, admin_headers, stocked, caplog):
    assert client.put("/api/v1/skus/SKU-0002", json={"name": "y", "barcodes": [GTIN]},
                      headers=admin_headers).status_code == 200
    with refused(stocked, caplog):
        r = client.put(SKU, json={"name": "x", "barcodes": [GTIN]}, headers=admin_headers)
    details = error(r, 409, "conflict")
    assert (details["reason"], details["barcode"], details["sku"]) == ("barcode_taken", GTIN, "SKU-0002")
    # The owner may keep it.
    assert client.put("/api/v1/skus/SKU-0002", json={"name": "y2", "barcodes": [GTIN]},
                      headers=admin_headers).status_code == 200


def test_a_barcode_with_a_nul_is_422(client, admin_headers, stocked, caplog):
    with refused(stocked, caplog):
        r = client.put(SKU, json={"name": "x", "barcodes": [GTIN, "A\u0000"]}, headers=admin_headers)
    assert error(r, 422, "invalid_request")["fields"] == ["barcodes[1]"]


def test_master_data_nested_too_deeply_is_422(client, admin_headers, stocked, caplog):
    with refused(stocked, caplog):
        r = client.put(SKU, data="[" * 100_000 + "]" * 100_000,
                       headers={**admin_headers, "Content-Type": "application/json"})
    assert error(r, 422, "invalid_request")["fields"] == ["$"]


def test_a_barcode_listed_twice_is_422(client, admin_headers, stocked, caplog):
    with refused(stocked, caplog):
        r = client.put(SKU, json={"name": "x", "barcodes": [GTIN, GTIN]}, headers=admin_headers)
    assert error(r, 422, "invalid_request")["fields"] == ["barcodes"]


# --- stock counts -------------------------------------------------------------------------------

def test_a_count_creates_unknown_locations_and_sums_the_bins(client, admin_headers, stocked):
    r = client.put("/api/v1/nodes/SH-PD/stock", json=stock(("B-02-03-2", "SKU-0042", 4), ("B-02-04-1", "SKU-0042", 6),
                                                          ("A-01-01-1", "SKU-0001", 7)), headers=admin_headers)
    assert r.status_code == 200
    assert r.get_json()["shortages"] == {} and r.get_json()["redispatched"] == []
    assert stock_of(stocked, "SH-PD", "SKU-0042") == (10, 0)
    assert stock_of(stocked, "SH-PD", "SKU-0001") == (7, 0)  # absolute: the count replaces the old 10
    with stocked.reading() as s:
        locs = {code: (aisle, seq) for code, aisle, seq in s.execute(
            select(Location.code, Location.aisle, Location.walk_seq).join(Node).where(Node.code == "SH-PD"))}
    assert locs["B-02-03-2"] == ("B-02", 3002) and locs["B-02-04-1"] == ("B-02", 4001)
    check_invariants(stocked)


def test_a_count_of_an_unknown_sku_is_422_and_of_an_unknown_node_404(client, admin_headers, stocked, caplog):
    with refused(stocked, caplog):
        r = client.put("/api/v1/nodes/SH-PD/stock", json=stock(("A-1", "SKU-0001", 1), ("A-1", "NOPE", 1)),
                       headers=admin_headers)
    assert error(r, 422, "unknown_sku")["skus"] == ["NOPE"]
    with refused(stocked, caplog):
        r = client.put("/api/v1/nodes/NOWHERE/stock", json=stock(("A-1", "SKU-0001", 1)), headers=admin_headers)
    error(r, 404, "not_found")
    with refused(stocked, caplog):
        r = client.put("/api/v1/nodes/SH-PD/stock", json=stock(("A-1", "SKU-0001", -1)), headers=admin_headers)
    assert error(r, 422, "invalid_request")["fields"] == ["items[0].on_hand"]
    too_far = {"items": [{"location": "A-1", "sku": "SKU-0001", "on_hand": 1, "walk_seq": 2**31}]}
    with refused(stocked, caplog):
        r = client.put("/api/v1/nodes/SH-PD/stock", json=too_far, headers=admin_headers)
    assert error(r, 422, "invalid_request")["fields"] == ["items[0].walk_seq"]
    with refused(stocked, caplog):
        r = client.put("/api/v1/nodes/SH%00PD/stock", json=stock(("A-1", "SKU-0001", 1)), headers=admin_headers)
    assert error(r, 422, "invalid_request")["fields"] == ["code"]


def test_a_count_below_what_is_reserved_moves_the_difference_to_another_node(client, headers, admin_headers,
                                                                          stocked):
    doc = client.post("/api/v1/orders", json=order_body("S-1", [("SKU-0001", 3)]), headers=headers).get_json()
    [held] = doc["fulfilments"]
    assert (held["node"], stock_of(stocked, "SH-PD", "SKU-0001")) == ("SH-PD", (10, 3))
    r = client.put("/api/v1/nodes/SH-PD/stock", json=stock(("A-01-01-1", "SKU-0001", 1)), headers=admin_headers)
    assert r.status_code == 200
    assert r.get_json()["shortages"] == {"SKU-0001": 2}
    assert r.get_json()["redispatched"] == [held["id"]]
    doc = client.get("/api/v1/orders/S-1", headers=headers).get_json()
    got = [(f["node"], f["status"], f["lines"], f["redispatched_from"]) for f in doc["fulfilments"]]
    assert got == [("SH-PD", "reserved", [{"sku": "SKU-0001", "quantity": 1}], None),
                   ("HZ-XS", "reserved", [{"sku": "SKU-0001", "quantity": 2}], held["id"])]
    assert doc["fulfilments"][1]["dispatch_reason"]["trigger"] == "stock_count_short"
    assert stock_of(stocked, "SH-PD", "SKU-0001") == (1, 1)
    assert stock_of(stocked, "HZ-XS", "SKU-0001") == (3, 2)
    check_not_oversold(stocked)
    check_invariants(stocked)


def test_a_count_below_what_is_reserved_with_nowhere_else_to_go_waits_for_stock(client, headers, admin_headers,
                                                                                 stocked):
    client.post("/api/v1/orders", json=order_body("S-1", [("SKU-0002", 2)]), headers=headers)
    client.post("/api/v1/orders", json=order_body("S-2", [("SKU-0002", 2)]), headers=headers)
    r = client.put("/api/v1/nodes/SH-PD/stock", json=stock(("A-01-02-1", "SKU-0002", 2)), headers=admin_headers)
    assert r.get_json()["shortages"] == {"SKU-0002": 2}
    # The newest reservation moves first; the older order keeps its units.
    first = client.get("/api/v1/orders/S-1", headers=headers).get_json()
    second = client.get("/api/v1/orders/S-2", headers=headers).get_json()
    assert [f["status"] for f in first["fulfilments"]] == ["reserved"]
    assert [(f["status"], f["node"]) for f in second["fulfilments"]] == [("redispatched", "SH-PD"),
                                                                          ("awaiting_stock", None)]
    assert second["status"] == "received"
    assert stock_of(stocked, "SH-PD", "SKU-0002") == (2, 2)
    check_not_oversold(stocked)
    check_invariants(stocked)


def test_a_count_short_of_two_skus_moves_each_fulfilments_units_once(client, headers, admin_headers, db):
    world(db, {"SH-PD": {"A": 5, "B": 5}, "SH-JD": {"A": 1}, "HZ-XS": {"B": 5}})
    for ext in ("O-1", "O-2"):
        client.post("/api/v1/orders", json=order_body(ext, [("A", 2), ("B", 2)]), headers=headers)
    r = client.put("/api/v1/nodes/SH-PD/stock", json=stock(("A-01-01-1", "A", 1), ("A-01-02-1", "B", 0)),
                   headers=admin_headers)
    assert r.get_json()["shortages"] == {"A": 3, "B": 4}
    assert r.get_json()["redispatched"] == ["F-000002-1", "F-000001-1"]  # newest first, each once

    def where(ext):
        doc = client.get(f"/api/v1/orders/{ext}", headers=headers).get_json()
        return sorted((f["node"] or "-", f["status"], tuple((line["sku"], line["quantity"]) for line in f["lines"]))
                      for f in doc["fulfilments"])

    assert where("O-1") == [("-", "awaiting_stock", (("A", 1),)), ("HZ-XS", "reserved", (("B", 2),)),
                            ("SH-PD", "reserved", (("A", 1),))]
    assert where("O-2") == [("-", "awaiting_stock", (("A", 1),)), ("HZ-XS", "reserved", (("B", 2),)),
                            ("SH-JD", "reserved", (("A", 1),)), ("SH-PD", "redispatched", ())]
    assert stock_of(db, "SH-PD", "A") == (1, 1) and stock_of(db, "SH-PD", "B") == (0, 0)
    check_not_oversold(db)
    check_invariants(db)


def test_stock_that_arrives_later_dispatches_the_orders_waiting_for_it_oldest_first(client, headers,
                                                                                    admin_headers, stocked):
    for ext in ("W-1", "W-2"):
        client.post("/api/v1/orders", json=order_body(ext, [("SKU-0002", 6)]), headers=headers)
    waiting = {ext: client.get(f"/api/v1/orders/{ext}", headers=headers).get_json()["fulfilments"][-1]
               for ext in ("W-1", "W-2")}
    assert waiting["W-1"]["status"] == "awaiting_stock" and waiting["W-1"]["lines"][0]["quantity"] == 1
    assert waiting["W-2"]["status"] == "awaiting_stock" and waiting["W-2"]["lines"][0]["quantity"] == 6
    # Six more arrive at HZ-XS: W-1's missing unit goes first, then five of W-2's six.
    r = client.put("/api/v1/nodes/HZ-XS/stock", json=stock(("A-01-05-1", "SKU-0002", 6)), headers=admin_headers)
    assert r.get_json()["dispatched"] == [waiting["W-1"]["id"], waiting["W-2"]["id"]]

    def states(ext):
        doc = client.get(f"/api/v1/orders/{ext}", headers=headers).get_json()
        return doc["status"], [(f["id"], f["node"], f["status"], f["lines"][0]["quantity"])
                               for f in doc["fulfilments"]]

    status, fs = states("W-1")
    assert status == "in_fulfilment"
    assert fs[-1] == (waiting["W-1"]["id"], "HZ-XS", "reserved", 1)  # the same fulfilment, now placed
    status, fs = states("W-2")
    assert status == "in_fulfilment"
    assert [f[1:] for f in fs] == [(None, "awaiting_stock", 1), ("HZ-XS", "reserved", 5)]
    # The last unit arrives at SH-PD.
    r = client.put("/api/v1/nodes/SH-PD/stock", json=stock(("A-01-02-1", "SKU-0002", 6)), headers=admin_headers)
    assert r.get_json()["dispatched"] == [waiting["W-2"]["id"]]
    status, fs = states("W-2")
    assert status == "in_fulfilment"
    assert [f[1:] for f in fs] == [("SH-PD", "reserved", 1), ("HZ-XS", "reserved", 5)]
    assert stock_of(stocked, "SH-PD", "SKU-0002") == (6, 6)
    assert stock_of(stocked, "HZ-XS", "SKU-0002") == (6, 6)
    check_not_oversold(stocked)
    check_invariants(stocked)


def test_a_count_never_touches_another_nodes_stock(client, admin_headers, stocked):
    client.put("/api/v1/nodes/SH-PD/stock", json=stock(("A-01-01-1", "SKU-0001", 0)), headers=admin_headers)
    assert stock_of(stocked, "HZ-XS", "SKU-0001") == (3, 0)
    with stocked.reading() as s:
        assert s.scalar(select(Stock.on_hand).join(Node).where(Node.code == "SH-PD", Stock.sku_id == 1)) in (0, None)
    check_invariants(stocked)
