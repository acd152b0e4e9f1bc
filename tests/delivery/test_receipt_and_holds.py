"""Receipt timing (fulfilment time stored per fulfilment; automatic receipt N
days after delivery), holds, and the auto-cancel of fulfilments that waited
too long for stock."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from app.fulfilment import hold, tracking
from app.fulfilment.errors import Refusal
from app.models import Event, Fulfilment, FulfilmentHold, FulfilmentStatus, TrackingStatus, utcnow
from app.scheduler import run_due
from deliveries import order_of, shipped, submit
from support import add_skus, check_invariants, stock_of

PLACED = dt.datetime.fromisoformat("2026-11-24T10:02:00+08:00")


def deliver(db, external_id: str, at: dt.datetime) -> None:
    with db.transaction() as s:
        for f in order_of(s, external_id).fulfilments:
            for p in f.parcels:
                assert tracking.report(s, p, TrackingStatus.delivered, at).result == "applied"


def events_of(db, external_id: str) -> list[tuple[str, dict]]:
    with db.reading() as s:
        order = order_of(s, external_id)
        return [(e.type, e.data) for e in s.scalars(select(Event).where(Event.order_id == order.id)
                                                    .order_by(Event.seq))]


# --- receipt -----------------------------------------------------------------------

def test_receipt_after_delivery_stores_both_fulfilment_times(floor, client, headers):
    shipped(floor, "R-1")
    delivered_at = PLACED + dt.timedelta(days=1, hours=2)
    deliver(floor, "R-1", delivered_at)
    answer = client.post("/api/v1/orders/R-1/receipt", headers=headers)
    assert answer.status_code == 200
    doc = answer.get_json()
    [f] = doc["fulfilments"]
    assert doc["status"] == "completed" and f["status"] == "completed"
    times = f["fulfilment_time"]
    assert times["placed_to_delivered_seconds"] == 26 * 3600
    completed = dt.datetime.fromisoformat(f["completed_at"])
    assert times["placed_to_completed_seconds"] == int((completed - PLACED).total_seconds())


def test_a_courier_delivery_after_the_customer_confirmed_keeps_the_order_completed(floor, client, headers):
    shipped(floor, "R-2")
    assert client.post("/api/v1/orders/R-2/receipt", headers=headers).status_code == 200
    deliver(floor, "R-2", PLACED + dt.timedelta(hours=30))
    doc = client.get("/api/v1/orders/R-2", headers=headers).get_json()
    [f] = doc["fulfilments"]
    assert doc["status"] == "completed" and f["status"] == "completed"
    assert f["fulfilment_time"]["placed_to_delivered_seconds"] == 30 * 3600
    assert f["parcels"][0]["status"] == "delivered"


def test_a_delivered_fulfilment_completes_by_itself_n_days_later(floor):
    from app.fulfilment import deliver as receipt
    shipped(floor, "R-3")
    delivered_at = utcnow() - dt.timedelta(days=2)
    deliver(floor, "R-3", delivered_at)
    week = dt.timedelta(days=7)
    with floor.transaction() as s:
        assert receipt.complete_due(s, week, now=delivered_at + week - dt.timedelta(seconds=1)) == 0
    with floor.transaction() as s:
        assert receipt.complete_due(s, week, now=delivered_at + week) == 1
    with floor.reading() as s:
        order = order_of(s, "R-3")
        assert order.status.value == "completed"
        assert order.fulfilments[0].completed_at == delivered_at + week
    kinds = events_of(floor, "R-3")
    assert kinds[-3][0] == "fulfilment.completed" and kinds[-3][1]["auto"] is True
    assert kinds[-2] == ("order.status_changed", {"status": "completed", "previous": "delivered"})
    assert kinds[-1] == ("order.completed", {"auto": True})
    with floor.transaction() as s:
        assert receipt.complete_due(s, week, now=delivered_at + 2 * week) == 0  # once


def test_the_scheduler_completes_after_the_configured_days(floor, app):
    shipped(floor, "R-4")
    deliver(floor, "R-4", utcnow() - dt.timedelta(days=3))
    app.config["LUYUE"].auto_complete_days = 4
    assert run_due(app)["auto_completed"] == 0
    app.config["LUYUE"].auto_complete_days = 2.5
    done = run_due(app)
    assert done["auto_completed"] == 1 and set(done) >= {"presales_released", "awaiting_stock_cancelled",
                                                           "holds_expired", "webhook_log_pruned"}
    with floor.reading() as s:
        assert order_of(s, "R-4").status.value == "completed"


def test_the_auto_complete_setting_comes_from_the_environment(monkeypatch, tmp_path):
    from app.config import Settings
    monkeypatch.setenv("LUYUE_AUTO_COMPLETE_DAYS", "10")
    monkeypatch.setenv("LUYUE_AWAITING_STOCK_CANCEL_HOURS", "24")
    monkeypatch.setenv("LUYUE_WEBHOOK_SENDERS", "2")
    settings = Settings.from_env(tmp_path)
    assert (settings.auto_complete_days, settings.awaiting_stock_cancel_hours, settings.webhook_senders) == (10, 24, 2)
    monkeypatch.delenv("LUYUE_AUTO_COMPLETE_DAYS")
    assert Settings.from_env(tmp_path).auto_complete_days == 7


# --- holds -------------------------------------------------------------------------------

def _fulfilment(s, external_id: str) -> Fulfilment:
    return order_of(s, external_id).fulfilments[0]


def _pickable(s, node_id: int) -> list[str]:
    """What picking's list builder selects, with the hold filter it adds."""
    return list(s.scalars(select(Fulfilment.ref).where(
        Fulfilment.node_id == node_id, Fulfilment.status == FulfilmentStatus.reserved, hold.not_held())))


