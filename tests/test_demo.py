"""`luyue demo`: the demo data set, loaded through the real domain functions,
and the example CSV files for `luyue import`."""
from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from biip.gtin import Gtin
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from app import access, demo
from app.access import check_login
from app.barcodes import gtin_problem
from app.fulfilment.geo import haversine_km
from app.models import (
    Barcode,
    BinStock,
    Channel,
    Fulfilment,
    FulfilmentStatus,
    Location,
    Node,
    Order,
    Reservation,
    ReservationState,
    Role,
    Sku,
    Stock,
    User,
)
from app.web.api import order_document

EXAMPLES = Path(__file__).parent.parent / "examples"
ORDER_STATUSES = {"received", "in_fulfilment", "partially_shipped", "shipped", "delivered", "completed", "cancelled"}
FULFILMENT_STATUSES = {s.value for s in FulfilmentStatus}
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def quick_pin_hashes(monkeypatch):
    """The loader is the real one; only the PIN hash is made cheap (scrypt
    costs 0.1 s a user), and check_login still verifies it."""
    monkeypatch.setattr(access, "generate_password_hash",
                        functools.partial(generate_password_hash, method="pbkdf2:sha256:1000"))


def assert_invariants(session) -> None:
    """reserved = the sum of open reservations; on_hand = the sum of the bins."""
    open_held = dict(session.execute(
        select(Reservation.stock_id, func.sum(Reservation.quantity))
        .where(Reservation.state == ReservationState.open).group_by(Reservation.stock_id)).all())
    in_bins = {(node_id, sku_id): units for node_id, sku_id, units in session.execute(
        select(Location.node_id, BinStock.sku_id, func.sum(BinStock.on_hand))
        .join(Location, Location.id == BinStock.location_id).group_by(Location.node_id, BinStock.sku_id))}
    for stock in session.scalars(select(Stock)):
        assert stock.reserved == open_held.get(stock.id, 0), stock.id
        assert stock.on_hand == in_bins.get((stock.node_id, stock.sku_id), 0), stock.id
        assert 0 <= stock.reserved <= stock.on_hand


def assert_valid_document(doc: dict) -> None:
    """The order document as shared/api.md fixes it."""
    json.dumps(doc)
    assert isinstance(doc["external_id"], str) and doc["status"] in ORDER_STATUSES
    for stamp in ("created_at", "updated_at"):
        assert dt.datetime.fromisoformat(doc[stamp]).utcoffset() is not None
    assert doc["fulfilments"]
    for f in doc["fulfilments"]:
        assert isinstance(f["id"], str) and f["status"] in FULFILMENT_STATUSES
        assert f["delivery"] in ("express", "same_city")
        assert (f["node"] is None) == (f["status"] in ("awaiting_stock", "awaiting_release"))
        assert f["lines"] and all(isinstance(line["sku"], str) and isinstance(line["quantity"], int)
                                  and line["quantity"] > 0 for line in f["lines"])
        assert isinstance(f["parcels"], list)
    seqs = [e["seq"] for e in doc["events"]]
    assert seqs == sorted(set(seqs)) and doc["events"][0]["type"] == "order.received"


def counts(db) -> dict[str, int]:
    with db.reading() as s:
        return {model.__name__: s.scalar(select(func.count()).select_from(model))
                for model in (Node, Sku, Barcode, Location, BinStock, Stock, User, Order, Fulfilment, Reservation)}


