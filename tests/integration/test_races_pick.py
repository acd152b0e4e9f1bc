"""The pick floor's races, on PostgreSQL with real concurrency: each pair of
conflicting requests runs in two (or twenty) threads, each in its own
transaction (`db.transaction()`, no retry), released together by a barrier,
many times over. A lost race ends in the catalogue refusal or the notice that
says what happened, never in a database error; and afterwards the record
holds: picked <= quantity, reservations = Stock.reserved, each fulfilment on
at most one list, every unit of an order placed once."""
from __future__ import annotations

import os
from collections import Counter

import pytest
from sqlalchemy import func, select, update

from app import masterdata
from app.barcodes import ean13
from app.fulfilment import cancel, pick
from app.fulfilment.errors import Refusal
from app.fulfilment.redispatch import redispatch
from app.models import (
    Event,
    Fulfilment,
    FulfilmentLine,
    FulfilmentStatus,
    Node,
    Order,
    PickLine,
    PickList,
    PickListFulfilment,
    PickListState,
    Reservation,
    ReservationState,
    Role,
    Sku,
    User,
)
from racing import released_together
from support import PLACES, check_invariants, order_body

POSTGRES_URL = os.environ.get("LUYUE_TEST_POSTGRES_URL")
REPEATS = 25
PICKERS = 20

BARCODES = {sku: ean13(f"69012340000{i}") for i, sku in enumerate(("SKU-A", "SKU-B", "SKU-C", "SKU-D"), start=1)}
# SH-PD, walked A-01 up, A-02 down. SKU-C's one bin is counted again before each
# round that reports it short; SKU-D has a second bin at the node.
BINS = [("A-01-01-1", "SKU-A"), ("A-01-05-1", "SKU-B"), ("A-02-02-1", "SKU-C"), ("A-02-07-1", "SKU-D")]


def race(*works):
    """Run each work in its own thread, released together; returns what each
    returned, or the Refusal it raised. Anything else fails the test."""
    return released_together(len(works), lambda i: works[i]())


def outcome(result) -> str:
    if isinstance(result, Refusal):
        return result.key
    if isinstance(result, pick.Accepted):
        return result.what
    return type(result).__name__


