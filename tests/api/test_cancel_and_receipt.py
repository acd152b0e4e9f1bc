"""Cancel (with interception) and confirm receipt, as the contract says."""
from __future__ import annotations

import datetime as dt

from app.models import FulfilmentStatus
from support import check_invariants, error, order_body, refused, set_status, ship, snapshot, stock_of

ORDERS = "/api/v1/orders"


def place(client, headers, external_id="C-1", lines=(("SKU-0001", 2),)):
    r = client.post(ORDERS, json=order_body(external_id, list(lines)), headers=headers)
    assert r.status_code == 201
    return r.get_json()


def two_nodes(client, headers, external_id="C-2"):
    """An order split over SH-PD and HZ-XS."""
    doc = place(client, headers, external_id, (("SKU-0002", 1), ("SKU-0042", 1)))
    assert sorted(f["node"] for f in doc["fulfilments"]) == ["HZ-XS", "SH-PD"]
    return doc


def ship_one(db, external_id: str, node: str) -> None:
    """Ship only the fulfilment at `node`: park the others as packed, ship,
    and put the others back."""
    from sqlalchemy import select

    from app.models import Fulfilment, Node, Order
    with db.transaction() as s:
        others = s.scalars(select(Fulfilment).join(Order).outerjoin(Node, Node.id == Fulfilment.node_id)
                           .where(Order.external_id == external_id, Node.code != node)).all()
        parked = {f.id: f.status for f in others}
        for f in others:
            f.status = FulfilmentStatus.shipped  # not touched by ship()
    ship(db, external_id)
    with db.transaction() as s:
        for f_id, status in parked.items():
            s.get(Fulfilment, f_id).status = status


# --- cancel -------------------------------------------------------------------------------

def test_cancel_releases_the_stock_and_answers_the_cancelled_order(client, headers, stocked):
    place(client, headers)
    r = client.post(f"{ORDERS}/C-1/cancel", headers=headers)
    assert r.status_code == 200
    doc = r.get_json()
    assert doc["status"] == "cancelled"
    assert [f["status"] for f in doc["fulfilments"]] == ["cancelled"]
    assert "cancelled_at" in doc["fulfilments"][0]
    assert [e["type"] for e in doc["events"]][-3:] == ["fulfilment.cancelled", "order.status_changed",
                                                        "order.cancelled"]
    assert stock_of(stocked, "SH-PD", "SKU-0001") == (10, 0)
    check_invariants(stocked)


def test_repeating_a_cancel_is_a_no_op_200(client, headers, stocked):
    place(client, headers)
    first = client.post(f"{ORDERS}/C-1/cancel", headers=headers)
    before = snapshot(stocked)
    again = client.post(f"{ORDERS}/C-1/cancel", headers=headers)
    assert again.status_code == 200
    assert again.get_json() == first.get_json()
    assert snapshot(stocked) == before


def test_cancel_without_a_body_or_with_an_empty_json_body_is_the_same(client, headers, stocked):
    place(client, headers, "C-3")
    r = client.post(f"{ORDERS}/C-3/cancel", json={}, headers=headers)
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled"


def test_cancel_of_an_order_waiting_for_stock_or_release_cancels_it(client, headers, stocked):
    b = order_body("C-4", [("SKU-0002", 6),
                           {"sku": "SKU-0042", "quantity": 1, "presale_release_at": "2099-01-01T00:00:00+08:00"}])
    doc = client.post(ORDERS, json=b, headers=headers).get_json()
    assert sorted(f["status"] for f in doc["fulfilments"]) == ["awaiting_release", "awaiting_stock", "reserved"]
    doc = client.post(f"{ORDERS}/C-4/cancel", headers=headers).get_json()
    assert doc["status"] == "cancelled"
    assert {f["status"] for f in doc["fulfilments"]} == {"cancelled"}
    check_invariants(stocked)


def test_a_packed_fulfilment_is_intercepted_on_cancel(client, headers, stocked):
    place(client, headers)
    set_status(stocked, "C-1", FulfilmentStatus.packed)
    doc = client.post(f"{ORDERS}/C-1/cancel", headers=headers).get_json()
    [f] = doc["fulfilments"]
    assert (f["status"], f.get("intercepted")) == ("cancelled", True)
    assert "fulfilment.intercepted" in [e["type"] for e in doc["events"]]
    assert stock_of(stocked, "SH-PD", "SKU-0001") == (10, 0)  # the units go back on the shelf
    check_invariants(stocked)


