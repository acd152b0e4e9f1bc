"""A list that changes under the picker: a cancelled or re-dispatched order
leaves the walk with a notice saying why (never a refusal about a line that
is gone, never a stale card on reload), and a short pick looks in the node's
other bins before sending units to another node."""
from __future__ import annotations

import support
from handhelds import BARCODES, Handheld, bin_count, lines_of, login, pick_through, refusal_of, step_of, text
from sqlalchemy import select

from app import masterdata
from app.models import Event, Node

EARLY, LATE = "2026-11-25T12:00:00+08:00", "2026-11-25T18:00:00+08:00"
# slot 1: O-EARLY (SKU-A x2, SKU-C x1, tote T-1); slot 2: O-LATE (SKU-B x1, SKU-D x2, tote T-2)
# Walk: A-01-01-1 SKU-A, A-01-05-1 SKU-B, A-02-07-1 SKU-D, A-02-02-1 SKU-C


def batch(client, floor, badge="P2", pin="2222") -> Handheld:
    floor.order(client, "O-LATE", [("SKU-B", 1), ("SKU-D", 2)], LATE)
    floor.order(client, "O-EARLY", [("SKU-A", 2), ("SKU-C", 1)], EARLY)
    login(client, badge, pin)
    hh = Handheld(client)
    hh.claim(4)
    pick_through(hh, ["T-1", "T-2", "A-01-01-1", BARCODES["SKU-A"], BARCODES["SKU-A"], "T-1"])
    return hh  # at A-01-05-1, O-LATE's SKU-B


def test_a_scan_on_a_cancelled_orders_line_shows_the_current_line_and_why(client, floor, db):
    hh = batch(client, floor)
    late = floor.document(client, "O-LATE")["fulfilments"][0]["id"]
    assert client.post("/api/v1/orders/O-LATE/cancel", headers=floor.headers).status_code == 200
    # The card still says A-01-05-1; the picker scans it.
    answer = hh.scan("A-01-05-1")
    assert answer.status_code == 200 and refusal_of(answer) is None, text(answer)
    assert f"Order {late} was cancelled: its lines are gone." in text(answer)
    assert 'data-outcome="changed"' in answer.get_data(as_text=True)  # not a confirmation: what to do now
    assert step_of(answer) == "location" and "A-02-02-1" in text(answer)
    # A reload shows the same current line: nothing stale is left to loop on.
    assert step_of(hh.screen()) == "location" and "A-02-02-1" in text(hh.screen())
    assert [step for *_, step in lines_of(db)] == ["done", "done", "done", "location"]
    pick_through(hh, ["A-02-02-1", BARCODES["SKU-C"]])
    assert "List PL-000001 finished" in text(hh.scan("T-1"))
    support.check_invariants(db)


def test_a_reload_after_a_cancel_heals_the_screen_and_says_what_to_put_back(app, floor, db):
    client = app.test_client()
    hh = batch(client, floor, "P1", "1111")  # 张伟 reads Chinese
    pick_through(hh, ["A-01-05-1", BARCODES["SKU-B"]])  # one SKU-B in hand for O-LATE
    late = floor.document(client, "O-LATE")["fulfilments"][0]["id"]
    assert client.post("/api/v1/orders/O-LATE/cancel", headers=floor.headers).status_code == 200
    reloaded = hh.screen()
    assert reloaded.status_code == 200
    assert f"订单 {late} 已取消：其拣货行已移除。请将已为其拣出的商品放回原库位：SKU-B × 1 → A-01-05-1。" in text(reloaded)
    assert step_of(reloaded) == "location" and "A-02-02-1" in text(reloaded)
    # Said once: the next reload is the plain line.
    assert "已取消" not in text(hh.screen())
    support.check_invariants(db)