class Floor:
    """SH-PD to pick at (SH-JD holds the same SKUs for re-dispatch), pickers
    and a lead, orders taken through the API."""

    def __init__(self, db, client, headers):
        self.db, self.client, self.headers = db, client, headers
        self.n = 0
        with db.transaction() as s:
            for code in ("SH-PD", "SH-JD"):
                masterdata.put_node(s, code, masterdata.NodeBody(
                    name=code, kind="warehouse", daily_capacity=100000, same_city_radius_km=0, active=True,
                    **PLACES[code]))
            for sku, barcode in BARCODES.items():
                masterdata.put_sku(s, sku, masterdata.SkuBody(name=f"商品 {sku}", barcodes=[barcode]))
            pd = s.scalar(select(Node).where(Node.code == "SH-PD"))
            jd = s.scalar(select(Node).where(Node.code == "SH-JD"))
            masterdata.count_stock(s, pd, masterdata.StockBody(items=[
                masterdata.StockItem(location=loc, sku=sku, on_hand=5000) for loc, sku in BINS]))
            masterdata.count_stock(s, jd, masterdata.StockBody(items=[
                masterdata.StockItem(location="J-01-01-1", sku=sku, on_hand=5000) for sku in BARCODES]))
            for i in range(PICKERS + REPEATS):
                s.add(User(code=f"P{i:02d}", name=f"Picker {i}", role=Role.picker, node_id=pd.id, pin_hash="-",
                           language="en"))
            s.add(User(code="L1", name="Lead", role=Role.lead, node_id=pd.id, pin_hash="-", language="en"))

    def order(self, lines: list[tuple[str, int]]) -> str:
        self.n += 1
        external_id = f"O-{self.n:04d}"
        answer = self.client.post("/api/v1/orders", json=order_body(external_id, lines), headers=self.headers)
        assert answer.status_code == 201, answer.get_json()
        assert [(f["node"], f["status"]) for f in answer.get_json()["fulfilments"]] == [("SH-PD", "reserved")]
        return external_id

    def recount(self, location: str, sku: str, on_hand: int) -> None:
        with self.db.transaction() as s:
            node = s.scalar(select(Node).where(Node.code == "SH-PD"))
            masterdata.count_stock(s, node, masterdata.StockBody(items=[
                masterdata.StockItem(location=location, sku=sku, on_hand=on_hand)]))

    # --- a picker's work, each call its own transaction ---------------------------------

    def as_user(self, code: str, work):
        with self.db.transaction() as s:
            return work(s, s.scalar(select(User).where(User.code == code)))

    def claim(self, picker: str, orders: int = 1) -> str:
        return self.as_user(picker, lambda s, me: pick.claim_next(s, me, orders).ref)

    def scan(self, picker: str, code: str, scan_id: str) -> pick.Accepted:
        return self.as_user(picker, lambda s, me: pick.scan(s, me, scan_id, code))

    def scans(self, picker: str, codes: list[str]) -> None:
        for i, code in enumerate(codes):
            self.n += 1
            accepted = self.scan(picker, code, f"setup-{picker}-{self.n}-{i}")
            assert accepted.what not in ("repeat", "list_changed"), (code, accepted)

    def short(self, picker: str, scan_id: str) -> pick.Accepted:
        return self.as_user(picker, lambda s, me: pick.short_pick(s, me, scan_id))

    def refresh(self, picker: str) -> pick.Accepted:
        return self.as_user(picker, lambda s, me: pick.refresh(s, me))

    def cancel(self, external_id: str) -> bool:
        with self.db.transaction() as s:
            return cancel.cancel(s, s.scalar(select(Order).where(Order.external_id == external_id)))

    def lead_redispatch(self, external_id: str) -> list[str]:
        with self.db.transaction() as s:
            f = s.scalar(select(Fulfilment).join(Order, Order.id == Fulfilment.order_id)
                         .where(Order.external_id == external_id, Fulfilment.node_id == Node.id,
                                Node.code == "SH-PD").order_by(Fulfilment.id))
            return [p.ref for p in redispatch(s, f, None, "the lead moves it", by="L1")]

    # --- the record --------------------------------------------------------------------

    def fulfilment(self, external_id: str) -> tuple[str, str]:
        """(ref, status) of the order's first fulfilment (the one at SH-PD)."""
        with self.db.reading() as s:
            return s.execute(select(Fulfilment.ref, Fulfilment.status).join(Order, Order.id == Fulfilment.order_id)
                             .where(Order.external_id == external_id).order_by(Fulfilment.id)).first()

    def placed(self, external_id: str) -> Counter:
        """Units per SKU over the order's live fulfilments."""
        with self.db.reading() as s:
            rows = s.execute(select(Sku.code, func.sum(FulfilmentLine.quantity))
                             .join(FulfilmentLine, FulfilmentLine.sku_id == Sku.id)
                             .join(Fulfilment, Fulfilment.id == FulfilmentLine.fulfilment_id)
                             .join(Order, Order.id == Fulfilment.order_id)
                             .where(Order.external_id == external_id,
                                    Fulfilment.status.not_in([FulfilmentStatus.cancelled,
                                                              FulfilmentStatus.redispatched]))
                             .group_by(Sku.code)).all()
        return Counter({sku: int(units) for sku, units in rows if units})

    def holds_of(self, external_id: str) -> int:
        with self.db.reading() as s:
            return s.scalar(select(func.coalesce(func.sum(Reservation.quantity), 0))
                            .join(FulfilmentLine, FulfilmentLine.id == Reservation.fulfilment_line_id)
                            .join(Fulfilment, Fulfilment.id == FulfilmentLine.fulfilment_id)
                            .join(Order, Order.id == Fulfilment.order_id)
                            .where(Order.external_id == external_id, Reservation.state == ReservationState.open))

    def lines(self, ref: str) -> list[tuple[str, str, int, int, str]]:
        with self.db.reading() as s:
            pl = s.scalar(select(PickList).where(PickList.ref == ref))
            return [(line.location.code, line.sku.code, line.quantity, line.picked, line.step.value)
                    for line in pl.lines]

    def picked_event(self, ref: str) -> bool:
        with self.db.reading() as s:
            return s.scalar(select(func.count()).select_from(Event).join(Fulfilment, Fulfilment.id == Event.fulfilment_id)
                            .where(Fulfilment.ref == ref, Event.type == "fulfilment.picked")) > 0

    def check(self) -> None:
        """What must hold after every round."""
        check_invariants(self.db)
        with self.db.reading() as s:
            over = s.scalar(select(func.count()).select_from(PickLine).where(PickLine.picked > PickLine.quantity))
            twice = s.execute(select(PickListFulfilment.fulfilment_id).group_by(PickListFulfilment.fulfilment_id)
                              .having(func.count() > 1)).all()
            holders = s.execute(select(PickList.picker_id).where(PickList.state == PickListState.picking)
                                .group_by(PickList.picker_id).having(func.count() > 1)).all()
        assert over == 0, "a line picked beyond its quantity"
        assert not twice, f"fulfilments on two lists: {twice}"
        assert not holders, f"pickers holding two lists: {holders}"