def test_cancel_stops_what_has_not_shipped_and_keeps_what_has(client, headers, stocked):
    two_nodes(client, headers)
    ship_one(stocked, "C-2", "SH-PD")
    r = client.post(f"{ORDERS}/C-2/cancel", headers=headers)
    assert r.status_code == 200
    states = {f["node"]: f["status"] for f in r.get_json()["fulfilments"]}
    assert states == {"SH-PD": "shipped", "HZ-XS": "cancelled"}
    assert r.get_json()["status"] == "shipped"
    assert stock_of(stocked, "SH-PD", "SKU-0002") == (4, 0)
    assert stock_of(stocked, "HZ-XS", "SKU-0042") == (4, 0)
    assert client.post(f"{ORDERS}/C-2/cancel", headers=headers).status_code == 200  # repeat: no-op
    check_invariants(stocked)


def test_cancel_when_every_fulfilment_has_shipped_is_409_conflict(client, headers, stocked, caplog):
    two_nodes(client, headers)
    ship(stocked, "C-2")
    with refused(stocked, caplog):
        r = client.post(f"{ORDERS}/C-2/cancel", headers=headers)
    assert error(r, 409, "conflict")["reason"] == "order_already_shipped"
    assert client.get(f"{ORDERS}/C-2", headers=headers).get_json()["status"] == "shipped"


def test_cancel_of_an_unknown_order_is_404(client, headers, stocked, caplog):
    with refused(stocked, caplog):
        r = client.post(f"{ORDERS}/NOPE/cancel", headers=headers)
    error(r, 404, "not_found")


# --- receipt --------------------------------------------------------------------------------

def test_receipt_before_shipping_is_409_conflict(client, headers, stocked, caplog):
    place(client, headers)
    with refused(stocked, caplog):
        r = client.post(f"{ORDERS}/C-1/receipt", headers=headers)
    details = error(r, 409, "conflict")
    assert details["reason"] == "receipt_not_allowed"
    assert [p["status"] for p in details["pending"]] == ["reserved"]


def test_receipt_while_one_fulfilment_has_not_shipped_is_409(client, headers, stocked, caplog):
    two_nodes(client, headers)
    ship_one(stocked, "C-2", "HZ-XS")
    with refused(stocked, caplog):
        r = client.post(f"{ORDERS}/C-2/receipt", headers=headers)
    assert [p["status"] for p in error(r, 409, "conflict")["pending"]] == ["reserved"]


def test_receipt_after_shipping_completes_every_fulfilment_and_records_when(client, headers, stocked):
    two_nodes(client, headers)
    ship(stocked, "C-2")
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    r = client.post(f"{ORDERS}/C-2/receipt", headers=headers)
    assert r.status_code == 200
    doc = r.get_json()
    assert doc["status"] == "completed"
    for f in doc["fulfilments"]:
        assert f["status"] == "completed"
        assert dt.datetime.fromisoformat(f["completed_at"]) >= before
    types = [e["type"] for e in doc["events"]]
    assert types.count("fulfilment.completed") == 2 and types[-1] == "order.completed"
    check_invariants(stocked)


def test_repeating_a_receipt_is_a_no_op_200(client, headers, stocked):
    place(client, headers)
    ship(stocked, "C-1")
    first = client.post(f"{ORDERS}/C-1/receipt", headers=headers)
    before = snapshot(stocked)
    again = client.post(f"{ORDERS}/C-1/receipt", headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.get_json() == first.get_json()
    assert snapshot(stocked) == before


def test_receipt_of_a_cancelled_order_is_409(client, headers, stocked, caplog):
    place(client, headers)
    client.post(f"{ORDERS}/C-1/cancel", headers=headers)
    with refused(stocked, caplog):
        r = client.post(f"{ORDERS}/C-1/receipt", headers=headers)
    assert error(r, 409, "conflict")["reason"] == "order_cancelled"


def test_receipt_ignores_a_cancelled_part_of_a_shipped_order(client, headers, stocked):
    two_nodes(client, headers)
    ship_one(stocked, "C-2", "SH-PD")
    client.post(f"{ORDERS}/C-2/cancel", headers=headers)
    doc = client.post(f"{ORDERS}/C-2/receipt", headers=headers).get_json()
    assert {f["node"]: f["status"] for f in doc["fulfilments"]} == {"SH-PD": "completed", "HZ-XS": "cancelled"}
    assert doc["status"] == "completed"
