"""Read-back for an ERP (admin token): nodes, SKUs, a node's stock per SKU
and per bin, a page at a time; a sales channel's token is refused."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import select

from app.models import Node, QuarantineStock, Sku
from counting import BIN, busy_floor, order, pick_all, units_in_totes
from documented import conforms
from support import error, world


def get(client, url, headers, status=200):
    """The answer's body, checked against its documented model."""
    r = client.get(url, headers=headers)
    assert r.status_code == status, r.get_json()
    return conforms(client.application, r)


def every_page(client, url, headers, key):
    items, after, pages = [], "", 0
    while True:
        sep = "&" if "?" in url else "?"
        body = get(client, f"{url}{sep}limit=2" + (f"&after={after}" if after else ""), headers)
        items += body[key]
        pages += 1
        if body["next_after"] is None:
            return items, pages
        after = body["next_after"]


# --- who may -------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/api/v1/nodes", "/api/v1/nodes/SH-PD", "/api/v1/skus", "/api/v1/skus/SKU-0001",
                                 "/api/v1/nodes/SH-PD/stock", "/api/v1/nodes/SH-PD/stock?by=bin"])
def test_a_sales_channel_token_may_not_read_master_data_back(client, headers, stocked, url):
    error(client.get(url, headers=headers), 403, "forbidden")


@pytest.mark.parametrize("url, what", [("/api/v1/nodes/NOPE", "node"), ("/api/v1/nodes/NOPE/stock", "node"),
                                       ("/api/v1/skus/NOPE", "SKU"), ("/api/v1/nodes/bad%20code", "node"),
                                       ("/api/v1/skus/%00", "SKU")])
def test_an_unknown_code_is_404_not_found(client, admin_headers, stocked, url, what):
    r = client.get(url, headers=admin_headers)
    error(r, 404, "not_found")
    assert what in r.get_json()["error"]["message"]


@pytest.mark.parametrize("url, field", [("/api/v1/nodes?limit=0", "limit"), ("/api/v1/skus?updated_after=yesterday", "updated_after"),
                                        ("/api/v1/skus?updated_after=2026-11-25T10:00:00", "updated_after"),
                                        ("/api/v1/nodes/SH-PD/stock?by=shelf", "by")])
def test_a_bad_query_is_422_naming_the_parameter(client, admin_headers, stocked, url, field):
    assert field in str(error(client.get(url, headers=admin_headers), 422, "invalid_request"))


# --- nodes and SKUs ----------------------------------------------------------------------

def test_nodes_are_read_back_by_code_a_page_at_a_time(client, admin_headers, db):
    world(db, {"SH-PD": {"SKU-0001": 1}, "HZ-XS": {}, "SH-JD": {}})
    nodes, pages = every_page(client, "/api/v1/nodes", admin_headers, "nodes")
    assert [n["code"] for n in nodes] == ["HZ-XS", "SH-JD", "SH-PD"] and pages == 2
    one = get(client, "/api/v1/nodes/SH-PD", admin_headers)
    assert one == nodes[2]
    assert {"name", "kind", "province", "city", "lat", "lon", "daily_capacity", "same_city_radius_km", "active",
            "updated_at"} <= set(one)


def test_a_sku_is_read_back_with_its_barcodes(client, admin_headers, stocked):
    client.put("/api/v1/skus/SKU-0001", json={"name": "茶杯", "barcodes": ["6901234567892"], "weight_g": 120},
               headers=admin_headers)
    sku = get(client, "/api/v1/skus/SKU-0001", admin_headers)
    assert {k: sku[k] for k in ("sku", "name", "barcodes", "weight_g", "presale")} == \
        {"sku": "SKU-0001", "name": "茶杯", "barcodes": ["6901234567892"], "weight_g": 120, "presale": False}


def test_skus_updated_after_a_time_are_only_those_changed_since(client, admin_headers, stocked):
    everything, _ = every_page(client, "/api/v1/skus", admin_headers, "skus")
    assert [s["sku"] for s in everything] == ["SKU-0001", "SKU-0002", "SKU-0042"]
    time.sleep(0.01)  # a later instant than every stored updated_at, at the stamp's millisecond
    since = dt.datetime.now(dt.timezone.utc).isoformat()
    client.put("/api/v1/skus/SKU-0002", json={"name": "改名"}, headers=admin_headers)
    changed = get(client, "/api/v1/skus?updated_after=" + since.replace("+00:00", "Z"), admin_headers)
    assert [s["sku"] for s in changed["skus"]] == ["SKU-0002"] and changed["next_after"] is None


# --- a node's stock ------------------------------------------------------------------------

@pytest.fixture
def busy(db, token_for):
    """SH-PD: 10 of SKU-A in the bin, an order of 4 picked into a tote, one
    of 3 reserved, 2 quarantined and 1 damaged returned units held out."""
    token_for("shop")
    busy_floor(db, 10)
    order(db, "O-1", 4)
    pick_all(db, "T-01")
    order(db, "O-2", 3)
    with db.transaction() as s:
        node, sku = s.scalar(select(Node.id).where(Node.code == "SH-PD")), s.scalar(select(Sku.id).where(Sku.code == "SKU-A"))
        s.add(QuarantineStock(node_id=node, sku_id=sku, quarantined=2, damaged=1))
    world(db, {"SH-PD": {"SKU-B": 5}})
    return db


def test_a_nodes_stock_per_sku_says_on_hand_in_totes_reserved_available_and_held_out(client, admin_headers, busy):
    body = get(client, "/api/v1/nodes/SH-PD/stock", admin_headers)
    assert body["node"] == "SH-PD" and body["by"] == "sku" and body["next_after"] is None
    assert body["items"] == [
        {"sku": "SKU-A", "on_hand": 10, "in_totes": 4, "reserved": 7, "available": 3, "quarantined": 2,
         "damaged": 1},
        {"sku": "SKU-B", "on_hand": 5, "in_totes": 0, "reserved": 0, "available": 5, "quarantined": 0,
         "damaged": 0},
    ]


def test_a_nodes_stock_by_bin_says_on_hand_and_in_totes_per_bin(client, admin_headers, busy):
    body = get(client, "/api/v1/nodes/SH-PD/stock?by=bin", admin_headers)
    assert body["by"] == "bin"
    in_totes = units_in_totes(busy)  # the count module's rule, one bin at a time
    assert in_totes == 4
    assert {(i["location"], i["sku"]): (i["on_hand"], i["in_totes"]) for i in body["items"]}[(BIN, "SKU-A")] \
        == (10, in_totes)
    assert sum(i["on_hand"] for i in body["items"] if i["sku"] == "SKU-B") == 5


def test_a_nodes_stock_pages_follow_each_other_without_gaps(client, admin_headers, db):
    world(db, {"SH-PD": {f"SKU-{n:04d}": n for n in range(1, 6)}})
    per_sku, pages = every_page(client, "/api/v1/nodes/SH-PD/stock", admin_headers, "items")
    assert [i["sku"] for i in per_sku] == [f"SKU-{n:04d}" for n in range(1, 6)] and pages == 3
    per_bin, _ = every_page(client, "/api/v1/nodes/SH-PD/stock?by=bin", admin_headers, "items")
    assert sorted((i["sku"], i["on_hand"]) for i in per_bin) == [(f"SKU-{n:04d}", n) for n in range(1, 6)]
