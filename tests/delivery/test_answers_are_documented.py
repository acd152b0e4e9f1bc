"""Real answers of every operation, on a floor that ships, delivers, returns
and cancels, validate against the OpenAPI document's models: the views'
dicts and the documented contract are the same."""
from __future__ import annotations

import pytest

from deliveries import packed, shipped
from documented import conforms
from support import node_body, order_body


@pytest.fixture
def call(app, client):
    def call(method: str, url: str, headers: dict, **kwargs) -> dict:
        r = getattr(client, method)(url, headers=headers, **kwargs)
        assert r.status_code < 500, r.get_data(as_text=True)
        return conforms(app, r)
    return call


def test_every_answer_of_a_busy_day_matches_its_documented_model(floor, call, headers, admin_headers,
                                                                 carrier_headers):
    body = order_body("API-1", [("SKU-A", 2)])
    call("post", "/api/v1/orders", headers, json=body)
    call("post", "/api/v1/orders", headers, json=body)  # the same again: 200
    call("post", "/api/v1/orders", headers, json={**body, "lines": [{"sku": "SKU-A", "quantity": 3}]})  # 409
    call("post", "/api/v1/orders", headers, json={**body, "ship_to": {}})  # 422
    call("get", "/api/v1/orders/API-1", headers)
    call("get", "/api/v1/orders/NOPE", headers)
    call("post", "/api/v1/orders/API-1/cancel", headers)

    numbers = shipped(floor, "SHIPPED-1", lines=(("SKU-A", 2),))
    results = call("post", "/api/v1/carrier-events", carrier_headers, json={"events": [
        {"tracking_number": numbers[0], "status": "delivered", "at": "2026-11-25T10:00:00+08:00"},
        {"tracking_number": "NO-SUCH", "status": "in_transit", "at": "2026-11-25T10:00:00+08:00"}]})
    assert [r["result"] for r in results["results"]][1] == "unknown_tracking_number"
    delivered = call("get", "/api/v1/orders/SHIPPED-1", headers)
    assert delivered["fulfilments"][0]["parcels"][0]["tracking"]
    call("post", "/api/v1/orders/SHIPPED-1/returns", headers,
         json={"return_id": "RT-1", "reason": "不想要了", "lines": [{"sku": "SKU-A", "quantity": 1}]})
    call("post", "/api/v1/orders/SHIPPED-1/receipt", headers)
    call("post", "/api/v1/orders/API-1/receipt", headers)  # 409: cancelled
    packed(floor, "CITY-1", lines=(("SKU-B", 1),), delivery="same_city")
    city = call("get", "/api/v1/orders/CITY-1", headers)
    assert city["fulfilments"][0]["parcels"][0]["delivery_code"]

    feed = call("get", "/api/v1/events?limit=1000", headers)
    assert feed["events"]
    call("get", "/api/v1/events?after=-1", headers)  # 422
    call("get", "/api/v1/webhook", headers)  # 404: none yet
    call("put", "/api/v1/webhook", headers, json={"url": "https://erp.example.com/hook", "after": 0})
    call("put", "/api/v1/webhook", headers, json={"url": "https://erp.example.com/hook2"})
    call("get", "/api/v1/webhook", headers)
    call("get", "/api/v1/webhook/deliveries", headers)
    call("delete", "/api/v1/webhook", headers)

    call("put", "/api/v1/nodes/SH-NEW", admin_headers, json=node_body())
    call("put", "/api/v1/nodes/SH-NEW", headers, json=node_body())  # 403
    call("put", "/api/v1/skus/SKU-NEW", admin_headers, json={"name": "新品", "barcodes": ["6901234567892"]})  # 409
    call("put", "/api/v1/skus/SKU-NEW", admin_headers, json={"name": "新品"})
    call("put", "/api/v1/nodes/SH-NEW/stock", admin_headers,
         json={"items": [{"location": "A-01-01-1", "sku": "SKU-NEW", "on_hand": 4}]})
    call("put", "/api/v1/nodes/NOPE/stock", admin_headers,
         json={"items": [{"location": "A-01-01-1", "sku": "SKU-NEW", "on_hand": 4}]})  # 404
    call("get", "/api/v1/nodes", admin_headers)
    call("get", "/api/v1/nodes/SH-PD", admin_headers)
    call("get", "/api/v1/skus?updated_after=2020-01-01T00:00:00Z", admin_headers)
    call("get", "/api/v1/skus/SKU-A", admin_headers)
    call("get", "/api/v1/nodes/SH-PD/stock", admin_headers)
    call("get", "/api/v1/nodes/SH-PD/stock?by=bin", admin_headers)
    call("get", "/api/v1/reports/sla", admin_headers)
    call("get", "/api/v1/reports/sla?by_day=false", admin_headers)
    call("get", "/api/v1/reports/sla?from=yesterday", admin_headers)  # 422
    call("get", "/api/v1/reports/sla.csv", admin_headers)
    call("get", "/api/v1/nodes", {})  # 401
