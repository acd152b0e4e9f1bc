"""Helpers of the delivery tests: take an order from intake to packed or
shipped through the real pipeline (picking stood in by set_status), and an
HTTP receiver on loopback for webhooks."""
from __future__ import annotations

import http.server
import json
import threading

from sqlalchemy import select

from app import access
from app.fulfilment import intake, pack, ship
from app.models import FulfilmentStatus, Node, Order, User
from support import order_body, set_status

PREFIX = "6901234"
GTIN = {"SKU-A": "6901234567892", "SKU-B": "6901234000016"}


def user(s, code: str) -> User:
    return s.scalar(select(User).where(User.code == code))


def order_of(s, external_id: str) -> Order:
    return s.scalar(select(Order).where(Order.external_id == external_id))


def submit(db, external_id: str, lines, delivery: str = "express", channel: str = "shop", **extra) -> None:
    with db.transaction() as s:
        intake.submit(s, access.channel_named(s, channel),
                      json.dumps(order_body(external_id, lines, delivery=delivery, **extra)).encode())


def packed(db, external_id: str, lines=(("SKU-A", 1),), delivery: str = "express", parcels: int = 1,
           **extra) -> list[str]:
    """Intake, picked (stand-in), packed in `parcels` parcels; tracking numbers."""
    submit(db, external_id, lines, delivery, **extra)
    set_status(db, external_id, FulfilmentStatus.picked)
    units = [GTIN[sku] for sku, q in lines for _ in range(q)]
    assert len(units) >= parcels
    size = -(-len(units) // parcels)
    numbers = []
    with db.transaction() as s:
        f = order_of(s, external_id).fulfilments[0]
        packer = user(s, "K002" if delivery == "same_city" else "K001")
        for start in range(0, len(units), size):
            for code in units[start:start + size]:
                pack.scan_item(s, f, code)
            numbers.append(pack.close_parcel(s, f, 500, packer, PREFIX).tracking_number)
    return numbers


def shipped(db, external_id: str, lines=(("SKU-A", 1),), parcels: int = 1, **extra) -> list[str]:
    """Express: packed at SH-PD and scanned out on a ly-express handover."""
    numbers = packed(db, external_id, lines, "express", parcels, **extra)
    with db.transaction() as s:
        node = s.scalar(select(Node).where(Node.code == "SH-PD"))
        dock = user(s, "D001")
        handover = ship.open_handover(s, node, "ly-express", dock)
        for number in numbers:
            ship.scan_parcel(s, handover, number, dock)
    return numbers


class Receiver:
    """Answers `plan(n)` for the n-th request (1-based): a status, or
    ("hang", seconds) to keep the request open that long (or until released)."""

    def __init__(self, plan=lambda n: 200):
        self.plan = plan
        self.attempts: list[tuple[int, dict[str, str], bytes]] = []  # (status answered, headers, body)
        self.lock = threading.Lock()
        self.release = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    n = len(receiver.attempts) + 1
                    answer = receiver.plan(n)
                    status = answer if isinstance(answer, int) else 200
                    receiver.attempts.append((status if isinstance(answer, int) else -1, dict(self.headers), body))
                if not isinstance(answer, int):
                    receiver.release.wait(answer[1])
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def accepted(self) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(h, b) for status, h, b in self.attempts if 200 <= status < 300]

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
