"""Courier tracking: POST /api/v1/carrier-events with a carrier's token.
Updates in order move the parcel; late ones are history only; duplicates
change nothing; unknown numbers are answered per item; delivered parcels
deliver their fulfilment and order, with events in the channel's feed."""
from __future__ import annotations

import datetime as dt

from deliveries import packed, shipped
from support import check_invariants, error, refused

T0 = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def at(minutes: int) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat()


def post(client, headers, *items):
    return client.post("/api/v1/carrier-events", headers=headers, json={"events": list(items)})


def update(number: str, status: str, minutes: int, description: str | None = None) -> dict:
    item = {"tracking_number": number, "status": status, "at": at(minutes)}
    if description:
        item["description"] = description
    return item


def document(client, headers, external_id):
    answer = client.get(f"/api/v1/orders/{external_id}", headers=headers)
    assert answer.status_code == 200
    return answer.get_json()


def feed(client, headers, after=0):
    return client.get(f"/api/v1/events?after={after}&limit=1000", headers=headers).get_json()["events"]


def test_updates_in_order_move_the_parcel_and_deliver_the_fulfilment_and_order(floor, client, headers,
                                                                                carrier_headers):
    [number] = shipped(floor, "C-1")
    before = feed(client, headers)[-1]["seq"]
    answer = post(client, carrier_headers, update(number, "in_transit", 60, "到达上海转运中心"),
                  update(number, "out_for_delivery", 120), update(number, "delivered", 180, "本人签收"))
    assert answer.status_code == 200
    body = answer.get_json()
    assert [r["result"] for r in body["results"]] == ["applied"] * 3
    assert [r["parcel_status"] for r in body["results"]] == ["in_transit", "out_for_delivery", "delivered"]
    assert body["summary"] == {"applied": 3}

    doc = document(client, headers, "C-1")
    assert doc["status"] == "delivered"
    [f] = doc["fulfilments"]
    assert f["status"] == "delivered"
    assert dt.datetime.fromisoformat(f["delivered_at"]) == T0 + dt.timedelta(minutes=180)
    [parcel] = f["parcels"]
    assert parcel["status"] == "delivered" and parcel["proof"] == "carrier"
    assert [(t["status"], t["description"]) for t in parcel["tracking"]] == [
        ("in_transit", "到达上海转运中心"), ("out_for_delivery", None), ("delivered", "本人签收")]
    placed = dt.datetime.fromisoformat("2026-11-24T10:02:00+08:00")
    assert f["fulfilment_time"] == {"placed_to_delivered_seconds": int((T0 + dt.timedelta(minutes=180) - placed)
                                                                       .total_seconds())}

    types = [e["type"] for e in feed(client, headers, before)]
    assert types == ["parcel.in_transit", "parcel.out_for_delivery", "parcel.delivered",
                     "fulfilment.delivered", "order.status_changed", "order.delivered"]
    delivered = feed(client, headers, before)[2]
    assert delivered["order"] == "C-1" and delivered["fulfilment"] == f["id"]
    assert delivered["data"]["tracking_number"] == number and delivered["data"]["applied"] is True
    check_invariants(floor)


def test_an_older_update_is_recorded_but_never_moves_the_parcel_back(floor, client, headers, carrier_headers):
    [number] = shipped(floor, "C-2")
    assert post(client, carrier_headers, update(number, "out_for_delivery", 120)).status_code == 200
    late = post(client, carrier_headers, update(number, "in_transit", 60, "揽收")).get_json()["results"]
    assert late == [{"tracking_number": number, "status": "in_transit", "at": at(60), "result": "recorded",
                     "parcel_status": "out_for_delivery"}]
    [parcel] = document(client, headers, "C-2")["fulfilments"][0]["parcels"]
    assert parcel["status"] == "out_for_delivery"
    # The history is in the courier's time order, the late one included.
    assert [t["status"] for t in parcel["tracking"]] == ["in_transit", "out_for_delivery"]
    last = feed(client, headers)[-1]
    assert last["type"] == "parcel.in_transit"
    assert last["data"]["applied"] is False and last["data"]["parcel_status"] == "out_for_delivery"


def test_delivered_is_final_even_when_a_later_scan_arrives(floor, client, headers, carrier_headers):
    [number] = shipped(floor, "C-3")
    # Delivered first; then an in_transit from before and a stray one after it.
    results = post(client, carrier_headers, update(number, "delivered", 180), update(number, "in_transit", 60),
                   update(number, "failed_attempt", 240)).get_json()["results"]
    assert [r["result"] for r in results] == ["applied", "recorded", "recorded"]
    doc = document(client, headers, "C-3")
    assert doc["status"] == "delivered" and doc["fulfilments"][0]["parcels"][0]["status"] == "delivered"
    assert [t["status"] for t in doc["fulfilments"][0]["parcels"][0]["tracking"]] == [
        "in_transit", "delivered", "failed_attempt"]


def test_at_the_same_time_the_later_stage_wins(floor, client, headers, carrier_headers):
    [number] = shipped(floor, "C-4")
    results = post(client, carrier_headers, update(number, "out_for_delivery", 60),
                   update(number, "in_transit", 60)).get_json()["results"]
    assert [r["result"] for r in results] == ["applied", "recorded"]
    assert document(client, headers, "C-4")["fulfilments"][0]["parcels"][0]["status"] == "out_for_delivery"