def test_demo_loads_shanghai_and_hangzhou_with_valid_barcodes_users_and_orders(db):
    loaded = demo.load(db)
    assert loaded.created and loaded.orders_submitted == demo.DEMO_ORDERS
    assert set(loaded.tokens) == {demo.CHANNEL, demo.ADMIN_CHANNEL, demo.CARRIER_TOKEN}

    with db.reading() as s:
        nodes = s.scalars(select(Node)).all()
        assert {(n.city, n.kind.value) for n in nodes} >= {
            ("上海市", "warehouse"), ("上海市", "store"), ("杭州市", "warehouse"), ("杭州市", "store")}
        assert all(5 <= n.same_city_radius_km <= 8 and n.daily_capacity < 500 for n in nodes if n.kind.value == "store")

        skus = s.scalars(select(Sku)).all()
        assert len(skus) >= 200 and sum(sku.presale for sku in skus) >= 2
        assert all(CJK.search(sku.name) and sku.weight_g > 0 and sku.barcodes for sku in skus)
        for code in s.scalars(select(Barcode.code)):
            assert len(code) == 13 and code[:3] in ("690", "691", "692") and gtin_problem(code) is None
            Gtin.parse(code)

        locations = s.scalars(select(Location).join(Node).where(Node.code == demo.MAIN_NODE)).all()
        assert all(re.fullmatch(r"[A-Z]-\d{2}-\d{2}-\d", loc.code) for loc in locations)
        assert len({loc.aisle for loc in locations}) >= 6

        assert {u.role for u in s.scalars(select(User))} == set(Role)
        for role in Role:
            spec = next(u for u in demo.USERS if u.role == role.value)
            user = check_login(s, spec.code, spec.pin)
            assert user is not None and user.role == role and user.node.code == spec.node
        assert check_login(s, "P001", "0000") is None
        assert {u.language for u in demo.USERS if u.role == "picker"} == {"zh", "en"}

        orders = s.scalars(select(Order).join(Channel).where(Channel.name == demo.CHANNEL)).all()
        assert len(orders) == demo.DEMO_ORDERS
        statuses = Counter(o.status.value for o in orders)
        assert statuses["in_fulfilment"] >= 0.8 * len(orders)
        for order in orders:
            assert_valid_document(order_document(s, order.id))
            assert CJK.search(order.customer_name) and order.ship_to["city"] in ("上海市", "杭州市")
        fulfilments = s.scalars(select(Fulfilment)).all()
        kinds = Counter(f.status for f in fulfilments)
        assert kinds[FulfilmentStatus.awaiting_stock] >= 1 and kinds[FulfilmentStatus.awaiting_release] >= 1
        nodes_per_order = Counter(f.order_id for f in fulfilments if f.status == FulfilmentStatus.reserved)
        assert sum(1 for n in nodes_per_order.values() if n > 1) >= 3  # some split over two nodes
        assert sum(1 for n in nodes_per_order.values() if n == 1) >= 0.7 * len(orders)  # most ship whole
        same_city = [f for f in fulfilments if f.delivery.value == "same_city" and f.node is not None]
        assert same_city
        for f in same_city:
            km = haversine_km(f.order.ship_lat, f.order.ship_lon, f.node.lat, f.node.lon)
            assert f.node.kind.value == "store" and km <= f.node.same_city_radius_km
        assert_invariants(s)


def test_loading_again_adds_nothing_and_the_stream_keeps_orders_coming(db):
    first = demo.load(db, orders=12)
    before = counts(db)
    again = demo.load(db, orders=12)
    assert not again.created and again.orders_submitted == 0 and again.tokens == {}
    assert counts(db) == before

    stream = demo.OrderStream(db_app(db), interval=0.01, limit=1)
    external_id = stream.tick(dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3))
    assert external_id is not None and stream.tick() is None  # bounded
    with db.reading() as s:
        assert counts(db)["Order"] == before["Order"] + 1
        order = s.scalar(select(Order).where(Order.external_id == external_id))
        assert_valid_document(order_document(s, order.id))
        # Three days on, every presale has been released.
        assert not s.scalar(select(func.count(Fulfilment.id))
                            .where(Fulfilment.status == FulfilmentStatus.awaiting_release))
        assert_invariants(s)
    assert first.created


def db_app(db):
    """OrderStream takes the app; it only needs its database here."""
    class App:
        extensions = {"luyue.db": db}

        def app_context(self):  # pragma: no cover - the thread is not started in tests
            raise AssertionError
    return App()


def test_the_example_csv_files_import(runner, db):
    for kind, rows in (("nodes", 3), ("skus", 6), ("stock", 10)):
        result = runner.invoke(args=["import", kind, str(EXAMPLES / f"{kind}.csv")])
        assert result.exit_code == 0, result.output
        assert f"{rows} rows imported" in result.output
    with db.reading() as s:
        assert s.scalar(select(func.count(Node.id))) == 3
        assert s.scalar(select(Stock.on_hand).join(Sku).join(Node)
                        .where(Sku.code == "SKU-0902", Node.code == "SZ-GY-01")) == 120
        assert_invariants(s)


def test_the_examples_do_not_clash_with_the_demo_data():
    w = demo.world()
    demo_barcodes = {b for s in w.skus for b in s.barcodes}
    demo_codes = {s.code for s in w.skus} | {n.code for n in demo.NODES}
    for kind, key in (("nodes", "code"), ("skus", "sku")):
        lines = (EXAMPLES / f"{kind}.csv").read_text(encoding="utf-8").splitlines()
        header = lines[0].split(",")
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            assert row[key] not in demo_codes
            assert not set(row.get("barcodes", "").split("|")) & demo_barcodes


def test_the_demo_command_resets_loads_and_prints_the_logins(runner, db):
    result = runner.invoke(args=["demo", "--no-serve", "--reset"])
    if db.dialect != "sqlite":
        assert result.exit_code == 2 and "left alone" in result.output
        assert counts(db)["Node"] == 0
        return
    assert result.exit_code == 0, result.output
    out = result.output
    assert "http://127.0.0.1:5000/" in out and "/api/v1/orders/TM-" in out and "/api/v1/events" in out
    for user in demo.USERS:
        assert re.search(rf"{user.role}\s+{user.code}\s+{user.pin}", out)
    tokens = re.findall(r"ly_[A-Za-z0-9_\-]+", out)
    assert len(set(tokens)) == 2
    assert counts(db)["Order"] == demo.DEMO_ORDERS

    again = runner.invoke(args=["demo", "--no-serve"])
    assert again.exit_code == 0 and "already loaded" in again.output
    assert counts(db)["Order"] == demo.DEMO_ORDERS