def test_a_held_fulfilment_is_not_pickable_until_released(floor, client, headers):
    submit(floor, "H-1", [("SKU-A", 1)])
    with floor.transaction() as s:
        f = _fulfilment(s, "H-1")
        node_id = f.node_id
        assert _pickable(s, node_id) == [f.ref]
        hold.place_hold(s, f, "客户要求改地址 address change", "L001")
        hold.place_hold(s, f, "payment check", "risk-bot")
    with floor.reading() as s:
        assert _pickable(s, node_id) == []
    doc = client.get("/api/v1/orders/H-1", headers=headers).get_json()
    assert [(h["reason"], h["by"]) for h in doc["fulfilments"][0]["holds"]] == [
        ("客户要求改地址 address change", "L001"), ("payment check", "risk-bot")]
    with floor.transaction() as s:
        f = _fulfilment(s, "H-1")
        first = hold.active_holds(s, f)[0]
        assert hold.release_hold(s, f, "L001", hold_id=first.id) == 1
        assert hold.is_held(s, f)
        assert hold.release_hold(s, f, "L001") == 1
        assert not hold.is_held(s, f) and _pickable(s, node_id) == [f.ref]
        with pytest.raises(Refusal) as nothing:
            hold.release_hold(s, f, "L001")
        assert nothing.value.key == "hold_not_found"
    kinds = [(t, d.get("by")) for t, d in events_of(floor, "H-1") if t.startswith("fulfilment.h")]
    assert kinds == [("fulfilment.held", "L001"), ("fulfilment.held", "risk-bot"),
                     ("fulfilment.hold_released", "L001"), ("fulfilment.hold_released", "L001")]
    assert client.get("/api/v1/orders/H-1", headers=headers).get_json()["fulfilments"][0]["holds"] == []


def test_a_hold_until_a_time_stops_holding_then_and_the_scheduler_records_it(floor, app):
    submit(floor, "H-2", [("SKU-A", 1)])
    with floor.transaction() as s:
        f = _fulfilment(s, "H-2")
        hold.place_hold(s, f, "wait for the truck", "L001", until=utcnow() + dt.timedelta(hours=1))
        node_id = f.node_id
    with floor.transaction() as s:
        assert _pickable(s, node_id) == []
        s.execute(update(FulfilmentHold).values(until=utcnow() - dt.timedelta(seconds=1)))
    with floor.reading() as s:
        assert len(_pickable(s, node_id)) == 1  # expired: no longer holding, before any job ran
    assert run_due(app)["holds_expired"] == 1
    assert run_due(app)["holds_expired"] == 0
    assert events_of(floor, "H-2")[-1][0] == "fulfilment.hold_released"
    assert events_of(floor, "H-2")[-1][1]["expired"] is True


