"""Pick lists on the handheld: claiming (oldest promise first, never two
pickers), the walk, totes, a lead's release, and resuming on another device."""
from __future__ import annotations

import threading

import pytest
from handhelds import (
    BARCODES,
    Handheld,
    lines_of,
    login,
    pick_through,
    refusal_of,
    step_of,
    text,
)
from sqlalchemy import select

from app.fulfilment import pick
from app.fulfilment.errors import Refusal
from app.models import Node, PickList, PickListState, User

EARLY, LATE = "2026-11-25T12:00:00+08:00", "2026-11-25T18:00:00+08:00"


@pytest.fixture
def two_orders(client, floor):
    """O-LATE placed first but promised later; O-EARLY promised sooner."""
    late = floor.order(client, "O-LATE", [("SKU-B", 1), ("SKU-D", 2)], LATE)
    early = floor.order(client, "O-EARLY", [("SKU-A", 2), ("SKU-C", 1)], EARLY)
    return early, late


def test_home_shows_my_node_and_the_orders_waiting(client, floor, two_orders):
    login(client, "P2", "2222")
    home = client.get("/pick")
    assert "SH-PD" in text(home) and "2 orders waiting" in text(home)
    assert "Pick a batch (up to 4 orders)" in text(home) and "Pick one order" in text(home)


def test_a_batch_takes_every_waiting_order_with_a_tote_each(client, floor, two_orders):
    early, late = two_orders
    login(client, "P2", "2222")
    hh = Handheld(client)
    totes = hh.claim(4)
    assert totes.status_code == 200
    assert "Slot 1 of 2" in text(totes) and early in text(totes)
    assert floor.status(early) == floor.status(late) == "picking"

    second = hh.scan("T-1")
    assert "Slot 2 of 2" in text(second) and late in text(second) and "Tote set." in text(second)
    first_line = hh.scan("T-2")
    assert step_of(first_line) == "location"
    assert "Line 1 of 4" in text(first_line)


def test_one_order_is_claimed_oldest_promise_first(client, floor, two_orders):
    early, late = two_orders
    login(client, "P2", "2222")
    screen = Handheld(client).claim(1)
    assert "Slot 1 of 1" in text(screen) and early in text(screen)
    assert floor.status(early) == "picking" and floor.status(late) == "reserved"


def test_lines_follow_the_walk_serpentine_by_aisle(client, floor, two_orders):
    login(client, "P2", "2222")
    Handheld(client).claim(4)
    walk = [(loc, sku) for loc, sku, *_ in lines_of(floor.db)]
    # A-01 walked up, A-02 walked down (07 before 02), whatever the order lines said.
    assert walk == [("A-01-01-1", "SKU-A"), ("A-01-05-1", "SKU-B"), ("A-02-07-1", "SKU-D"), ("A-02-02-1", "SKU-C")]


def test_the_walk_order_reverses_every_other_visited_aisle():
    from types import SimpleNamespace as NS
    lines = [NS(location=NS(aisle=a, walk_seq=w, code=f"{a}-{w}"), sku_id=1, fulfilment_line_id=i)
             for i, (a, w) in enumerate([("B-10", 1), ("B-2", 5), ("B-2", 1), ("B-10", 9), ("C-1", 3), ("C-1", 1)])]
    walked = [(line.location.aisle, line.location.walk_seq) for line in pick.walk_order(lines)]
    assert walked == [("B-2", 1), ("B-2", 5), ("B-10", 9), ("B-10", 1), ("C-1", 1), ("C-1", 3)]


def test_nothing_to_pick_says_so(client, floor):
    login(client, "P2", "2222")
    answer = Handheld(client).claim(4)
    assert answer.status_code == 422 and refusal_of(answer) == "nothing_to_pick"
    assert "No orders are waiting to be picked" in text(answer)


def test_a_second_picker_does_not_get_a_list_already_held(app, floor, two_orders):
    first, second = app.test_client(), app.test_client()
    login(first, "P1", "1111")
    login(second, "P2", "2222")
    assert Handheld(first).claim(4).status_code == 200
    answer = Handheld(second).claim(4)
    assert refusal_of(answer) == "nothing_to_pick"


def test_two_pickers_racing_for_one_list_never_both_hold_it(db, client, floor, two_orders):
    with db.transaction() as s:
        node = s.scalar(select(Node).where(Node.code == "SH-PD"))
        list_id = pick.build_list(s, node, 4).id
        pickers = [s.scalar(select(User.id).where(User.code == code)) for code in ("P1", "P2")]
    barrier = threading.Barrier(2)
    outcome: dict[int, str] = {}

    def race(user_id: int) -> None:
        barrier.wait()
        try:
            db.run(lambda s: pick.claim(s, s.get(PickList, list_id), s.get(User, user_id)))
            outcome[user_id] = "won"
        except Refusal as refusal:
            outcome[user_id] = refusal.key

    threads = [threading.Thread(target=race, args=(u,)) for u in pickers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcome.values()) == ["pick_list_taken", "won"]
    winner = next(u for u, result in outcome.items() if result == "won")
    with db.reading() as s:
        pl = s.get(PickList, list_id)
        assert pl.picker_id == winner and pl.state == PickListState.picking


