"""What the order-store tests share: master data and order bodies, a stand-in
for the ship step, the store's invariants, and a check that a refused request
wrote nothing and logged one line.

Imported as `support` (pytest puts tests/ on sys.path for its conftest).
"""
from __future__ import annotations

import contextlib
import http.server
import logging
import threading
from collections import Counter
from typing import Any, Iterable, Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import masterdata
from app.db import Database
from app.fulfilment import events, orders, reserve
from app.models import (
    BinStock,
    Event,
    EventCounter,
    Fulfilment,
    FulfilmentLine,
    FulfilmentStatus,
    Location,
    Node,
    NodeDay,
    Order,
    Reservation,
    ReservationState,
    Stock,
    utcnow,
)

# Real places, so distances mean something: two Shanghai warehouses, a
# Shanghai store, a Hangzhou warehouse. The customer lives near 世纪大道.
PLACES: dict[str, dict[str, Any]] = {
    "SH-PD": {"province": "上海市", "city": "上海市", "lat": 31.2200, "lon": 121.5400},   # ~3 km away
    "SH-JD": {"province": "上海市", "city": "上海市", "lat": 31.3800, "lon": 121.2500},   # ~32 km away
    "SH-STORE": {"province": "上海市", "city": "上海市", "lat": 31.2300, "lon": 121.4750},  # ~3 km away
    "HZ-XS": {"province": "浙江省", "city": "杭州市", "lat": 30.1800, "lon": 120.2600},   # ~170 km away
}
CUSTOMER = {"name": "王小明", "phone": "13800000000", "province": "上海市", "city": "上海市",
            "district": "浦东新区", "line1": "世纪大道100号", "postal_code": "200120",
            "lat": 31.2335, "lon": 121.5055}


def node_body(**overrides: Any) -> dict[str, Any]:
    body = {"name": "仓", "kind": "warehouse", "province": "上海市", "city": "上海市",
            "lat": 31.22, "lon": 121.54, "daily_capacity": 5000, "same_city_radius_km": 0, "active": True}
    body.update(overrides)
    return body


def ship_to(**overrides: Any) -> dict[str, Any]:
    address = dict(CUSTOMER)
    address.update(overrides)
    return {k: v for k, v in address.items() if v is not None}


