"""One order's whole journey, once per delivery mode, through the real entry
points: the order API, the picking, pack and dock screens (or the rider's
phone), the carrier-events API, receipt. The sales platform sees every step,
in seq order, in its event feed and on its webhook, each push signed with
its secret."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import time

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from app import access, webhooks
from app.models import Barcode, Node, Role, Sku, User
from support import PLACES, Receiver, check_invariants, order_body, world

HX = {"HX-Request": "true"}
SECRET = "journey-secret-0123456789"
PIN = "1234"
PIN_HASH = generate_password_hash(PIN, "pbkdf2:sha256:1000")  # cheap: scrypt per user would dominate
GTIN = {"SKU-A": "6901234567892", "SKU-B": "6901234000016"}
# (badge, role, node): express goes from SH-PD (a warehouse), same-city from SH-STORE (a store, 8 km).
USERS = [("P1", "picker", "SH-PD"), ("K1", "packer", "SH-PD"), ("D1", "dock", "SH-PD"),
         ("P2", "picker", "SH-STORE"), ("K2", "packer", "SH-STORE"), ("R1", "rider", "SH-STORE")]
MODES = {
    # delivery: (SKU, units, node, picker, packer)
    "express": ("SKU-A", 2, "SH-PD", "P1", "K1"),
    "same_city": ("SKU-B", 1, "SH-STORE", "P2", "K2"),
}
BEFORE_DELIVERY = ["order.received", "fulfilment.reserved", "order.status_changed", "fulfilment.picking",
                   "fulfilment.picked", "parcel.packed", "fulfilment.packed", "parcel.shipped", "fulfilment.shipped",
                   "order.status_changed"]
DELIVERY = {
    "express": ["parcel.delivered", "fulfilment.delivered", "order.status_changed", "order.delivered"],
    # the rider's pickup scan ships the parcel and puts it out for delivery
    "same_city": ["parcel.out_for_delivery", "parcel.delivered", "fulfilment.delivered", "order.status_changed",
                  "order.delivered"],
}
AFTER_DELIVERY = ["fulfilment.completed", "order.status_changed", "order.completed"]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def floor(db):
    nodes = {"SH-PD": PLACES["SH-PD"],
             "SH-STORE": {**PLACES["SH-STORE"], "kind": "store", "same_city_radius_km": 8}}
    # SKU-A only at the warehouse, SKU-B only at the store; one bin each, A-01-01-1.
    world(db, {"SH-PD": {"SKU-A": 20}, "SH-STORE": {"SKU-B": 20}}, nodes=nodes)
    with db.transaction() as s:
        for sku, code in GTIN.items():
            s.add(Barcode(code=code, sku_id=s.scalar(select(Sku.id).where(Sku.code == sku))))
        node_ids = {n.code: n.id for n in s.scalars(select(Node))}
        for badge, role, node in USERS:
            s.add(User(code=badge, name=badge, role=Role(role), node_id=node_ids[node], pin_hash=PIN_HASH,
                       language="en"))
    return db


def ok(answer) -> str:
    """A screen that accepted the request (a refusal answers 422 with data-refusal)."""
    html = answer.get_data(as_text=True)
    refusal = re.search(r'data-refusal="([a-z_]+)"', html)
    assert answer.status_code == 200 and refusal is None, (answer.status_code, refusal and refusal.group(1))
    return html


def as_user(client, badge: str) -> None:
    client.post("/logout")
    answer = client.post("/login/pin", data={"badge": badge, "pin": PIN})
    assert answer.status_code == 302, answer.get_data(as_text=True)


def feed(client, headers) -> list[dict]:
    """The channel's whole feed, a page of 3 at a time, following next_after."""
    items, after = [], 0
    for _ in range(100):
        page = client.get(f"/api/v1/events?after={after}&limit=3", headers=headers)
        assert page.status_code == 200, page.get_json()
        page = page.get_json()
        if not page["events"]:
            assert page["next_after"] == after
            return items
        items += page["events"]
        after = page["next_after"]
        assert after == items[-1]["seq"]
    raise AssertionError("the feed does not end")