def test_a_stale_claim_loses_to_the_one_that_committed(db, client, floor, two_orders):
    with db.transaction() as s:
        node = s.scalar(select(Node).where(Node.code == "SH-PD"))
        list_id = pick.build_list(s, node, 4).id
    with db.transaction() as s:
        pick.claim(s, s.get(PickList, list_id), s.scalar(select(User).where(User.code == "P1")))
    with pytest.raises(Refusal) as refused, db.transaction() as s:
        pick.claim(s, s.get(PickList, list_id), s.scalar(select(User).where(User.code == "P2")))
    assert refused.value.key == "pick_list_taken" and refused.value.params["picker"] == "P1"


def test_a_tote_must_be_an_empty_tote(client, floor, two_orders):
    login(client, "P1", "1111")
    hh = Handheld(client)
    hh.claim(4)
    location = hh.scan("A-01-01-1")
    assert location.status_code == 422 and refusal_of(location) == "not_a_tote"
    product = hh.scan(BARCODES["SKU-A"])
    assert refusal_of(product) == "not_a_tote"
    hh.scan("T-1")
    again = hh.scan("t-1")
    assert refusal_of(again) == "tote_in_use"
    assert "T-1" in text(again) and "第 2 格" in text(again)


def test_a_lead_releases_an_abandoned_list_and_the_next_picker_resumes_it(app, floor, two_orders, db):
    gone, lead, next_picker = app.test_client(), app.test_client(), app.test_client()
    login(gone, "P1", "1111")
    hh = Handheld(gone)
    hh.claim(4)
    pick_through(hh, ["T-1", "T-2", "A-01-01-1", BARCODES["SKU-A"]])

    login(lead, "L1", "3333")
    board = lead.get("/pick/lists")
    assert board.status_code == 200 and "张伟" in text(board) and "PL-000001" in text(board)
    released = lead.post("/pick/lists/PL-000001/release")
    assert released.status_code == 302
    assert "张伟" not in text(lead.get("/pick/lists"))
    again = lead.post("/pick/lists/PL-000001/release")
    assert again.status_code == 422 and refusal_of(again) == "pick_list_not_held"

    # The first picker's handheld no longer holds it, and says who released it.
    scanned = hh.scan(BARCODES["SKU-A"])
    assert refusal_of(scanned) == "pick_list_released"
    assert "组长 李娜 已释放拣货单 PL-000001" in text(scanned)
    reloaded = gone.get("/pick/work")
    assert reloaded.status_code == 200 and "组长 李娜 已释放拣货单 PL-000001" in text(reloaded)

    login(next_picker, "P2", "2222")
    home = next_picker.get("/pick")
    assert "1 list released by a lead waits first." in text(home)
    resumed = Handheld(next_picker).claim(1)
    # Same list, same totes, the same unit already in hand.
    assert step_of(resumed) == "quantity" and "PL-000001" in text(resumed)
    assert lines_of(db)[0] == ("A-01-01-1", "SKU-A", 2, 1, "quantity")


def test_a_lead_cannot_release_another_nodes_list(app, floor, two_orders, db):
    picker = app.test_client()
    login(picker, "P1", "1111")
    Handheld(picker).claim(4)
    with db.transaction() as s:
        s.scalar(select(User).where(User.code == "L1")).node_id = s.scalar(select(Node.id).where(Node.code == "SH-JD"))
    lead = app.test_client()
    login(lead, "L1", "3333")
    answer = lead.post("/pick/lists/PL-000001/release")
    assert answer.status_code == 422 and refusal_of(answer) == "not_found"


def test_work_resumes_after_a_new_login_on_another_device(app, floor, two_orders):
    old = app.test_client()
    login(old, "P1", "1111")
    hh = Handheld(old)
    hh.claim(4)
    pick_through(hh, ["T-1", "T-2", "A-01-01-1", BARCODES["SKU-A"]])

    new = app.test_client()
    login(new, "P1", "1111")
    home = new.get("/pick")
    assert "继续 PL-000001 · 0/4" in text(home)
    screen = new.get("/pick/work")
    assert step_of(screen) == "quantity" and "1 / 2" in text(screen)
    # And the reload of the same device shows the same.
    assert step_of(old.get("/pick/work")) == "quantity"
    finished = Handheld(new)
    pick_through(finished, [BARCODES["SKU-A"], "T-1"])
    assert step_of(new.get("/pick/work")) == "location"


def test_a_claim_while_holding_a_list_resumes_it(client, floor, two_orders):
    login(client, "P1", "1111")
    hh = Handheld(client)
    hh.claim(1)
    again = hh.claim(4)
    assert "Slot 1 of 1" in text(again) or "第 1 / 1 格" in text(again)
