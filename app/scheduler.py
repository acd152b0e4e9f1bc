"""Time-based work, run by every server process: presales whose release time
has come. Each job is safe to run in several processes at once (rows are
claimed with FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite has one writer)."""
from __future__ import annotations

import logging
import threading

from flask import Flask

from app.fulfilment.intake import release_due

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 30.0


def run_due(app: Flask) -> dict[str, int]:
    db = app.extensions["luyue.db"]
    with db.transaction() as session:
        released = release_due(session)
    return {"presales_released": released}


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
            except Exception:  # the next round tries again
                log.exception("scheduled work failed")

    threading.Thread(target=loop, name="luyue-scheduler", daemon=True).start()
    return stop
