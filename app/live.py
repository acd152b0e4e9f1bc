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
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from app.db import Database
from app.fulfilment import events

log = logging.getLogger(__name__)
CHANNEL = events.NOTIFY_CHANNEL
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


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
        """Block until an event newer than `after` has committed, the process
        is stopping, or the timeout; returns the newest seq known."""
        with self._cond:
            self._cond.wait_for(lambda: self._last > after or stopping.is_set(), timeout)
            return self._last

    def wake(self) -> None:
        """Wake every waiting socket (they then see `stopping`)."""
        with self._cond:
            self._cond.notify_all()

    def start(self) -> "Hub":
        if self._started:
            return self
        self._started = True
        with self.db.reading() as session:
            self._last = events.last_seq(session)
        events.subscribers.append(self.notify)
        _hubs.add(self)
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
                with psycopg.connect(url, autocommit=True, **self.db.timeouts.libpq()) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    # Catch up on anything committed while we were not listening.
                    seq = conn.execute("SELECT last_seq FROM event_counter WHERE id = 1").fetchone()[0]
                    self.notify(0, seq)
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self.notify(0, int(note.payload))
            except Exception as e:  # the database went away: listen again shortly
                self.db.outages.failed(log, "live listener (reconnecting)", e)
                self._stop.wait(1.0)


_hub_lock = threading.Lock()
# Set when this process is asked to stop (gunicorn's SIGTERM, app.server):
# live sockets then close with 1012 (service restart) and their pages
# reconnect to a process that stays, instead of holding this one open.
stopping = threading.Event()
CLOSE_RESTARTING = 1012
_hubs: "weakref.WeakSet[Hub]" = weakref.WeakSet()


def stop_live_screens() -> None:
    """This process is stopping: wake every socket at once to close."""
    stopping.set()
    for started in list(_hubs):
        started.wake()


def close_if_stopping(ws) -> None:
    """A live screen's loop has ended: if the process is stopping, tell the
    page to reconnect (the ws extension retries 1012) to a process that stays."""
    if stopping.is_set() and ws.connected:
        ws.close(reason=CLOSE_RESTARTING, message="server restarting")


class SocketReader(threading.Thread):
    """simple_websocket's reader thread, as a daemon: after a live screen
    closes, it sleeps in select until the next ping (25 s) and, were it not a
    daemon, would hold a stopping worker past gunicorn's graceful timeout."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, daemon=True, **kwargs)


def hub(app) -> Hub:
    """The app's hub in this process, started on first use (one LISTEN
    connection per process, however many sockets)."""
    with _hub_lock:
        found = app.extensions.get("luyue.live")
        if found is None:
            found = app.extensions["luyue.live"] = Hub(app.extensions["luyue.db"]).start()
    return found


class _Entry:
    __slots__ = ("lock", "value", "seq", "at")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value = None
        self.seq = -1
        self.at = 0.0


class Shared(Generic[K, V]):
    """The latest value per key (say, one node's dashboard), computed once
    per change and handed to every socket watching that key.

    When the hub wakes a hundred sockets of one node, the first to ask
    computes, the others wait on the key's lock and take its result: one
    computation per key per wake, not one per socket. `compute(key,
    previous, seq)` makes the value as of outbox `seq` from the previous one
    (None at first); a value older than `max_age` seconds is made again even
    without events (ages on screen move with the clock)."""

    def __init__(self, hub: Hub, compute: Callable[[K, V | None, int], V], max_age: float):
        self.hub = hub
        self.compute = compute
        self.max_age = max_age
        self._entries: dict[K, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, key: K, seq: int | None = None) -> V:
        """The value for `key` as of `seq` or later (default: the newest seq known)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
        with entry.lock:
            newest = self.hub.last_seq
            wanted = newest if seq is None else min(seq, newest)
            if entry.value is None or entry.seq < wanted or time.monotonic() - entry.at >= self.max_age:
                # Read the seq before computing: the value shows at least that much.
                entry.value = self.compute(key, entry.value, newest)
                entry.seq, entry.at = newest, time.monotonic()
            return entry.value
