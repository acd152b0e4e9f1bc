"""Customer returns (RMA): the platform (or a lead) authorises a return of
delivered units; the dock receives it unit by unit, each unit sellable (into
a bin, on hand again), damaged or quarantined (held out of stock). The
contract: POST /api/v1/orders/{external_id}/returns, idempotent on
return_id, 409 when nothing was delivered or the return_id is reused, 422
with field paths over what was delivered; the order document lists
`returns`, and the feed says return.authorised, then return.received."""
from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import select
from support import check_invariants, count, fulfilments_of, snapshot, stock_of
from test_returns import _bin, _events, _node, _report, _shipped, _submit, _user, floor  # noqa: F401

from app import access
from app.fulfilment import customer_returns, returns
from app.fulfilment.errors import Refusal
from app.models import (
    CustomerReturn,
    Disposition,
    FulfilmentStatus,
    Order,
    QuarantineStock,
    Sku,
    TrackingStatus,
)


def _delivered(db, external_id, lines) -> str:
    tn = _shipped(db, external_id, lines)
    _report(db, tn, TrackingStatus.delivered)
    return tn


def _authorise(client, headers, external_id, body):
    return client.post(f"/api/v1/orders/{external_id}/returns", headers=headers, json=body)


def _ref(db, external_id, return_id) -> str:
    with db.reading() as s:
        return s.scalar(select(CustomerReturn.ref).join(Order).where(Order.external_id == external_id,
                                                                     CustomerReturn.return_id == return_id))


def _count(db, ref, sku, quantity, disposition, bin_code=None, scan_id="rma-0001", user="D001", node="SH-PD"):
    with db.transaction() as s:
        return returns.receive_units(s, _user(s, user), scan_id, _node(s, node), ref, sku, quantity,
                                     Disposition(disposition), bin_code)


def _held(db, node, sku) -> tuple[int, int] | None:
    with db.reading() as s:
        row = s.scalar(select(QuarantineStock).join(Sku, Sku.id == QuarantineStock.sku_id)
                       .where(QuarantineStock.node_id == _node(s, node).id, Sku.code == sku))
        return (row.quarantined, row.damaged) if row is not None else None


RT = {"return_id": "RT-20261205-0007", "reason": "不想要了", "lines": [{"sku": "SKU-A", "quantity": 1}]}


# --- the API ------------------------------------------------------------------------------------

def test_a_return_of_delivered_units_answers_201_with_the_order_document_listing_it(floor, client, headers):
    _delivered(floor, "T-1", [("SKU-A", 2), ("SKU-B", 1)])
    answer = _authorise(client, headers, "T-1", RT)
    assert answer.status_code == 201
    doc = answer.get_json()
    assert doc["external_id"] == "T-1" and doc["status"] == "delivered"
    [ret] = doc["returns"]
    assert ret["return_id"] == "RT-20261205-0007" and ret["status"] == "authorised"
    assert ret["lines"] == [{"sku": "SKU-A", "quantity": 1, "received": 0, "sellable": 0, "damaged": 0,
                             "quarantined": 0}]
    assert ret["reason"] == "不想要了" and ret["ref"].startswith("R-") and ret["authorised_by"] == "shop"
    assert client.get("/api/v1/orders/T-1", headers=headers).get_json()["returns"] == doc["returns"]
    [event] = _events(floor, "return.authorised")
    # The event carries the order document's entry (and who authorised it).
    assert event.data == {**ret, "by": "shop"}
    feed = client.get("/api/v1/events?after=0&limit=1000", headers=headers).get_json()["events"]
    assert feed[-1]["type"] == "return.authorised" and feed[-1]["order"] == "T-1"
    check_invariants(floor)


def test_the_same_return_again_answers_200_and_a_different_one_under_its_id_409(floor, client, headers):
    _delivered(floor, "T-1", [("SKU-A", 2)])
    first = _authorise(client, headers, "T-1", RT).get_json()
    before = snapshot(floor)
    again = _authorise(client, headers, "T-1", RT)
    assert again.status_code == 200 and again.get_json()["returns"] == first["returns"]
    other = _authorise(client, headers, "T-1", {**RT, "lines": [{"sku": "SKU-A", "quantity": 2}]})
    assert other.status_code == 409
    error = other.get_json()["error"]
    assert error["code"] == "conflict" and error["details"]["reason"] == "return_id_reused"
    assert snapshot(floor) == before


