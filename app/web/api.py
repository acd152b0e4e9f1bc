"""The public order API, /api/v1, exactly as shared/api.md fixes it."""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, abort, current_app, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased, selectinload

from app import access, masterdata
from app.fulfilment import cancel as cancelling
from app.fulfilment import clock, deliver, intake
from app.fulfilment.errors import Refusal
from app.fulfilment.intake import invalid
from app.models import Event, Fulfilment, FulfilmentLine, Node, Order, ParcelStatus
from app.web import database

bp = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_FEED_PAGE = 1000


@bp.before_request
def authenticate() -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refusal("unauthorized")
    with database().reading() as session:
        owner = access.token_owner(session, token.strip())
    if owner is None:
        raise Refusal("unauthorized")
    g.channel, g.admin = owner
    if request.method in ("POST", "PUT", "PATCH") and request.content_length not in (None, 0):
        if request.mimetype != "application/json":
            raise Refusal("unsupported_media_type")


def _body() -> bytes:
    # Reading past MAX_CONTENT_LENGTH raises 413 even without Content-Length.
    return request.get_data(cache=True)


def _json_object() -> dict[str, Any]:
    raw = _body()
    import json
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise invalid([("$", f"not valid JSON ({e})")]) from None
    if not isinstance(data, dict):
        raise invalid([("$", "expected a JSON object")])
    return data


def _require_admin() -> None:
    if not g.admin:
        raise Refusal("forbidden", needed="an admin token")


def _stamp(value: dt.datetime | None) -> str | None:
    return value.astimezone(clock.zone()).isoformat(timespec="milliseconds") if value else None


# --- documents -----------------------------------------------------------------

def order_document(session: Session, order_id: int) -> dict[str, Any]:
    order = session.scalars(
        select(Order).where(Order.id == order_id).options(
            selectinload(Order.fulfilments).selectinload(Fulfilment.lines).selectinload(FulfilmentLine.sku),
            selectinload(Order.fulfilments).selectinload(Fulfilment.node),
            selectinload(Order.fulfilments).selectinload(Fulfilment.redispatched_from),
            selectinload(Order.fulfilments).selectinload(Fulfilment.parcels),
        )).one()
    refs = {f.id: f.ref for f in order.fulfilments}
    events = session.execute(
        select(Event.seq, Event.at, Event.type, Event.fulfilment_id).where(Event.order_id == order.id)
        .order_by(Event.seq)).all()
    return {
        "external_id": order.external_id,
        "status": order.status.value,
        "created_at": _stamp(order.created_at),
        "updated_at": _stamp(order.updated_at),
        "placed_at": _stamp(order.placed_at),
        "promised_by": _stamp(order.promised_by),
        "delivery": order.delivery.value,
        "fulfilments": [fulfilment_document(f) for f in order.fulfilments],
        "events": [{"seq": seq, "at": _stamp(at), "type": type_, "fulfilment": refs.get(fid)}
                   for seq, at, type_, fid in events],
    }


def fulfilment_document(f: Fulfilment) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": f.ref,
        "node": f.node.code if f.node else None,
        "status": f.status.value,
        "delivery": f.delivery.value,
        "lines": [{"sku": line.sku.code, "quantity": line.quantity} for line in f.lines if line.quantity > 0],
        "parcels": [{"tracking_number": p.tracking_number, "carrier": p.carrier, "status": p.status.value,
                     "sscc": p.sscc, "weight_g": p.weight_g, "shipped_at": _stamp(p.shipped_at)}
                    for p in f.parcels if p.status != ParcelStatus.open],
        "redispatched_from": f.redispatched_from.ref if f.redispatched_from else None,
        "dispatch_reason": f.dispatch_reason,
    }
    if f.release_at:
        doc["release_at"] = _stamp(f.release_at)
    if f.intercepted:
        doc["intercepted"] = True
    for stamp in ("dispatched_at", "shipped_at", "delivered_at", "completed_at", "cancelled_at"):
        if getattr(f, stamp):
            doc[stamp] = _stamp(getattr(f, stamp))
    return doc


def _order_for_channel(session: Session, external_id: str) -> Order:
    order = intake.find_order(session, g.channel, external_id)
    if order is None:
        raise Refusal("not_found", what="order", details={"external_id": external_id})
    return order