def test_when_every_order_of_a_list_is_cancelled_the_list_finishes(client, floor, db):
    hh = batch(client, floor)
    for external_id in ("O-LATE", "O-EARLY"):
        assert client.post(f"/api/v1/orders/{external_id}/cancel", headers=floor.headers).status_code == 200
    answer = hh.scan("A-01-05-1")
    assert answer.status_code == 200 and "List PL-000001 finished" in text(answer)
    assert "was cancelled" in text(answer) and "SKU-A × 2 → A-01-01-1" in text(answer)
    assert "0 orders waiting" in text(client.get("/pick"))


def test_a_lead_redispatch_under_the_picker_says_the_fulfilment_moved(app, client, floor, db):
    hh = batch(client, floor)
    late = floor.document(client, "O-LATE")["fulfilments"][0]["id"]
    lead = app.test_client()
    login(lead, "L1", "3333")
    moved = lead.post(f"/lead/f/{late}/redispatch", data={"reason": "dock closed"})
    assert moved.status_code == 200, text(moved)
    answer = hh.scan("A-01-05-1")
    assert answer.status_code == 200 and refusal_of(answer) is None
    assert f"{late} was moved to another node: its lines are gone." in text(answer)
    assert "A-02-02-1" in text(answer)
    support.check_invariants(db)


def _second_bin(db, location: str, sku: str, units: int) -> None:
    with db.transaction() as s:
        node = s.scalar(select(Node).where(Node.code == "SH-PD"))
        masterdata.count_stock(s, node, masterdata.StockBody(items=[
            masterdata.StockItem(location=location, sku=sku, on_hand=units)]))


def test_a_short_pick_goes_to_another_bin_of_the_node_first(client, floor, db):
    _second_bin(db, "B-01-09-1", "SKU-A", 25)
    floor.order(client, "O-A", [("SKU-A", 3)], EARLY)
    login(client, "P2", "2222")
    hh = Handheld(client)
    hh.claim(1)
    pick_through(hh, ["T-1", "A-01-01-1", BARCODES["SKU-A"]])
    after = hh.short()
    assert after.status_code == 200 and step_of(after) == "tote"
    # Nothing left the node: the picker is sent to the other bin next.
    assert [(f["node"], f["status"]) for f in floor.document(client, "O-A")["fulfilments"]] == [("SH-PD", "picking")]
    assert lines_of(db) == [("A-01-01-1", "SKU-A", 1, 1, "tote"), ("B-01-09-1", "SKU-A", 2, 0, "location")]
    nxt = hh.scan("T-1")
    assert step_of(nxt) == "location" and "B-01-09-1" in text(nxt)
    pick_through(hh, ["B-01-09-1", BARCODES["SKU-A"], BARCODES["SKU-A"]])
    assert "List PL-000001 finished" in text(hh.scan("T-1"))
    # The short bin is counted at what it really had (the unit picked from it).
    assert bin_count(db, "A-01-01-1", "SKU-A") == 1
    with db.reading() as s:
        short = s.scalar(select(Event).where(Event.type == "pick.short"))
    assert short.data["picked_elsewhere"] == [{"location": "B-01-09-1", "quantity": 2}] and short.data["to"] == []
    support.check_invariants(db)


def test_a_short_pick_moves_only_what_the_node_cannot_cover(client, floor, db):
    _second_bin(db, "B-01-09-1", "SKU-A", 1)
    floor.order(client, "O-A", [("SKU-A", 3)], EARLY)
    floor.order(client, "O-B", [("SKU-A", 1)], LATE)
    login(client, "P2", "2222")
    hh = Handheld(client)
    hh.claim(1)  # O-A; O-B is not on a list yet, and the second bin's one unit is free
    pick_through(hh, ["T-1", "A-01-01-1"])
    hh.short()
    document = floor.document(client, "O-A")
    assert [(f["node"], f["lines"]) for f in document["fulfilments"]] == [
        ("SH-PD", [{"sku": "SKU-A", "quantity": 1}]), ("SH-JD", [{"sku": "SKU-A", "quantity": 2}])]
    assert lines_of(db) == [("A-01-01-1", "SKU-A", 0, 0, "done"), ("B-01-09-1", "SKU-A", 1, 0, "location")]
    support.check_invariants(db)
