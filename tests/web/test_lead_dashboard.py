"""The lead's dashboard and fulfilment page: who may see them, the counts per
stage with the oldest of each, promises, exceptions, lists to release, holds,
workers' rates; re-dispatch, hold and release by hand; the queries stay a
handful however many fulfilments there are."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from handhelds import BARCODES, HX, Handheld, login, pick_through, refusal_of, text
from sqlalchemy import event as sa_event, select

from app.fulfilment import queues
from app.models import Fulfilment, Node, PickList, PickListState, User, utcnow

EARLY, LATE = "2026-11-25T12:00:00+08:00", "2026-11-25T18:00:00+08:00"


def stage_counts(answer) -> dict[str, int]:
    html = answer.get_data(as_text=True)
    return {k: int(v) for k, v in re.findall(r'data-stage="([a-z_]+)" data-count="(\d+)"', html)}


def exception_types(answer) -> list[str]:
    return re.findall(r'class="exception [^"]*" data-seq="\d+" data-type="([a-z._]+)"', answer.get_data(as_text=True))


def soon(hours: float) -> str:
    return (utcnow() + dt.timedelta(hours=hours)).isoformat()


@pytest.fixture
def lead(app, floor):
    client = app.test_client()
    login(client, "L1", "3333")
    return client


@pytest.fixture
def two_orders(client, floor):
    late = floor.order(client, "O-LATE", [("SKU-B", 1), ("SKU-D", 2)], LATE)
    early = floor.order(client, "O-EARLY", [("SKU-A", 2), ("SKU-C", 1)], EARLY)
    return early, late


# --- who may look ---------------------------------------------------------------------------

@pytest.mark.parametrize("badge, pin", [("P1", "1111"), ("K1", "5555")])
def test_pickers_and_packers_are_refused_the_dashboard(client, floor, badge, pin):
    login(client, badge, pin)
    for path in ("/lead", "/lead/f/F-000001-1", "/lead/find?q=x"):
        answer = client.get(path)
        assert answer.status_code == 403 and refusal_of(answer) == "forbidden", path
    assert client.post("/lead/lists/PL-000001/release").status_code == 403


def test_the_dashboard_needs_a_login(client, floor):
    answer = client.get("/lead")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_a_lead_logs_in_to_the_dashboard(client, floor):
    answer = client.post("/login/pin", data={"badge": "L1", "pin": "3333"})
    assert answer.headers["Location"].endswith("/lead")


# --- what it shows ---------------------------------------------------------------------------

def test_counts_per_stage_with_the_oldest_of_each(lead, client, floor, two_orders, db):
    early, late = two_orders
    board = lead.get("/lead")
    assert board.status_code == 200
    assert stage_counts(board) == {"awaiting_stock": 0, "to_pick": 2, "picking": 0, "to_pack": 0, "to_ship": 0,
                                   "shipped_today": 0}
    oldest = re.search(r'data-stage="to_pick".*?</li>', board.get_data(as_text=True), re.S).group(0)
    assert late in oldest  # placed first: the oldest in the queue
    assert re.search(r'ws-connect="/lead/live\?[^"]*after=\d+', board.get_data(as_text=True))

    picker = Handheld(_logged_in(lead, "P1", "1111"))
    picker.claim(1)
    assert stage_counts(lead.get("/lead"))["picking"] == 1
    # An order no node can serve waits for stock: counted over all nodes.
    answer = client.post("/api/v1/orders", json=_order("O-NONE", [("SKU-E", 50)]), headers=floor.headers)
    assert answer.status_code == 201
    assert stage_counts(lead.get("/lead"))["awaiting_stock"] == 1


def _logged_in(any_client, badge, pin):
    other = any_client.application.test_client()
    login(other, badge, pin)
    return other


def _order(external_id, lines, promised_by=LATE):
    import support
    return support.order_body(external_id, lines, promised_by=promised_by)


def test_promises_late_and_near_are_highlighted(lead, client, floor):
    late = floor.order(client, "O-1", [("SKU-A", 1)], soon(-1))
    near = floor.order(client, "O-2", [("SKU-B", 1)], soon(1))
    floor.order(client, "O-3", [("SKU-C", 1)], soon(30))
    board = lead.get("/lead")
    html = board.get_data(as_text=True)
    assert 'data-late="1"' in html and 'data-near="1"' in html
    rows = re.findall(r'<tr class="(late|near)">\s*<td><a class="code" href="/lead/f/([^"]+)"', html)
    assert rows == [("late", late), ("near", near)]


def test_exceptions_list_a_short_pick_once(lead, floor, two_orders):
    early, _ = two_orders
    picker = Handheld(_logged_in(lead, "P2", "2222"))
    picker.claim(1)
    pick_through(picker, ["T-1", "A-01-01-1", BARCODES["SKU-A"]])
    assert picker.short().status_code == 200
    board = lead.get("/lead")
    # The short pick, not also the re-dispatch it caused.
    assert exception_types(board) == ["pick.short"]
    assert "SKU-A" in text(board) and "A-01-01-1" in text(board)


def test_workers_lines_this_shift(lead, floor, two_orders):
    picker = Handheld(_logged_in(lead, "P2", "2222"))
    picker.claim(1)
    pick_through(picker, ["T-1", "A-01-01-1", BARCODES["SKU-A"], BARCODES["SKU-A"], "T-1"])
    html = lead.get("/lead").get_data(as_text=True)
    row = re.search(r'<tr data-worker="P2" data-role="picker">.*?</tr>', html, re.S).group(0)
    cells = re.findall(r'<td class="num">(?:<strong>)?([\d.]+)', row)
    # One line of two units; over the shortest span counted (15 min): 4 lines an hour.
    assert cells == ["1", "2", "4.0"]


def test_an_admin_may_look_at_another_node_a_lead_may_not(app, floor, two_orders, db):
    from app.access import create_user
    with db.transaction() as s:
        create_user(s, "A1", "Ada", "admin", "9999", "SH-PD", "en")
    admin = app.test_client()
    login(admin, "A1", "9999")
    other = admin.get("/lead?node=SH-JD")
    assert other.status_code == 200 and "SH-JD" in text(other) and stage_counts(other)["to_pick"] == 0
    assert 'option value="SH-JD" selected' in other.get_data(as_text=True)
    lead = app.test_client()
    login(lead, "L1", "3333")
    mine = lead.get("/lead?node=SH-JD")
    assert stage_counts(mine)["to_pick"] == 2 and "<select" not in mine.get_data(as_text=True)


def test_find_opens_a_fulfilment_by_ref_or_order_id(lead, two_orders):
    early, _ = two_orders
    assert lead.get("/lead/find?q=O-EARLY").headers["Location"].endswith(f"/lead/f/{early}")
    assert lead.get(f"/lead/find?q={early.lower()}").headers["Location"].endswith(f"/lead/f/{early}")
    missing = lead.get("/lead/find?q=NOPE")
    assert missing.status_code == 404 and refusal_of(missing) == "not_found"


# --- actions ------------------------------------------------------------------------------------

def test_a_lead_releases_an_abandoned_list_from_the_dashboard(lead, floor, two_orders, db):
    picker = Handheld(_logged_in(lead, "P1", "1111"))
    picker.claim(4)
    board = lead.get("/lead")
    assert 'data-list="PL-000001"' in board.get_data(as_text=True) and "张伟" in text(board)
    answer = lead.post("/lead/lists/PL-000001/release", headers={**HX, "HX-Target": "lead-notice"})
    assert answer.status_code == 200 and 'data-outcome="accepted"' in answer.get_data(as_text=True)
    assert "<main" not in answer.get_data(as_text=True)  # the notice alone: the socket brings the panels
    with db.reading() as s:
        assert s.scalar(select(PickList.state).where(PickList.ref == "PL-000001")) == PickListState.open
    again = lead.post("/lead/lists/PL-000001/release", headers={**HX, "HX-Target": "lead-notice"})
    assert again.status_code == 422 and refusal_of(again) == "pick_list_not_held"
    # Without htmx: the whole dashboard, saying so.
    plain = lead.post("/lead/lists/PL-000001/release")
    assert plain.status_code == 422 and 'data-stage="to_pick"' in plain.get_data(as_text=True)


def test_the_fulfilment_page_shows_dispatch_reasons(lead, two_orders):
    early, _ = two_orders
    page = lead.get(f"/lead/f/{early}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert re.search(r'<tr class="chosen"><td class="code">SH-PD ✓</td>', html)
    assert "SH-JD" in html  # the other candidate, with its scores
    assert "single_node" in html or "nearest" in html or "fewest_nodes" in html


def test_a_manual_redispatch_needs_a_reason_and_shows_in_the_lineage(app, lead, two_orders, floor, db):
    early, _ = two_orders
    refused = lead.post(f"/lead/f/{early}/redispatch", data={"reason": "  "}, headers=HX)
    assert refused.status_code == 422 and refusal_of(refused) == "redispatch_reason_needed"
    assert floor.status(early) == "reserved"

    moved = lead.post(f"/lead/f/{early}/redispatch", data={"reason": "bin flooded"}, headers=HX)
    assert moved.status_code == 200, text(moved)
    assert floor.status(early) == "redispatched"
    with db.reading() as s:
        origin = s.scalar(select(Fulfilment.id).where(Fulfilment.ref == early))
        child = s.scalar(select(Fulfilment).where(Fulfilment.redispatched_from_id == origin))
        child_ref, child_node = child.ref, child.node.code
    assert child_node == "SH-JD"
    assert 'data-outcome="accepted"' in moved.get_data(as_text=True) and child_ref in text(moved)
    # Its new node's page is that node's (or an admin's) to read, not this lead's.
    assert lead.get(f"/lead/f/{child_ref}").status_code == 404
    from app.access import create_user
    with db.transaction() as s:
        create_user(s, "A1", "Ada", "admin", "9999", "SH-PD", "en")
    admin = app.test_client()
    login(admin, "A1", "9999")
    page = admin.get(f"/lead/f/{child_ref}")
    assert "bin flooded" in text(page)  # why it moved, in its dispatch reason
    assert early in text(page)  # where it came from
    board = lead.get("/lead")
    assert exception_types(board) == ["fulfilment.redispatched"] and "bin flooded" in text(board)

    again = lead.post(f"/lead/f/{early}/redispatch", data={"reason": "again"}, headers=HX)
    assert again.status_code == 422 and refusal_of(again) == "redispatch_not_allowed"


def test_hold_and_release_from_the_fulfilment_page(lead, two_orders, floor, db):
    early, _ = two_orders
    no_reason = lead.post(f"/lead/f/{early}/hold", data={"reason": ""}, headers=HX)
    assert no_reason.status_code == 422 and refusal_of(no_reason) == "hold_reason_needed"
    held = lead.post(f"/lead/f/{early}/hold", data={"reason": "customer called", "hours": "4"}, headers=HX)
    assert held.status_code == 200 and "customer called" in text(held)
    board = lead.get("/lead").get_data(as_text=True)
    assert 'data-held="1"' in board and "customer called" in board
    page = lead.get(f"/lead/f/{early}").get_data(as_text=True)
    assert "release-hold" in page and "customer called" in page

    released = lead.post(f"/lead/f/{early}/release-hold", headers=HX)
    assert released.status_code == 200
    assert 'data-held="0"' in lead.get("/lead").get_data(as_text=True)
    twice = lead.post(f"/lead/f/{early}/release-hold", headers=HX)
    assert twice.status_code == 422 and refusal_of(twice) == "hold_not_found"


def test_a_lead_sees_and_acts_only_on_their_nodes_fulfilments(lead, two_orders, floor, db):
    early, _ = two_orders
    with db.transaction() as s:
        s.scalar(select(User).where(User.code == "L1")).node_id = s.scalar(select(Node.id).where(Node.code == "SH-JD"))
    page = lead.get(f"/lead/f/{early}")  # another node's: as if there were none
    assert page.status_code == 404 and refusal_of(page) == "not_found" and "O-EARLY" not in text(page)
    found = lead.get("/lead/find?q=O-EARLY")
    assert found.status_code == 404 and refusal_of(found) == "not_found"
    answer = lead.post(f"/lead/f/{early}/hold", data={"reason": "x"}, headers=HX)
    assert answer.status_code == 404 and refusal_of(answer) == "not_found"
    assert floor.status(early) == "reserved"


# --- efficiency ------------------------------------------------------------------------------

def test_the_snapshot_takes_a_handful_of_queries_however_many_fulfilments(app, client, floor, db):
    def statements(n_orders: int) -> int:
        for i in range(n_orders):
            floor.order(client, f"O-{n_orders}-{i}", [("SKU-A", 1)], soon(1 + i))
        seen = []
        def listener(conn, cursor, statement, *args):
            if not statement.startswith("BEGIN"):
                seen.append(statement)
        sa_event.listen(db.read_engine, "before_cursor_execute", listener)
        try:
            with db.reading() as s:
                node_id = s.scalar(select(Node.id).where(Node.code == "SH-PD"))
                snap = queues.snapshot(s, node_id, shift_hours=10)
        finally:
            sa_event.remove(db.read_engine, "before_cursor_execute", listener)
        assert snap.stages[1].count >= n_orders
        return len(seen)

    few, many = statements(1), statements(8)
    assert few == many <= 8  # stages, shipped, promises, holds, lists, pickers, packers