def _document(order_id: int) -> dict[str, Any]:
    with database().reading() as session:
        return order_document(session, order_id)


# --- orders ----------------------------------------------------------------------

@bp.post("/orders")
def submit_order():
    raw = _body()
    channel_id = g.channel.id

    def work(session: Session) -> tuple[int, bool]:
        channel = session.get(type(g.channel), channel_id)
        order, created = intake.submit(session, channel, raw)
        return order.id, created

    order_id, created = database().run(work)
    if created:
        current_app.logger.info("order %s from %s taken", order_id, g.channel.name)
    return jsonify(_document(order_id)), 201 if created else 200


@bp.get("/orders/<external_id>")
def get_order(external_id: str):
    with database().reading() as session:
        return jsonify(order_document(session, _order_for_channel(session, external_id).id))


@bp.post("/orders/<external_id>/cancel")
def cancel_order(external_id: str):
    def work(session: Session) -> int:
        order = _order_for_channel(session, external_id)
        cancelling.cancel(session, order)
        return order.id
    return jsonify(_document(database().run(work)))


@bp.post("/orders/<external_id>/receipt")
def confirm_receipt(external_id: str):
    def work(session: Session) -> int:
        order = _order_for_channel(session, external_id)
        deliver.confirm_receipt(session, order)
        return order.id
    return jsonify(_document(database().run(work)))


# --- event feed ------------------------------------------------------------------

def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid([(name, f"expected an integer from {low} to {high}")]) from None
    if not low <= value <= high:
        raise invalid([(name, f"expected an integer from {low} to {high}")])
    return value


@bp.get("/events")
def event_feed():
    after = _int_arg("after", 0, 0, 2**62)
    limit = _int_arg("limit", 100, 1, MAX_FEED_PAGE)
    feed = aliased(Fulfilment)
    with database().reading() as session:
        rows = session.execute(
            select(Event.seq, Event.at, Event.type, Order.external_id, feed.ref, Event.data)
            .outerjoin(Order, Order.id == Event.order_id).outerjoin(feed, feed.id == Event.fulfilment_id)
            .where(Event.channel_id == g.channel.id, Event.seq > after).order_by(Event.seq).limit(limit)
        ).all()
    events = [{"seq": seq, "at": _stamp(at), "type": type_, "order": ext, "fulfilment": ref, "data": data}
              for seq, at, type_, ext, ref, data in rows]
    return jsonify({"events": events, "next_after": events[-1]["seq"] if events else after})


# --- master data (admin token) ---------------------------------------------------

@bp.put("/nodes/<code>")
def put_node(code: str):
    _require_admin()
    body = masterdata.validate(masterdata.NodeBody, _json_object())
    node_id, created = database().run(lambda s: (lambda n, c: (n.id, c))(*masterdata.put_node(s, code, body)))
    with database().reading() as session:
        return jsonify(node_document(session.get(Node, node_id))), 201 if created else 200


def node_document(node: Node) -> dict[str, Any]:
    return {"code": node.code, "name": node.name, "kind": node.kind.value, "province": node.province,
            "city": node.city, "lat": node.lat, "lon": node.lon, "daily_capacity": node.daily_capacity,
            "same_city_radius_km": node.same_city_radius_km, "active": node.active}


@bp.put("/skus/<sku>")
def put_sku(sku: str):
    _require_admin()
    body = masterdata.validate(masterdata.SkuBody, _json_object())

    def work(session: Session):
        item, created = masterdata.put_sku(session, sku, body)
        return {"sku": item.code, "name": item.name, "barcodes": [b.code for b in item.barcodes],
                "weight_g": item.weight_g, "presale": item.presale}, created

    doc, created = database().run(work)
    return jsonify(doc), 201 if created else 200


@bp.put("/nodes/<code>/stock")
def put_stock(code: str):
    _require_admin()
    body = masterdata.validate(masterdata.StockBody, _json_object())

    def work(session: Session):
        node = session.scalar(select(Node).where(Node.code == code))
        if node is None:
            raise Refusal("not_found", what="node", details={"node": code})
        return masterdata.count_stock(session, node, body)

    return jsonify(database().run(work))