def test_quantities_over_delivered_minus_authorised_are_refused_with_field_paths(floor, client, headers):
    _delivered(floor, "T-1", [("SKU-A", 2)])
    assert _authorise(client, headers, "T-1", RT).status_code == 201
    before = snapshot(floor)
    answer = _authorise(client, headers, "T-1", {"return_id": "RT-2", "lines": [
        {"sku": "SKU-A", "quantity": 2}, {"sku": "SKU-B", "quantity": 1}]})
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    assert error["code"] == "invalid_request" and error["details"]["fields"] == ["lines[0].quantity", "lines[1].sku"]
    assert "at most 1 of SKU-A can be returned (2 delivered, 1 already authorised)" in error["message"]
    assert snapshot(floor) == before
    assert _authorise(client, headers, "T-1", {"return_id": "RT-2", "lines": [
        {"sku": "SKU-A", "quantity": 1}]}).status_code == 201


@pytest.mark.parametrize("body, fields", [
    ({"lines": [{"sku": "SKU-A", "quantity": 1}]}, ["return_id"]),
    ({"return_id": "RT-1", "lines": []}, ["lines"]),
    ({"return_id": "RT-1", "lines": [{"sku": "SKU-A", "quantity": 0}]}, ["lines[0].quantity"]),
    ({"return_id": "RT-1", "lines": [{"sku": "SKU-A", "quantity": "1"}]}, ["lines[0].quantity"]),
    ({"return_id": "RT-1", "lines": [{"sku": "SKU-A", "quantity": 1}, {"sku": "SKU-A", "quantity": 1}]},
     ["lines[1].sku"]),
    ([1, 2], ["$"]),
], ids=["no_return_id", "no_lines", "zero", "string_quantity", "sku_twice", "not_an_object"])
def test_a_bad_body_is_refused_with_its_field_path_and_nothing_written(floor, client, headers, body, fields):
    _delivered(floor, "T-1", [("SKU-A", 2)])
    before = snapshot(floor)
    answer = _authorise(client, headers, "T-1", body)
    assert answer.status_code == 422
    assert answer.get_json()["error"]["details"]["fields"] == fields
    assert snapshot(floor) == before


def test_an_order_with_nothing_delivered_answers_409(floor, client, headers):
    _shipped(floor, "T-1", [("SKU-A", 1)])  # on its way, not delivered
    before = snapshot(floor)
    answer = _authorise(client, headers, "T-1", RT)
    assert answer.status_code == 409
    error = answer.get_json()["error"]
    assert error["code"] == "conflict" and error["details"]["reason"] == "return_nothing_delivered"
    assert snapshot(floor) == before
    assert _authorise(client, headers, "NOPE", RT).status_code == 404


def test_receipt_confirmed_counts_as_delivered(floor, client, headers):
    _shipped(floor, "T-1", [("SKU-A", 1)])
    assert client.post("/api/v1/orders/T-1/receipt", headers=headers).status_code == 200
    assert _authorise(client, headers, "T-1", RT).status_code == 201


# --- the dock ----------------------------------------------------------------------------------

def test_the_dock_receives_a_return_unit_by_unit_and_the_platform_hears_the_dispositions(floor, client, headers):
    tn = _delivered(floor, "T-1", [("SKU-A", 2), ("SKU-B", 1)])
    _authorise(client, headers, "T-1", {"return_id": "RT-1", "lines": [{"sku": "SKU-A", "quantity": 2},
                                                                       {"sku": "SKU-B", "quantity": 1}]})
    ref = _ref(floor, "T-1", "RT-1")
    with floor.reading() as s:  # the delivered parcel's label, the reference and return_id all find it
        assert returns.found_at(s, _node(s, "SH-PD"), tn).ref == ref
        assert returns.found_at(s, _node(s, "SH-PD"), ref.lower()).ref == ref
        assert returns.found_at(s, _node(s, "SH-PD"), "RT-1").ref == ref
    assert stock_of(floor, "SH-PD", "SKU-A") == (1, 0)

    first = _count(floor, ref, "SKU-A", 1, "sellable", scan_id="rma-1")  # into its usual bin
    assert (first.what, first.location, first.complete) == ("counted", "A-01-01-1", False)
    assert _count(floor, ref, "SKU-A", 1, "quarantine", scan_id="rma-2").location is None
    done = _count(floor, ref, "SKU-B", 1, "damaged", scan_id="rma-3")

    assert done.complete
    assert stock_of(floor, "SH-PD", "SKU-A") == (2, 0) and _bin(floor, "A-01-01-1", "SKU-A") == 2
    assert stock_of(floor, "SH-PD", "SKU-B") == (4, 0)  # the damaged unit is not on hand
    assert _held(floor, "SH-PD", "SKU-A") == (1, 0) and _held(floor, "SH-PD", "SKU-B") == (0, 1)
    [event] = _events(floor, "return.received")
    assert event.data["lines"] == [
        {"sku": "SKU-A", "quantity": 2, "received": 2, "sellable": 1, "damaged": 0, "quarantined": 1},
        {"sku": "SKU-B", "quantity": 1, "received": 1, "sellable": 0, "damaged": 1, "quarantined": 0}]
    assert event.data["node"] == "SH-PD" and event.data["by"] == "D001"
    [ret] = client.get("/api/v1/orders/T-1", headers=headers).get_json()["returns"]
    assert ret["status"] == "received" and ret["lines"][0]["sellable"] == 1 and ret["node"] == "SH-PD"
    with floor.reading() as s:
        assert [p.sku for p in returns.return_items(s, s.scalar(select(CustomerReturn)), _node(s, "SH-PD"))] == [
            "SKU-A", "SKU-B"]
    check_invariants(floor)