if POSTGRES_URL:
    # PostgreSQL runs writers side by side; SQLite one at a time.
    postgres_only = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

    @pytest.fixture
    def floor(db, client, headers) -> Floor:
        return Floor(db, client, headers)

    @postgres_only
    def test_twenty_pickers_claiming_at_once_take_different_work_or_hear_nothing_is_left(floor, db):
        for round_ in range(REPEATS):
            made = {floor.fulfilment(floor.order([("SKU-A", 1)]))[0] for _ in range(PICKERS + 4)}
            answers = race(*[lambda i=i: floor.claim(f"P{i:02d}", 2) for i in range(PICKERS)])
            assert {outcome(a) for a in answers} <= {"str", "nothing_to_pick"}, answers
            with db.reading() as s:
                taken = s.execute(select(PickList.ref, Fulfilment.ref)
                                  .join(PickListFulfilment, PickListFulfilment.pick_list_id == PickList.id)
                                  .join(Fulfilment, Fulfilment.id == PickListFulfilment.fulfilment_id)
                                  .where(PickList.ref.in_([a for a in answers if isinstance(a, str)]))).all()
            assert Counter(f for _, f in taken) == Counter(made), f"round {round_}: every order once, none left"
            assert len({ref for ref in answers if isinstance(ref, str)}) == len([a for a in answers if isinstance(a, str)])
            floor.check()
            with db.transaction() as s:  # the lists are picked: the pickers are free for the next round
                s.execute(update(PickList).values(state=PickListState.done))

    @postgres_only
    def test_a_retried_scan_racing_its_original_is_counted_once(floor, db):
        for round_ in range(REPEATS):
            picker = f"P{PICKERS + round_:02d}"
            floor.order([("SKU-A", 2), ("SKU-B", 1)])
            ref = floor.claim(picker)
            floor.scans(picker, [f"T-{round_}", "A-01-01-1", BARCODES["SKU-A"]])
            # The same unit scan twice (a Wi-Fi retry): one unit counted.
            unit = race(*[lambda: floor.scan(picker, BARCODES["SKU-A"], f"unit-{round_}")] * 2)
            assert sorted(outcome(a) for a in unit) == ["repeat", "unit"], unit
            # The same tote scan twice: the line is done once, the retry is "already counted".
            tote = race(*[lambda: floor.scan(picker, f"T-{round_}", f"tote-{round_}")] * 2)
            assert sorted(outcome(a) for a in tote) == ["line_done", "repeat"], tote
            assert floor.lines(ref)[0] == ("A-01-01-1", "SKU-A", 2, 2, "done")
            assert floor.lines(ref)[1][4] == "location"
            floor.check()

    @postgres_only
    def test_two_devices_scanning_the_last_unit_of_a_line_never_over_pick(floor, db):
        for round_ in range(REPEATS):
            picker = f"P{PICKERS + round_:02d}"
            floor.order([("SKU-A", 2)])
            ref = floor.claim(picker)
            floor.scans(picker, [f"T-{round_}", "A-01-01-1", BARCODES["SKU-A"]])
            answers = race(floor_scan(floor, picker, BARCODES["SKU-A"], f"a-{round_}"),
                           floor_scan(floor, picker, BARCODES["SKU-A"], f"b-{round_}"))
            assert sorted(outcome(a) for a in answers) == ["over_pick", "unit"], answers
            assert floor.lines(ref) == [("A-01-01-1", "SKU-A", 2, 2, "tote")]
            floor.check()

    @postgres_only
    def test_a_short_pick_racing_a_cancel_never_revives_the_order(floor, db):
        for round_ in range(REPEATS):
            picker = f"P{PICKERS + round_:02d}"
            floor.recount("A-02-02-1", "SKU-C", 1000)  # SKU-C's only bin here: the rest goes to SH-JD
            external_id = floor.order([("SKU-C", 3), ("SKU-A", 1)])
            floor.claim(picker)
            floor.scans(picker, [f"T-{round_}", "A-01-01-1", BARCODES["SKU-A"], f"T-{round_}", "A-02-02-1",
                                 BARCODES["SKU-C"]])
            short, cancelled = race(lambda: floor.short(picker, f"short-{round_}"),
                                    lambda: floor.cancel(external_id))
            assert cancelled is True
            assert outcome(short) in ("short", "list_done", "list_changed"), short
            # Whichever came first, the order is cancelled and holds nothing anywhere.
            with db.reading() as s:
                status = s.scalar(select(Order.status).where(Order.external_id == external_id))
            assert status.value == "cancelled" and floor.placed(external_id) == Counter()
            assert floor.holds_of(external_id) == 0
            if outcome(short) != "short":  # the cancel came first: the picker is told, and what to put back
                assert [c.why for c in short.changes] == ["cancelled"], short
                assert "SKU-A × 1 → A-01-01-1" in short.changes[0].put_back
            floor.check()

    @postgres_only
    def test_a_lead_redispatching_a_fulfilment_while_its_line_is_scanned(floor, db):
        for round_ in range(REPEATS):
            picker = f"P{PICKERS + round_:02d}"
            external_id = floor.order([("SKU-A", 2), ("SKU-D", 1)])
            ref = floor.claim(picker)
            floor.scans(picker, [f"T-{round_}", "A-01-01-1"])
            scanned, moved = race(lambda: floor.scan(picker, BARCODES["SKU-A"], f"unit-{round_}"),
                                  lambda: floor.lead_redispatch(external_id))
            # Never a refusal about a line that is gone: counted, or told it moved.
            assert outcome(scanned) in ("unit", "list_done", "list_changed"), scanned
            assert moved, "the lead's re-dispatch placed the units"
            assert floor.placed(external_id) == Counter({"SKU-A": 2, "SKU-D": 1})
            # The scan that came first counted a unit: the next scan (the bin again) is told.
            after = floor.scan(picker, "A-01-01-1", f"next-{round_}") if outcome(scanned) == "unit" else scanned
            assert outcome(after) == "list_done", after
            f_ref, status = floor.fulfilment(external_id)
            assert status == FulfilmentStatus.redispatched
            assert [(c.why, c.fulfilment) for c in after.changes] == [("moved", f_ref)], after
            if outcome(scanned) == "unit":  # the unit in hand goes back
                assert after.changes[0].put_back == "SKU-A × 1 → A-01-01-1"
            assert all(step == "done" for *_, step in floor.lines(ref))
            floor.check()

    @postgres_only
    def test_a_lead_redispatching_a_fulfilment_while_its_bin_is_reported_short(floor, db):
        for round_ in range(REPEATS):
            picker = f"P{PICKERS + round_:02d}"
            floor.recount("A-02-02-1", "SKU-C", 1000)
            external_id = floor.order([("SKU-C", 3), ("SKU-B", 1)])
            floor.claim(picker)
            floor.scans(picker, [f"T-{round_}", "A-01-05-1", BARCODES["SKU-B"], f"T-{round_}", "A-02-02-1",
                                 BARCODES["SKU-C"]])
            short, moved = race(lambda: floor.short(picker, f"short-{round_}"),
                                lambda: floor.lead_redispatch(external_id))
            assert outcome(short) in ("short", "list_done", "list_changed"), short
            assert isinstance(moved, list), moved
            # Every unit ordered is placed once: never moved twice.
            assert floor.placed(external_id) == Counter({"SKU-C": 3, "SKU-B": 1})
            floor.check()

    @postgres_only
    def test_a_cancel_racing_the_tote_scan_of_its_last_line(floor, db):
        for round_ in range(REPEATS):
            picker = f"P{PICKERS + round_:02d}"
            first = floor.order([("SKU-A", 1)])
            floor.order([("SKU-B", 1)])
            ref = floor.claim(picker, 2)
            tote = f"T-{round_}"
            floor.scans(picker, [tote, f"U-{round_}", "A-01-01-1", BARCODES["SKU-A"]])
            scanned, cancelled = race(lambda: floor.scan(picker, tote, f"tote-{round_}"),
                                      lambda: floor.cancel(first))
            assert cancelled is True
            f_ref, status = floor.fulfilment(first)
            assert status == FulfilmentStatus.cancelled
            if outcome(scanned) == "line_done":  # the scan came first: picked, then cancelled
                assert floor.picked_event(f_ref)
            else:  # the cancel came first: the picker is told to put the unit back
                assert outcome(scanned) == "list_changed", scanned
                assert not floor.picked_event(f_ref)
                assert [(c.why, c.fulfilment, c.put_back) for c in scanned.changes] == [
                    ("cancelled", f_ref, "SKU-A × 1 → A-01-01-1")]
            # Either way the walk goes on with the other order's line.
            lines = floor.lines(ref)
            assert lines[0][4] == "done" and lines[1][:2] == ("A-01-05-1", "SKU-B") and lines[1][4] == "location"
            floor.check()


def floor_scan(floor: Floor, picker: str, code: str, scan_id: str):
    return lambda: floor.scan(picker, code, scan_id)
