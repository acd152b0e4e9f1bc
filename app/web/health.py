"""`GET /healthz` for load balancers and process supervisors: 200 while this
process can read the database, 503 (and no traffic, please) when it cannot
or when it is stopping (a deploy: gunicorn got SIGTERM and is draining).

The answer comes within `health_timeout_seconds` even when the database hangs:
the read runs on its own thread, and checks that arrive while one is under
way wait for that one, so a hung database holds one thread, not one per check.

No token and no login: it says only whether the process can work, and the
newest event seq, which lets an operator see that two processes share a
database."""
from __future__ import annotations

import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as NoAnswer

from flask import Blueprint, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from app import live
from app.db import Database
from app.fulfilment import events
from app.web import database

bp = Blueprint("health", __name__)


class Probe:
    """One read of the newest seq at a time, shared by the checks meanwhile."""

    def __init__(self, db: Database):
        self.db = db
        self._lock = threading.Lock()
        self._running: Future | None = None

    def read(self) -> Future:
        with self._lock:
            if self._running is None or self._running.done():
                self._running = Future()
                threading.Thread(target=self._run, args=(self._running,), name="luyue-health", daemon=True).start()
            return self._running

    def _run(self, answer: Future) -> None:
        try:
            with self.db.reading() as s:
                seq = events.last_seq(s)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting check
            answer.set_exception(e)
        else:  # told once the connection is back in the pool
            answer.set_result(seq)


def _probe() -> Probe:
    probe = current_app.extensions.get("luyue.health")
    if probe is None:
        probe = current_app.extensions.setdefault("luyue.health", Probe(database()))
    return probe


@bp.get("/healthz")
def healthz():
    if live.stopping.is_set():
        return jsonify({"status": "stopping"}), 503
    settings = current_app.config["LUYUE"]
    try:
        seq = _probe().read().result(timeout=settings.health_timeout_seconds)
    except (NoAnswer, SQLAlchemyError) as e:
        if isinstance(e, NoAnswer):
            e = TimeoutError(f"no answer within {settings.health_timeout_seconds:g} s")
        database().outages.report(current_app.logger, "health check", e)
        return (jsonify({"status": "unavailable", "database": "unreachable"}), 503,
                {"Retry-After": str(settings.unavailable_retry_after_seconds)})
    return jsonify({"status": "ok", "database": database().dialect, "last_seq": seq}), 200
