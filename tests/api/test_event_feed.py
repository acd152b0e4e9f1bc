"""GET /api/v1/events: a channel's own events, in seq order, paged with
`after` and `limit`; a client that keeps `next_after` misses nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.fulfilment import events
from app.models import Order
from support import check_invariants, error, order_body, refused, ship

EVENTS = "/api/v1/events"


def orders(client, headers, *external_ids):
    for ext in external_ids:
        assert client.post("/api/v1/orders", json=order_body(ext, [("SKU-0001", 1)]),
                           headers=headers).status_code == 201


def read_all(client, headers, limit: int) -> list[dict]:
    seen, after = [], 0
    while True:
        page = client.get(EVENTS, query_string={"after": after, "limit": limit}, headers=headers).get_json()
        assert len(page["events"]) <= limit
        if not page["events"]:
            assert page["next_after"] == after
            return seen
        assert page["next_after"] == page["events"][-1]["seq"]
        seen += page["events"]
        after = page["next_after"]


def test_the_feed_pages_through_every_event_once_in_seq_order(client, headers, stocked):
    orders(client, headers, "E-1", "E-2", "E-3")
    client.post("/api/v1/orders/E-2/cancel", headers=headers)
    everything = client.get(EVENTS, query_string={"limit": 1000}, headers=headers).get_json()["events"]
    assert [e["type"] for e in everything] == ["order.received", "fulfilment.reserved", "order.status_changed"] * 3 + [
        "fulfilment.cancelled", "order.status_changed", "order.cancelled"]
    for limit in (1, 2, 3, 7):
        assert read_all(client, headers, limit) == everything
    seqs = [e["seq"] for e in everything]
    assert seqs == sorted(set(seqs))
    e = everything[1]
    assert (e["order"], e["fulfilment"], e["data"]["node"]) == ("E-1", "F-000001-1", "SH-PD")
    check_invariants(stocked)


def test_a_client_polling_with_next_after_sees_only_what_is_new(client, headers, stocked):
    orders(client, headers, "E-1")
    first = client.get(EVENTS, headers=headers).get_json()
    orders(client, headers, "E-2")
    ship(stocked, "E-1")
    second = client.get(EVENTS, query_string={"after": first["next_after"]}, headers=headers).get_json()
    assert [(e["type"], e["order"]) for e in second["events"]] == [
        ("order.received", "E-2"), ("fulfilment.reserved", "E-2"), ("order.status_changed", "E-2"),
        ("fulfilment.shipped", "E-1"), ("order.status_changed", "E-1")]
    assert second["events"][0]["seq"] > first["next_after"]
    third = client.get(EVENTS, query_string={"after": second["next_after"]}, headers=headers).get_json()
    assert third == {"events": [], "next_after": second["next_after"]}


def test_a_channel_sees_only_its_own_events(client, headers, other_headers, stocked):
    orders(client, headers, "MINE-1")
    orders(client, other_headers, "THEIRS-1", "MINE-1")
    mine = client.get(EVENTS, headers=headers).get_json()["events"]
    theirs = client.get(EVENTS, headers=other_headers).get_json()["events"]
    assert {e["order"] for e in mine} == {"MINE-1"} and len(mine) == 3
    assert {e["order"] for e in theirs} == {"THEIRS-1", "MINE-1"} and len(theirs) == 6
    assert not {e["seq"] for e in mine} & {e["seq"] for e in theirs}
    # Master data events (the nodes and counts set up for this test) belong to no channel.
    assert all(e["type"].startswith(("order.", "fulfilment.")) for e in mine + theirs)
    check_invariants(stocked)


def test_the_default_page_is_100_and_the_largest_1000(client, headers, stocked, db):
    orders(client, headers, "E-1")
    with db.transaction() as s:
        order = s.scalar(select(Order))
        for i in range(1100):
            events.record(s, "test.ping", order=order, data={"i": i})
    assert len(client.get(EVENTS, headers=headers).get_json()["events"]) == 100
    page = client.get(EVENTS, query_string={"limit": 1000, "after": 5}, headers=headers).get_json()
    assert len(page["events"]) == 1000
    assert [e["seq"] for e in page["events"]] == list(range(page["events"][0]["seq"], page["next_after"] + 1))
    check_invariants(db)


@pytest.mark.parametrize("query, field", [
    ({"limit": 1001}, "limit"), ({"limit": 0}, "limit"), ({"limit": "ten"}, "limit"), ({"limit": "2.5"}, "limit"),
    ({"after": -1}, "after"), ({"after": "abc"}, "after"), ({"after": "1e3"}, "after"),
])
def test_a_bad_after_or_limit_is_422_naming_it(client, headers, stocked, caplog, query, field):
    with refused(stocked, caplog):
        r = client.get(EVENTS, query_string=query, headers=headers)
    assert error(r, 422, "invalid_request")["fields"] == [field]