def order_body(external_id: str, lines: Iterable[tuple[str, int] | dict[str, Any]], *,
               delivery: str = "express", address: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body = {
        "external_id": external_id,
        "placed_at": "2026-11-24T10:02:00+08:00",
        "customer": {"name": "王小明", "phone": "13800000000"},
        "ship_to": address if address is not None else ship_to(),
        "delivery": delivery,
        "promised_by": "2026-11-25T18:00:00+08:00",
        "lines": [line if isinstance(line, dict) else {"sku": line[0], "quantity": line[1]} for line in lines],
    }
    body.update(extra)
    return body


# --- master data through the domain functions (fast, one transaction each) ----

def _put_nodes(s: Session, nodes: dict[str, dict[str, Any]]) -> None:
    for code, fields in nodes.items():
        masterdata.put_node(s, code, masterdata.NodeBody(**node_body(name=code, **fields)))


def _put_skus(s: Session, codes: Iterable[str]) -> None:
    for code in codes:
        masterdata.put_sku(s, code, masterdata.SkuBody(name=f"商品 {code}"))


def _count(s: Session, node_code: str, counts: dict[str, int], location: str | None = None) -> dict[str, Any]:
    items = [masterdata.StockItem(location=location or f"A-01-{i + 1:02d}-1", sku=sku, on_hand=units)
             for i, (sku, units) in enumerate(sorted(counts.items()))]
    node = s.scalar(select(Node).where(Node.code == node_code))
    return masterdata.count_stock(s, node, masterdata.StockBody(items=items))


def add_nodes(db: Database, nodes: dict[str, dict[str, Any]]) -> None:
    with db.transaction() as s:
        _put_nodes(s, nodes)


def add_skus(db: Database, codes: Iterable[str]) -> None:
    with db.transaction() as s:
        _put_skus(s, codes)


def count(db: Database, node_code: str, counts: dict[str, int], location: str | None = None) -> dict[str, Any]:
    """Set stock at a node as a cycle count would: one bin per SKU."""
    with db.transaction() as s:
        return _count(s, node_code, counts, location)


def world(db: Database, stock: dict[str, dict[str, int]], *, nodes: dict[str, dict[str, Any]] | None = None,
          skus: Iterable[str] = ()) -> None:
    """Nodes (default: the real places named in `stock`), SKUs and counts,
    in one transaction."""
    nodes = nodes if nodes is not None else {code: PLACES[code] for code in stock}
    with db.transaction() as s:
        _put_nodes(s, nodes)
        _put_skus(s, sorted(set(skus) | {sku for counts in stock.values() for sku in counts}))
        for code, counts in stock.items():
            if counts:
                _count(s, code, counts)


# --- reading state ------------------------------------------------------------------

def stock_of(db: Database, node_code: str, sku: str) -> tuple[int, int]:
    """(on_hand, reserved) at a node; (0, 0) when it never had the SKU."""
    from app.models import Sku
    with db.reading() as s:
        row = s.execute(select(Stock.on_hand, Stock.reserved).join(Node, Node.id == Stock.node_id)
                        .join(Sku, Sku.id == Stock.sku_id)
                        .where(Node.code == node_code, Sku.code == sku)).first()
    return (row[0], row[1]) if row else (0, 0)


def fulfilments_of(db: Database, external_id: str) -> list[Fulfilment]:
    with db.reading() as s:
        order = s.scalar(select(Order).where(Order.external_id == external_id))
        return list(order.fulfilments) if order else []


WRITTEN_TABLES = ("orders", "order_lines", "fulfilments", "fulfilment_lines", "reservations", "events",
                  "nodes", "skus", "barcodes", "locations", "bin_stock", "stock", "node_days", "channels",
                  "customer_returns", "return_lines", "quarantine_stock", "scan_records")


def snapshot(db: Database) -> dict[str, Any]:
    """Row counts of every table a request may write, and the stock totals."""
    from app.models import Base
    tables = Base.metadata.tables
    with db.reading() as s:
        state: dict[str, Any] = {name: s.scalar(select(func.count()).select_from(tables[name]))
                                 for name in WRITTEN_TABLES}
        state["stock"] = s.execute(select(Stock.id, Stock.on_hand, Stock.reserved).order_by(Stock.id)).all()
        state["statuses"] = s.execute(select(Fulfilment.id, Fulfilment.status).order_by(Fulfilment.id)).all()
        state["booked"] = s.scalar(select(func.coalesce(func.sum(NodeDay.booked), 0)))
        state["last_seq"] = events.last_seq(s)
    return state


@contextlib.contextmanager
def refused(db: Database, caplog) -> Iterator[None]:
    """The request inside is refused: nothing written, one line in the log."""
    caplog.set_level(logging.INFO, logger="app")
    before = snapshot(db)
    caplog.clear()
    yield
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert "refused" in lines[0].getMessage()
    assert snapshot(db) == before


def error(response, status: int, code: str) -> dict[str, Any]:
    """The contract's error body, with that status and code; returns details."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]["details"]


# --- stand-ins for steps built elsewhere ----------------------------------------------

def set_status(db: Database, external_id: str, status: FulfilmentStatus) -> None:
    """Move every live, unshipped fulfilment of an order to `status`; a
    shipped one consumes its stock as the outbound scan will."""
    with db.transaction() as s:
        order = s.scalar(select(Order).where(Order.external_id == external_id))
        now = utcnow()
        for f in orders.live_fulfilments(order):
            if f.status not in orders.NOT_YET_SHIPPED:
                continue
            if status == FulfilmentStatus.shipped:
                reserve.consume(s, f)
                f.shipped_at = now
            f.status, f.updated_at = status, now
            events.record(s, f"fulfilment.{status.value}", fulfilment=f)
        orders.refresh(order)


def ship(db: Database, external_id: str) -> None:
    set_status(db, external_id, FulfilmentStatus.shipped)


# --- the invariants ---------------------------------------------------------------------

HOLDING = {FulfilmentStatus.reserved, FulfilmentStatus.picking, FulfilmentStatus.picked, FulfilmentStatus.packed}


def check_invariants(db: Database) -> None:
    """What must hold after any sequence of requests:
    - each stock row's `reserved` is the sum of its open reservations;
    - each stock row's `on_hand` is the sum of its node's bins;
    - open reservations belong to fulfilments that hold stock, at their node,
      and a reserved fulfilment holds exactly its lines;
    - every event seq appears once, from 1 to the counter, without gaps;
    - each order's `order.status_changed` events follow one another (each
      `previous` the status before) and end at its stored status."""
    with db.reading() as s:
        _check_reserved(s)
        _check_bins(s)
        _check_holds(s)
        _check_seqs(s)
        _check_status_feed(s)


def _check_status_feed(s: Session) -> None:
    said: dict[int, list[tuple[str | None, str]]] = {}
    for order_id, data in s.execute(select(Event.order_id, Event.data)
                                    .where(Event.type == "order.status_changed").order_by(Event.seq)):
        said.setdefault(order_id, []).append((data["previous"], data["status"]))
    for order_id, status in s.execute(select(Order.id, Order.status)):
        chain = said.get(order_id, [])
        assert chain and [p for p, _ in chain] == [None] + [st for _, st in chain[:-1]], (order_id, chain)
        assert chain[-1][1] == status.value, (order_id, chain, status)


def _check_reserved(s: Session) -> None:
    held = dict(s.execute(select(Reservation.stock_id, func.sum(Reservation.quantity))
                          .where(Reservation.state == ReservationState.open).group_by(Reservation.stock_id)).all())
    for stock_id, reserved in s.execute(select(Stock.id, Stock.reserved)):
        assert reserved == held.pop(stock_id, 0), f"stock {stock_id}: reserved {reserved} != open holds"
    assert not held, f"open reservations on unknown stock rows {held}"


def _check_bins(s: Session) -> None:
    bins = dict(((node, sku), units) for node, sku, units in s.execute(
        select(Location.node_id, BinStock.sku_id, func.sum(BinStock.on_hand))
        .join(Location, Location.id == BinStock.location_id).group_by(Location.node_id, BinStock.sku_id)))
    for node, sku, on_hand in s.execute(select(Stock.node_id, Stock.sku_id, Stock.on_hand)):
        assert on_hand == bins.pop((node, sku), 0), f"stock at node {node} sku {sku}: on_hand != bins"
    assert all(units == 0 for units in bins.values()), f"bins without a stock row: {bins}"


def _check_holds(s: Session) -> None:
    rows = s.execute(
        select(Fulfilment.id, Fulfilment.status, Fulfilment.node_id, FulfilmentLine.id, FulfilmentLine.quantity,
               Stock.node_id, Reservation.quantity)
        .join(FulfilmentLine, FulfilmentLine.fulfilment_id == Fulfilment.id)
        .outerjoin(Reservation, (Reservation.fulfilment_line_id == FulfilmentLine.id)
                   & (Reservation.state == ReservationState.open))
        .outerjoin(Stock, Stock.id == Reservation.stock_id)).all()
    per_line: dict[int, int] = Counter()
    for f_id, status, node_id, line_id, quantity, stock_node, held in rows:
        if held is None:
            per_line[line_id] += 0
            continue
        assert status in HOLDING, f"fulfilment {f_id} is {status.value} but holds stock"
        assert stock_node == node_id, f"fulfilment {f_id} holds stock at another node"
        per_line[line_id] += held
    for f_id, status, _node, line_id, quantity, _sn, _held in rows:
        if status == FulfilmentStatus.reserved:
            assert per_line[line_id] == quantity, f"fulfilment {f_id}: line {line_id} holds {per_line[line_id]}"


def _check_seqs(s: Session) -> None:
    seqs = s.scalars(select(Event.seq).order_by(Event.seq)).all()
    last = s.scalar(select(EventCounter.last_seq).where(EventCounter.id == 1))
    assert s.scalar(select(func.count()).select_from(EventCounter)) == 1
    assert seqs == list(range(1, last + 1)), "event seqs are not 1..last without gaps or repeats"


def check_not_oversold(db: Database) -> None:
    with db.reading() as s:
        over = s.execute(select(Stock.id, Stock.on_hand, Stock.reserved).where(Stock.reserved > Stock.on_hand)).all()
    assert not over, f"oversold: {over}"


# --- a client in another process (multiprocessing, spawn) ------------------------------

def submit_in_own_app(url: str, token: str, bodies: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Build an app of its own on `url` and post `bodies` through its test
    client, as one more server process would; returns (status, document)."""
    from app import create_app
    app = create_app({"database_url": url, "secret_key": "test"})
    try:
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        return [(r.status_code, r.get_json()) for r in
                (client.post("/api/v1/orders", json=body, headers=headers) for body in bodies)]
    finally:
        app.extensions["luyue.db"].dispose()


# --- a webhook receiver ------------------------------------------------------

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