def test_a_sellable_unit_goes_into_the_bin_scanned_and_dispatches_a_waiting_order(floor, client, headers):
    _delivered(floor, "T-1", [("SKU-A", 3)])
    _submit(floor, "T-2", [("SKU-A", 1)])
    [waiting] = fulfilments_of(floor, "T-2")
    assert waiting.status == FulfilmentStatus.awaiting_stock
    _authorise(client, headers, "T-1", RT)
    done = _count(floor, _ref(floor, "T-1", RT["return_id"]), "SKU-A", 1, "sellable", bin_code="a-01-02-1")
    assert done.location == "A-01-02-1" and done.dispatched == (waiting.ref,)
    assert _bin(floor, "A-01-02-1", "SKU-A") == 1 and stock_of(floor, "SH-PD", "SKU-A") == (1, 1)
    check_invariants(floor)


def test_the_same_scan_id_twice_counts_once(floor, client, headers):
    _delivered(floor, "T-1", [("SKU-A", 2)])
    _authorise(client, headers, "T-1", {**RT, "lines": [{"sku": "SKU-A", "quantity": 2}]})
    ref = _ref(floor, "T-1", RT["return_id"])
    _count(floor, ref, "SKU-A", 1, "damaged", scan_id="rma-retry")
    before = snapshot(floor)
    assert _count(floor, ref, "SKU-A", 1, "damaged", scan_id="rma-retry").what == "repeat"
    assert snapshot(floor) == before and _held(floor, "SH-PD", "SKU-A") == (0, 1)


def _refused(db, *args, **kwargs) -> Refusal:
    before = snapshot(db)
    with pytest.raises(Refusal) as refusal:
        _count(db, *args, **kwargs)
    assert snapshot(db) == before
    return refusal.value


def test_units_not_in_the_return_or_too_many_are_refused_and_nothing_written(floor, client, headers):
    _delivered(floor, "T-1", [("SKU-A", 2), ("SKU-B", 1)])
    _authorise(client, headers, "T-1", RT)
    ref = _ref(floor, "T-1", RT["return_id"])
    assert _refused(floor, ref, "SKU-B", 1, "sellable").key == "rma_not_in_return"
    refusal = _refused(floor, ref, "SKU-A", 2, "sellable")
    assert refusal.key == "quantity_invalid" and "1 to 1" in refusal.message("en")
    assert _refused(floor, ref, "SKU-A", 1, "sellable", bin_code="J-01-01-1").key == "return_unknown_bin"
    _count(floor, ref, "SKU-A", 1, "sellable", scan_id="rma-ok")
    refusal = _refused(floor, ref, "SKU-A", 1, "sellable", scan_id="rma-more")
    assert refusal.key == "rma_already_received" and "退货" in refusal.message("zh")


def test_a_return_is_received_only_where_the_order_shipped_from(floor, client, headers):
    _delivered(floor, "T-1", [("SKU-A", 1)])
    _authorise(client, headers, "T-1", RT)
    ref = _ref(floor, "T-1", RT["return_id"])
    refusal = _refused(floor, ref, "SKU-A", 1, "sellable", user="D002", node="SH-JD")
    assert refusal.key == "rma_other_node" and "SH-PD" in refusal.message("en")


def test_a_delivered_parcel_without_an_authorised_return_is_refused(floor):
    tn = _delivered(floor, "T-1", [("SKU-A", 1)])
    with floor.reading() as s, pytest.raises(Refusal) as refusal:
        returns.found_at(s, _node(s, "SH-PD"), tn)
    assert refusal.value.key == "return_delivered" and "authorise the return" in refusal.value.message("en")


