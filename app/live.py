"""The live hub: wakes this process's websocket handlers when events commit
in any process.

In-process commits arrive through `events.subscribers`. Other processes'
commits arrive through PostgreSQL: the outbox sends `pg_notify` inside the
committing transaction, so the notice is delivered exactly when the events
become visible, and one listening connection per process hears it. Handlers
then read what they need from the outbox by `seq`, which is also how a
reconnecting client catches up: nothing lives only in a worker's memory.
"""
from __future__ import annotations

import logging
import threading

from app.db import Database
from app.fulfilment import events

log = logging.getLogger(__name__)
CHANNEL = events.NOTIFY_CHANNEL


class Hub:
    def __init__(self, db: Database):
        self.db = db
        self._cond = threading.Condition()
        self._last = 0
        self._stop = threading.Event()
        self._started = False

    @property
    def last_seq(self) -> int:
        return self._last

    def notify(self, _first: int, last: int) -> None:
        with self._cond:
            if last > self._last:
                self._last = last
                self._cond.notify_all()

    def wait(self, after: int, timeout: float) -> int:
        """Block until an event newer than `after` has committed, or the timeout;
        returns the newest seq known."""
        with self._cond:
            self._cond.wait_for(lambda: self._last > after, timeout)
            return self._last

    def start(self) -> "Hub":
        if self._started:
            return self
        self._started = True
        with self.db.reading() as session:
            self._last = events.last_seq(session)
        events.subscribers.append(self.notify)
        if self.db.dialect == "postgresql":
            threading.Thread(target=self._listen, name="luyue-live-listen", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.notify in events.subscribers:
            events.subscribers.remove(self.notify)

    def _listen(self) -> None:
        import psycopg

        url = self.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    # Catch up on anything committed while we were not listening.
                    seq = conn.execute("SELECT last_seq FROM event_counter WHERE id = 1").fetchone()[0]
                    self.notify(0, seq)
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self.notify(0, int(note.payload))
            except Exception:  # the database went away: listen again shortly
                log.warning("live listener lost its connection; reconnecting", exc_info=True)
                self._stop.wait(1.0)