@pytest.mark.parametrize("delivery", ["express", "same_city"])
def test_an_order_goes_from_intake_to_completed_and_the_channel_sees_every_step(
        floor, app, client, headers, carrier_headers, receiver, delivery):
    sku, units, node, picker, packer = MODES[delivery]
    external_id = f"J-{delivery}"

    # The sales platform registers its webhook before the order exists (its
    # receiver here listens on 127.0.0.1, which the operator allows).
    app.config["LUYUE"].webhook_allow_private = True
    hook = client.put("/api/v1/webhook", headers=headers, json={"url": receiver.url, "secret": SECRET})
    assert hook.status_code in (200, 201), hook.get_json()

    # Intake: placed a few minutes ago, to the customer ~3 km from both nodes.
    now = dt.datetime.now(dt.timezone.utc)
    body = order_body(external_id, [(sku, units)], delivery=delivery,
                      placed_at=(now - dt.timedelta(minutes=5)).isoformat(),
                      promised_by=(now + dt.timedelta(days=1)).isoformat())
    answer = client.post("/api/v1/orders", json=body, headers=headers)
    assert answer.status_code == 201, answer.get_json()
    [f] = answer.get_json()["fulfilments"]
    assert (f["status"], f["node"]) == ("reserved", node)
    ref = f["id"]

    # Picking screens: claim, the tote, the bin, each unit, the tote again.
    as_user(client, picker)
    ok(client.post("/pick/claim", data={"orders": "1"}, headers=HX))
    tote = f"TOTE-{delivery.upper()}"
    for n, code in enumerate([tote, "A-01-01-1"] + [GTIN[sku]] * units + [tote]):
        ok(client.post("/pick/scan", data={"scan": code, "scan_id": f"{external_id}-pick-{n}"}, headers=HX))
    assert document(client, headers, external_id)["fulfilments"][0]["status"] == "picked"

    # Pack bench: the tote opens the fulfilment, each unit in, weighed and closed.
    as_user(client, packer)
    ok(client.post("/pack/start", data={"scan": tote, "scan_id": f"{external_id}-pack-start"}, headers=HX))
    for n in range(units):
        ok(client.post(f"/pack/f/{ref}/scan", data={"scan": GTIN[sku], "scan_id": f"{external_id}-pack-{n}"},
                       headers=HX))
    ok(client.post(f"/pack/f/{ref}/close", data={"weight": "850 g", "scan_id": f"{external_id}-pack-close"},
                   headers=HX))
    doc = document(client, headers, external_id)
    [parcel] = doc["fulfilments"][0]["parcels"]
    assert doc["fulfilments"][0]["status"] == "packed" and parcel["weight_g"] == 850
    number = parcel["tracking_number"]

    if delivery == "express":
        assert parcel["carrier"] == "ly-express" and "delivery_code" not in parcel
        # The dock's handover scan ships it; the carrier reports it delivered.
        as_user(client, "D1")
        opened = ok(client.post("/ship/open", data={"carrier": "ly-express"}, headers=HX))
        handover = re.search(r"/ship/h/([A-Za-z0-9-]+)/scan", opened).group(1)
        ok(client.post(f"/ship/h/{handover}/scan", data={"scan": number, "scan_id": f"{external_id}-dock"},
                       headers=HX))
        assert document(client, headers, external_id)["fulfilments"][0]["status"] == "shipped"
        reported = client.post("/api/v1/carrier-events", headers=carrier_headers, json={"events": [
            {"tracking_number": number, "status": "delivered",
             "at": dt.datetime.now(dt.timezone.utc).isoformat(), "description": "签收"}]})
        assert reported.status_code == 200, reported.get_json()
        assert [r["result"] for r in reported.get_json()["results"]] == ["applied"]
    else:
        assert parcel["carrier"] == "ly-rider"
        code = parcel["delivery_code"]
        assert re.fullmatch(r"\d{4}", code)
        # The rider's pickup scan ships it; the customer's code delivers it.
        as_user(client, "R1")
        ok(client.post("/ride/pickup", data={"scan": number, "scan_id": f"{external_id}-pickup"}, headers=HX))
        assert document(client, headers, external_id)["fulfilments"][0]["status"] == "shipped"
        parcel_id = parcel_id_of(floor, number)
        ok(client.post(f"/ride/drops/{parcel_id}/code", data={"code": code, "scan_id": f"{external_id}-code"},
                       headers=HX))
    client.post("/logout")
    doc = document(client, headers, external_id)
    assert doc["status"] == "delivered" and doc["fulfilments"][0]["status"] == "delivered"
    assert doc["fulfilments"][0]["parcels"][0]["status"] == "delivered"

    # The customer confirms receipt.
    received = client.post(f"/api/v1/orders/{external_id}/receipt", headers=headers)
    assert received.status_code == 200, received.get_json()
    doc = received.get_json()
    assert doc == document(client, headers, external_id)
    [f] = doc["fulfilments"]
    assert doc["status"] == "completed" and f["status"] == "completed"
    placed = dt.datetime.fromisoformat(doc["placed_at"])
    completed = dt.datetime.fromisoformat(f["completed_at"])
    delivered = dt.datetime.fromisoformat(f["delivered_at"])
    assert placed < delivered <= completed <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    times = f["fulfilment_time"]
    # The document's times are shown to the millisecond; the seconds are whole.
    assert abs(times["placed_to_completed_seconds"] - (completed - placed).total_seconds()) < 1
    assert abs(times["placed_to_delivered_seconds"] - (delivered - placed).total_seconds()) < 1
    assert 5 * 60 - 1 <= times["placed_to_delivered_seconds"] <= times["placed_to_completed_seconds"] < 10 * 60

    # The feed: every step of this order, in seq order, and nothing else of it.
    items = feed(client, headers)
    expected = BEFORE_DELIVERY + DELIVERY[delivery] + AFTER_DELIVERY
    assert [i["type"] for i in items] == expected
    assert [i["seq"] for i in items] == sorted(i["seq"] for i in items)
    assert {i["order"] for i in items} == {external_id}
    assert {i["fulfilment"] for i in items if i["type"].startswith(("fulfilment.", "parcel."))} == {ref}
    completed_event = next(i for i in items if i["type"] == "fulfilment.completed")
    assert completed_event["data"]["fulfilment_seconds"] == times["placed_to_completed_seconds"]

    # The webhook: the sender, started with tiny backoff, pushes exactly that feed, signed.
    s = app.config["LUYUE"]
    sender = webhooks.Sender(floor, timeout=s.webhook_timeout_seconds, backoff_base=0.05, backoff_cap=0.2,
                             poll=0.05, allow_private=s.webhook_allow_private).start()
    try:
        deadline = time.monotonic() + 10
        while len(receiver.accepted()) < len(items) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)  # anything extra would have come by now
    finally:
        sender.stop(wait=2)
    got = receiver.accepted()
    assert [json.loads(b) for _, b in got] == items
    for (head, raw), item in zip(got, items):
        signature = {k.lower(): v for k, v in head.items()}
        expected_sig = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(signature["x-luyue-signature"], expected_sig)
        assert signature["x-luyue-seq"] == str(item["seq"]) and signature["x-luyue-event"] == item["type"]
    state = client.get("/api/v1/webhook", headers=headers).get_json()
    assert state["delivered_seq"] == items[-1]["seq"] and state["pending"] == 0 and state["failures"] == 0

    check_invariants(floor)


@pytest.fixture
def carrier_headers(db) -> dict[str, str]:
    with db.transaction() as s:
        token = access.create_carrier_token(s, "ly-express")
    return {"Authorization": f"Bearer {token}"}


def document(client, headers, external_id: str) -> dict:
    answer = client.get(f"/api/v1/orders/{external_id}", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def parcel_id_of(db, number: str) -> int:
    from app.models import Parcel
    with db.reading() as s:
        return s.scalar(select(Parcel.id).where(Parcel.tracking_number == number))