def test_a_repeated_update_is_a_duplicate_and_changes_nothing(floor, client, headers, carrier_headers):
    [number] = shipped(floor, "C-5")
    batch = [update(number, "in_transit", 60), update(number, "delivered", 180)]
    assert [r["result"] for r in post(client, carrier_headers, *batch).get_json()["results"]] == ["applied"] * 2
    seq = feed(client, headers)[-1]["seq"]
    doc = document(client, headers, "C-5")
    again = post(client, carrier_headers, *batch, batch[0])
    assert again.status_code == 200
    assert [r["result"] for r in again.get_json()["results"]] == ["duplicate"] * 3
    assert again.get_json()["summary"] == {"duplicate": 3}
    assert feed(client, headers, seq) == []
    assert document(client, headers, "C-5")["fulfilments"] == doc["fulfilments"]
    # A different description is still the same report.
    same = post(client, carrier_headers, update(number, "in_transit", 60, "another text")).get_json()
    assert same["results"][0]["result"] == "duplicate"
    check_invariants(floor)


def test_unknown_numbers_are_answered_per_item_and_the_rest_still_counts(floor, client, headers, carrier_headers):
    [mine] = shipped(floor, "C-6")
    [riders] = packed(floor, "C-7", [("SKU-B", 1)], delivery="same_city")  # another carrier's parcel
    [waiting] = packed(floor, "C-8")  # express, not scanned out yet
    answer = post(client, carrier_headers, update("LY999999999990", "in_transit", 60), update(mine, "in_transit", 60),
                  update(riders, "in_transit", 60), update(waiting.lower(), "in_transit", 60))
    assert answer.status_code == 200
    results = answer.get_json()["results"]
    assert [r["result"] for r in results] == ["unknown_tracking_number", "applied", "unknown_tracking_number",
                                              "not_shipped"]
    assert results[0]["error"]["code"] == "unknown_tracking_number" and "LY999999999990" in results[0]["error"]["message"]
    assert results[3]["error"]["code"] == "parcel_not_shipped" and results[3]["parcel_status"] == "packed"
    assert answer.get_json()["summary"] == {"unknown_tracking_number": 2, "applied": 1, "not_shipped": 1}
    assert document(client, headers, "C-6")["fulfilments"][0]["parcels"][0]["status"] == "in_transit"
    assert document(client, headers, "C-8")["fulfilments"][0]["parcels"][0]["tracking"] == []


def test_a_malformed_batch_is_refused_whole_and_writes_nothing(floor, client, carrier_headers, caplog):
    [number] = shipped(floor, "C-9")
    with refused(floor, caplog):
        answer = post(client, carrier_headers, update(number, "in_transit", 60),
                      {"tracking_number": number, "status": "lost", "at": at(90)},
                      {"tracking_number": number, "status": "delivered", "at": "2026-11-25T12:00:00"})
    fields = error(answer, 422, "invalid_request")["fields"]
    assert fields == ["events[1].status", "events[2].at"]
    for body in ({}, {"events": []}, {"events": "x"}):
        assert client.post("/api/v1/carrier-events", headers=carrier_headers, json=body).status_code == 422


def test_a_fulfilment_is_delivered_when_its_last_parcel_is(floor, client, headers, carrier_headers):
    first, second = shipped(floor, "C-10", [("SKU-A", 2)], parcels=2)
    post(client, carrier_headers, update(first, "delivered", 100))
    doc = document(client, headers, "C-10")
    assert doc["status"] == "shipped" and doc["fulfilments"][0]["status"] == "shipped"
    assert [p["status"] for p in doc["fulfilments"][0]["parcels"]] == ["delivered", "shipped"]
    post(client, carrier_headers, update(second, "delivered", 200))
    doc = document(client, headers, "C-10")
    assert doc["status"] == "delivered"
    assert dt.datetime.fromisoformat(doc["fulfilments"][0]["delivered_at"]) == T0 + dt.timedelta(minutes=200)
    check_invariants(floor)


def test_a_channel_token_may_not_post_tracking_and_a_carrier_token_only_may(floor, client, headers,
                                                                           admin_headers, carrier_headers):
    [number] = shipped(floor, "C-11")
    for who in (headers, admin_headers):
        error(post(client, who, update(number, "in_transit", 60)), 403, "forbidden")
    for method, path in (("get", "/api/v1/events"), ("get", "/api/v1/orders/C-11"),
                         ("post", "/api/v1/orders/C-11/cancel"), ("get", "/api/v1/webhook"),
                         ("get", "/api/v1/reports/sla")):
        error(getattr(client, method)(path, headers=carrier_headers), 403, "forbidden")
    error(post(client, {"Authorization": "Bearer nope"}, update(number, "in_transit", 60)), 401, "unauthorized")
    assert post(client, carrier_headers, update(number, "in_transit", 60)).status_code == 200


def test_the_cli_makes_carrier_tokens_for_known_carriers_only(floor, runner, client):
    made = runner.invoke(args=["token", "create", "--carrier", "ly-express"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("lyc_")
    assert client.post("/api/v1/carrier-events", headers={"Authorization": f"Bearer {token}"},
                       json={"events": [update("LY000000000017", "in_transit", 1)]}).status_code == 200
    assert runner.invoke(args=["token", "create", "--carrier", "nobody"]).exit_code != 0
    assert runner.invoke(args=["token", "create"]).exit_code != 0
    assert runner.invoke(args=["token", "create", "--carrier", "ly-express", "--channel", "x"]).exit_code != 0
