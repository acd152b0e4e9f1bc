"""Time-based work, run by every server process: presales whose release time
has come, automatic receipt after delivery, fulfilments awaiting stock too
long, expired holds, the webhook log. Each job is safe to run in several
processes at once (rows are claimed with FOR UPDATE SKIP LOCKED on
PostgreSQL; SQLite has one writer)."""
from __future__ import annotations

import logging
import threading

from flask import Flask

from app.fulfilment.dispatch import dispatch_waiting
from app.fulfilment.intake import release_due

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 30.0
# Fulfilments awaiting stock tried per run, oldest first.
WAITING_PER_SWEEP = 200


def run_due(app: Flask) -> dict[str, int]:
    db = app.extensions["luyue.db"]
    with db.transaction() as session:
        released = release_due(session)
    # Stock arriving dispatches what waits for it at once; a fulfilment whose
    # order was busy at that moment is tried here.
    with db.transaction() as session:
        swept = dispatch_waiting(session, limit=WAITING_PER_SWEEP)
    done = {"presales_released": released, "waiting_dispatched": len(swept)}
    done.update(_delivery_jobs(app))
    return done


def _delivery_jobs(app: Flask) -> dict[str, int]:
    """Receipt by itself N days after delivery, stale awaiting-stock cancelled,
    expired holds recorded, the webhook log pruned: one transaction each."""
    import datetime as dt

    from app import access, webhooks
    from app.fulfilment import deliver, hold

    db, settings = app.extensions["luyue.db"], app.config["LUYUE"]
    done: dict[str, int] = {}
    with db.transaction() as session:
        done["auto_completed"] = deliver.complete_due(session, dt.timedelta(days=settings.auto_complete_days))
    with db.transaction() as session:
        done["awaiting_stock_cancelled"] = hold.cancel_stale(
            session, dt.timedelta(hours=settings.awaiting_stock_cancel_hours))
    with db.transaction() as session:
        done["holds_expired"] = hold.release_expired(session)
    with db.transaction() as session:
        done["webhook_log_pruned"] = webhooks.prune_log(session)
    with db.transaction() as session:
        done["rate_windows_pruned"] = access.prune_rate_windows(session)
    return done


def start(app: Flask, interval: float = INTERVAL_SECONDS) -> threading.Event:
    """A daemon thread running `run_due` every `interval` seconds; set the
    returned event to stop it."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                done = run_due(app)
                if any(done.values()):
                    log.info("scheduled work: %s", done)
            except Exception as e:  # the next round tries again
                app.extensions["luyue.db"].outages.failed(log, "scheduled work", e)

    threading.Thread(target=loop, name="luyue-scheduler", daemon=True).start()
    return stop