def test_the_dock_closes_a_return_with_what_came(floor, client, headers):
    _delivered(floor, "T-1", [("SKU-A", 2)])
    _authorise(client, headers, "T-1", {**RT, "lines": [{"sku": "SKU-A", "quantity": 2}]})
    ref = _ref(floor, "T-1", RT["return_id"])
    with floor.transaction() as s, pytest.raises(Refusal) as refusal:
        returns.close(s, _user(s, "D001"), "rma-close-0", _node(s, "SH-PD"), ref)
    assert refusal.value.key == "rma_nothing_received"
    _count(floor, ref, "SKU-A", 1, "sellable")
    with floor.transaction() as s:
        assert returns.close(s, _user(s, "D001"), "rma-close-1", _node(s, "SH-PD"), ref).complete
    [event] = _events(floor, "return.received")
    assert event.data["lines"][0]["received"] == 1 and event.data["lines"][0]["quantity"] == 2


def test_a_lead_authorises_a_return_of_what_is_left_to_return(floor, client, headers):
    _delivered(floor, "T-1", [("SKU-A", 2)])
    _authorise(client, headers, "T-1", RT)
    with floor.transaction() as s:
        order = s.scalar(select(Order).where(Order.external_id == "T-1"))
        sku = s.scalar(select(Sku.id).where(Sku.code == "SKU-A"))
        with pytest.raises(Refusal) as refusal:
            customer_returns.authorise_by_lead(s, order, {sku: 2}, "broken", by="L001")
        assert refusal.value.key == "return_over_delivered" and "At most 1 of SKU-A" in refusal.value.message("en")
    with floor.transaction() as s:
        order = s.scalar(select(Order).where(Order.external_id == "T-1"))
        ret = customer_returns.authorise_by_lead(s, order, {sku: 1}, "broken", by="L001")
        assert ret.return_id == ret.ref and ret.authorised_by == "L001"
    returns_ = client.get("/api/v1/orders/T-1", headers=headers).get_json()["returns"]
    assert [r["status"] for r in returns_] == ["authorised", "authorised"] and returns_[1]["reason"] == "broken"


# --- two devices at once (PostgreSQL) ---------------------------------------------------------------

REPEATS = 20


def test_two_devices_receiving_the_last_unit_of_a_return_at_once_count_it_once(floor, client, headers):
    """On PostgreSQL the two transactions really overlap; SQLite runs write
    transactions one at a time."""
    with floor.transaction() as s:
        access.create_user(s, "D003", "出库员三", "dock", "1234", "SH-PD")
    for n in range(REPEATS):
        external_id = f"C-{n}"
        _delivered(floor, external_id, [("SKU-A", 1)])  # one unit out of A-01-01-1, then back
        _authorise(client, headers, external_id, RT)
        ref = _ref(floor, external_id, RT["return_id"])
        barrier = threading.Barrier(2)
        outcome: dict[str, str] = {}

        def receive(user: str) -> None:
            barrier.wait()
            try:
                outcome[user] = _count(floor, ref, "SKU-A", 1, "sellable", scan_id=f"rma-{n}-{user}", user=user).what
            except Refusal as refusal:
                outcome[user] = refusal.key

        threads = [threading.Thread(target=receive, args=(u,)) for u in ("D001", "D003")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcome.values()) == ["counted", "rma_already_received"], (n, outcome)
    assert len(_events(floor, "return.received")) == REPEATS
    assert _bin(floor, "A-01-01-1", "SKU-A") == 3  # each unit shipped came back once
    check_invariants(floor)



def test_two_returns_of_the_same_delivered_units_at_once_authorise_them_once(floor):
    """Two different return_ids for every delivered unit, at once, many
    times over: one is authorised, the other refused with the field path."""
    count(floor, "SH-PD", {"SKU-A": REPEATS}, location="A-01-01-1")
    for n in range(REPEATS):
        external_id = f"A-{n}"
        _delivered(floor, external_id, [("SKU-A", 1)])
        barrier = threading.Barrier(2)
        outcome: dict[str, str] = {}

        def authorise(return_id: str) -> None:
            body = json.dumps({"return_id": return_id, "lines": [{"sku": "SKU-A", "quantity": 1}]}).encode()
            barrier.wait()
            try:
                with floor.transaction() as s:
                    order = s.scalar(select(Order).where(Order.external_id == external_id))
                    customer_returns.authorise_request(s, order, body, "shop")
                outcome[return_id] = "authorised"
            except Refusal as refusal:
                outcome[return_id] = refusal.key + ":" + ",".join(refusal.details.get("fields", []))

        threads = [threading.Thread(target=authorise, args=(r,)) for r in ("RT-X", "RT-Y")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcome.values()) == ["authorised", "invalid_request:lines[0].quantity"], (n, outcome)
    assert len(_events(floor, "return.authorised")) == REPEATS
