"""`GET /healthz` for load balancers and process supervisors: 200 while this
process can read the database, 503 (and no traffic, please) when it cannot
or when it is stopping (a deploy: gunicorn got SIGTERM and is draining).

No token and no login: it says only whether the process can work, and the
newest event seq, which lets an operator see that two processes share a
database."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from app import live
from app.fulfilment import events
from app.web import database

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    if live.stopping.is_set():
        return jsonify({"status": "stopping"}), 503
    try:
        with database().reading() as s:
            seq = events.last_seq(s)
    except SQLAlchemyError as e:
        current_app.logger.warning("health check: the database is unreachable: %s", str(e).splitlines()[0][:200])
        return jsonify({"status": "unavailable", "database": "unreachable"}), 503
    return jsonify({"status": "ok", "database": database().dialect, "last_seq": seq}), 200