def test_holds_are_refused_on_shipped_fulfilments_without_a_reason_or_with_a_past_end(floor):
    shipped(floor, "H-3")
    submit(floor, "H-4", [("SKU-A", 1)])
    with floor.transaction() as s:
        cases = [(_fulfilment(s, "H-3"), "x", None, "hold_not_allowed"),
                 (_fulfilment(s, "H-4"), "  ", None, "hold_reason_needed"),
                 (_fulfilment(s, "H-4"), "x", utcnow() - dt.timedelta(minutes=1), "hold_until_past")]
        for f, reason, until, key in cases:
            with pytest.raises(Refusal) as refusal:
                hold.place_hold(s, f, reason, "L001", until=until)
            assert refusal.value.key == key
            assert refusal.value.message("zh") and refusal.value.message("en")


# --- auto-cancel of stale awaiting_stock -------------------------------------------------

def test_a_fulfilment_awaiting_stock_too_long_is_cancelled_and_the_order_with_it(floor, client, headers):
    add_skus(floor, ["SKU-NONE"])
    submit(floor, "A-1", [("SKU-NONE", 2)])
    with floor.reading() as s:
        f = _fulfilment(s, "A-1")
        assert f.status == FulfilmentStatus.awaiting_stock
        since = s.scalar(select(Event.at).where(Event.fulfilment_id == f.id,
                                                Event.type == "fulfilment.awaiting_stock"))
    limit = dt.timedelta(hours=72)
    with floor.transaction() as s:
        assert hold.cancel_stale(s, limit, now=since + limit - dt.timedelta(minutes=1)) == 0
    with floor.transaction() as s:
        assert hold.cancel_stale(s, limit, now=since + limit) == 1
    doc = client.get("/api/v1/orders/A-1", headers=headers).get_json()
    assert doc["status"] == "cancelled" and doc["fulfilments"][0]["status"] == "cancelled"
    kinds = events_of(floor, "A-1")
    assert kinds[-3] == ("fulfilment.cancelled", {"reason": "awaiting_stock_timeout", "intercept": False,
                                                  "limit_hours": 72.0, "node": None, "status": "cancelled",
                                                  "lines": [{"sku": "SKU-NONE", "quantity": 2}]})
    assert kinds[-2] == ("order.status_changed", {"status": "cancelled", "previous": "received"})
    assert kinds[-1][0] == "order.cancelled" and kinds[-1][1]["reason"] == "awaiting_stock_timeout"
    # The channel cancelling it now changes nothing.
    assert client.post("/api/v1/orders/A-1/cancel", headers=headers).status_code == 200
    assert events_of(floor, "A-1") == kinds
    check_invariants(floor)


def test_only_the_stale_part_is_cancelled_and_what_else_lives_keeps_the_order(floor, app):
    add_skus(floor, ["SKU-NONE"])
    submit(floor, "A-2", [("SKU-A", 1), ("SKU-NONE", 1)])
    with floor.transaction() as s:
        parts = {f.status for f in order_of(s, "A-2").fulfilments}
        assert parts == {FulfilmentStatus.reserved, FulfilmentStatus.awaiting_stock}
        # It has waited four days.
        s.execute(update(Event).where(Event.type == "fulfilment.awaiting_stock")
                  .values(at=utcnow() - dt.timedelta(days=4)))
    assert stock_of(floor, "SH-PD", "SKU-A") == (50, 1)
    assert run_due(app)["awaiting_stock_cancelled"] == 1
    with floor.reading() as s:
        order = order_of(s, "A-2")
        assert {f.status for f in order.fulfilments} == {FulfilmentStatus.reserved, FulfilmentStatus.cancelled}
        assert order.status.value == "in_fulfilment"
    assert not any(t == "order.cancelled" for t, _ in events_of(floor, "A-2"))
    assert stock_of(floor, "SH-PD", "SKU-A") == (50, 1)
    check_invariants(floor)


def test_a_held_fulfilment_awaiting_stock_is_left_alone(floor, app):
    add_skus(floor, ["SKU-NONE"])
    submit(floor, "A-3", [("SKU-NONE", 1)])
    with floor.transaction() as s:
        hold.place_hold(s, _fulfilment(s, "A-3"), "supplier confirmed a delivery", "L001")
        s.execute(update(Event).where(Event.type == "fulfilment.awaiting_stock")
                  .values(at=utcnow() - dt.timedelta(days=10)))
    assert run_due(app)["awaiting_stock_cancelled"] == 0
    with floor.reading() as s:
        assert _fulfilment(s, "A-3").status == FulfilmentStatus.awaiting_stock
