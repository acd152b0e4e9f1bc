"""An order that could only wait to be auto-cancelled is refused at intake,
with what to change: a same-city address no node's riders reach, a presale
SKU without its release time."""
from __future__ import annotations

from support import PLACES, add_nodes, add_skus, error, order_body, refused, ship_to, world

ORDERS = "/api/v1/orders"
# The default customer (support.CUSTOMER) is ~3 km from SH-STORE. West Lake
# in 杭州 is ~15 km from HZ-XS, which has no riders, and far from Shanghai.
NEAR_STORE = ship_to()
FAR = {**NEAR_STORE, "province": "浙江省", "city": "杭州市", "district": "西湖区", "lat": 30.2590, "lon": 120.1300}


def riders(db, radius_km: float = 8) -> None:
    """SH-STORE sends riders `radius_km` around it; the other nodes have none."""
    world(db, {"SH-STORE": {"SKU-A": 5}, "HZ-XS": {"SKU-A": 5}},
          nodes={"SH-STORE": {**PLACES["SH-STORE"], "kind": "store", "same_city_radius_km": radius_km},
                 "HZ-XS": PLACES["HZ-XS"]})


def test_a_same_city_order_no_node_reaches_is_422_not_serviceable_naming_the_nearest(client, headers, db, caplog):
    riders(db)
    with refused(db, caplog):
        r = client.post(ORDERS, json=order_body("SC-1", [("SKU-A", 1)], delivery="same_city", address=FAR),
                        headers=headers)
    details = error(r, 422, "not_serviceable")
    assert details["nearest"]["node"] == "HZ-XS"
    assert 5 < details["nearest"]["distance_km"] < 20
    assert details["nearest"]["same_city_radius_km"] == 0
    assert "HZ-XS" in r.get_json()["error"]["message"]


def test_a_same_city_order_just_outside_every_radius_names_the_node_with_riders_too(client, headers, db, caplog):
    riders(db, radius_km=1)
    with refused(db, caplog):
        r = client.post(ORDERS, json=order_body("SC-2", [("SKU-A", 1)], delivery="same_city", address=NEAR_STORE),
                        headers=headers)
    details = error(r, 422, "not_serviceable")
    assert details["nearest"]["node"] == "SH-STORE" and details["nearest"]["distance_km"] > 1


def test_a_same_city_order_inside_a_radius_is_taken_and_reserved_there(client, headers, db):
    riders(db)
    r = client.post(ORDERS, json=order_body("SC-3", [("SKU-A", 1)], delivery="same_city", address=NEAR_STORE),
                    headers=headers)
    assert r.status_code == 201
    [f] = r.get_json()["fulfilments"]
    assert (f["node"], f["status"]) == ("SH-STORE", "reserved")


def test_a_same_city_order_where_no_node_is_active_is_422_not_serviceable(client, headers, db, caplog):
    add_skus(db, ["SKU-A"])
    with refused(db, caplog):
        r = client.post(ORDERS, json=order_body("SC-4", [("SKU-A", 1)], delivery="same_city"), headers=headers)
    assert error(r, 422, "not_serviceable") == {"nearest": None, "reason": "not_serviceable_no_node"}


def test_an_express_order_nobody_has_stock_for_still_waits_for_stock(client, headers, db):
    add_nodes(db, {"SH-PD": PLACES["SH-PD"]})
    add_skus(db, ["SKU-A"])
    r = client.post(ORDERS, json=order_body("EX-1", [("SKU-A", 1)]), headers=headers)
    assert r.status_code == 201
    assert [f["status"] for f in r.get_json()["fulfilments"]] == ["awaiting_stock"]


def presale_sku(client, admin_headers, db) -> None:
    world(db, {"SH-PD": {"SKU-A": 5}})
    r = client.put("/api/v1/skus/SKU-P", json={"name": "新品", "presale": True}, headers=admin_headers)
    assert r.status_code in (200, 201)


def test_a_presale_sku_without_its_release_time_is_422_naming_the_line(client, headers, admin_headers, db, caplog):
    presale_sku(client, admin_headers, db)
    with refused(db, caplog):
        r = client.post(ORDERS, json=order_body("PS-1", [("SKU-A", 1), ("SKU-P", 2)]), headers=headers)
    details = error(r, 422, "invalid_request")
    assert details["fields"] == ["lines[1].presale_release_at"]
    assert "SKU-P" in details["errors"][0]["message"]


def test_a_presale_sku_with_its_release_time_waits_for_it(client, headers, admin_headers, db):
    presale_sku(client, admin_headers, db)
    line = {"sku": "SKU-P", "quantity": 2, "presale_release_at": "2099-01-01T00:00:00+08:00"}
    r = client.post(ORDERS, json=order_body("PS-2", [("SKU-A", 1), line]), headers=headers)
    assert r.status_code == 201
    assert sorted(f["status"] for f in r.get_json()["fulfilments"]) == ["awaiting_release", "reserved"]
