"""The public order API, /api/v1, exactly as docs/api.md fixes it (the platforms' contract, then what was added)."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask import Blueprint, Response, current_app, g, has_app_context, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app import access, masterdata, readback, webhooks
from app.fulfilment import cancel as cancelling
from app.fulfilment import clock, customer_returns, deliver, dispatch, hold, intake, sla, tracking
from app.fulfilment import events as outbox
from app.fulfilment.errors import Refusal
from app.fulfilment.intake import invalid
from app.models import Event, Fulfilment, FulfilmentLine, Node, Order, ParcelDelivery, ParcelStatus
from app.web import database

bp = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_FEED_PAGE = 1000
CARRIER_ENDPOINTS = {"api.carrier_events"}


def _look_up_token(token: str):
    with database().reading() as session:
        owner = access.token_owner(session, token)
        carrier = access.token_carrier(session, token) if owner is None else None
    return (owner, carrier) if owner is not None or carrier is not None else None


# Tokens are looked up once per TOKEN_TTL seconds per process: a revoked or
# new token takes effect within that time on every worker.
TOKEN_TTL = 10.0
_token_cache = access.TtlCache(TOKEN_TTL)


@bp.before_request
def authenticate() -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refusal("unauthorized")
    found = _token_cache.get(token.strip(), _look_up_token)
    if found is None:
        raise Refusal("unauthorized")
    owner, carrier = found
    g.channel, g.admin = owner if owner is not None else (None, False)
    g.carrier = carrier
    limit = current_app.config["LUYUE"].rate_limit_per_minute
    if limit and g.channel is not None:
        channel_id = g.channel.id
        wait = database().run(lambda s: access.count_request(s, channel_id, limit))
        if wait is not None:
            raise Refusal("rate_limited", seconds=wait, details={"retry_after_seconds": wait, "limit_per_minute": limit})
    # A carrier's token posts tracking updates and nothing else.
    if carrier is not None and request.endpoint not in CARRIER_ENDPOINTS:
        raise Refusal("forbidden", needed="a sales channel's token")
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
    except RecursionError:
        raise invalid([("$", "nested too deeply")]) from None
    if not isinstance(data, dict):
        raise invalid([("$", "expected a JSON object")])
    return data


def _require_admin() -> None:
    if not g.admin:
        raise Refusal("forbidden", needed="an admin token")


_stamp = clock.stamp


# --- documents -----------------------------------------------------------------

def order_document(session: Session, order_id: int) -> dict[str, Any]:
    order = session.scalars(
        select(Order).where(Order.id == order_id).options(
            selectinload(Order.fulfilments).selectinload(Fulfilment.lines).selectinload(FulfilmentLine.sku),
            selectinload(Order.fulfilments).selectinload(Fulfilment.node),
            selectinload(Order.fulfilments).selectinload(Fulfilment.redispatched_from),
            selectinload(Order.fulfilments).selectinload(Fulfilment.parcels),
        )).one()
    events = session.execute(
        select(Event.seq, Event.at, Event.type, Event.fulfilment_id).where(Event.order_id == order.id)
        .order_by(Event.seq)).all()
    fulfilments = [fulfilment_document(f) for f in order.fulfilments]
    _add_delivery(session, order, fulfilments)
    document = _order_fields(order, fulfilments, events)
    document["returns"] = [customer_returns.document(r) for r in customer_returns.of_order(session, order.id)]
    return document


def new_order_document(session: Session, order: Order, sku_codes: dict[int, str]) -> dict[str, Any]:
    """The document of an order taken in this transaction, built from what is
    in memory: its events get their seqs now (the last work before commit)
    and nothing is read back. A new order has no parcels, holds or history."""
    events = [(e["seq"], e["at"], e["type"], e["fulfilment_id"])
              for e in outbox.assign_seqs(session) if e["order_id"] == order.id]
    nodes = dispatch.node_codes(session)
    fulfilments = []
    for f in order.fulfilments:
        doc = fulfilment_document(f, nodes, sku_codes)
        doc["holds"] = []
        fulfilments.append(doc)
    return {**_order_fields(order, fulfilments, events), "returns": []}


def _order_fields(order: Order, fulfilments: list[dict[str, Any]], events) -> dict[str, Any]:
    refs = {f.id: f.ref for f in order.fulfilments}
    return {
        "external_id": order.external_id,
        "status": order.status.value,
        "created_at": _stamp(order.created_at),
        "updated_at": _stamp(order.updated_at),
        "placed_at": _stamp(order.placed_at),
        "promised_by": _stamp(order.promised_by),
        "delivery": order.delivery.value,
        "fulfilments": fulfilments,
        "events": [{"seq": seq, "at": _stamp(at), "type": type_, "fulfilment": refs.get(fid)}
                   for seq, at, type_, fid in events],
    }


def fulfilment_document(f: Fulfilment, nodes: dict[int, str] | None = None,
                        skus: dict[int, str] | None = None) -> dict[str, Any]:
    """`nodes`/`skus` (id -> code) spare loading those rows when known."""
    node = (nodes.get(f.node_id) if nodes is not None else f.node.code if f.node else None) if f.node_id else None
    doc: dict[str, Any] = {
        "id": f.ref,
        "node": node,
        "status": f.status.value,
        "delivery": f.delivery.value,
        "lines": [{"sku": skus[line.sku_id] if skus is not None else line.sku.code, "quantity": line.quantity}
                  for line in f.lines if line.quantity > 0],
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


def code_key() -> str | None:
    """The key same-city delivery codes are made with (None outside an app)."""
    if not has_app_context():
        return None
    return current_app.config["LUYUE"].delivery_code_secret or current_app.config["SECRET_KEY"]


def _add_delivery(session: Session, order: Order, docs: list[dict[str, Any]]) -> None:
    """Delivery fields: each parcel's status as last reported and its tracking
    history, a same-city parcel's delivery code, a fulfilment's active holds
    and fulfilment times (seconds from the order being placed)."""
    parcels = [p for f in order.fulfilments for p in f.parcels if p.status != ParcelStatus.open]
    ids = [p.id for p in parcels]
    deliveries = {d.parcel_id: d for d in session.scalars(
        select(ParcelDelivery).where(ParcelDelivery.parcel_id.in_(ids)))} if ids else {}
    reports = tracking.history(session, ids)
    holds = hold.holds_by_fulfilment(session, [f.id for f in order.fulfilments])
    key = code_key()
    for f, doc in zip(order.fulfilments, docs):
        shown = [p for p in f.parcels if p.status != ParcelStatus.open]
        for p, pdoc in zip(shown, doc["parcels"]):
            d = deliveries.get(p.id)
            pdoc["status"] = tracking.parcel_status(p, d)
            pdoc["tracking"] = [{"status": u.status.value, "at": _stamp(u.at), "description": u.description,
                                 "source": u.source} for u in reports.get(p.id, [])]
            if d is not None and d.delivered_at is not None:
                pdoc["delivered_at"] = _stamp(d.delivered_at)
                pdoc["proof"] = d.proof.value if d.proof else None
            if p.returned_at is not None:  # received back into stock at the dock
                pdoc["returned_at"] = _stamp(p.returned_at)
            code = tracking.delivery_code(key, p) if p.carrier == tracking.RIDER_CARRIER and key else None
            if code is not None and p.tracking_number:
                pdoc["delivery_code"] = code
        doc["holds"] = [{"id": h.id, "reason": h.reason, "by": h.placed_by, "since": _stamp(h.placed_at),
                         "until": _stamp(h.until)} for h in holds.get(f.id, [])]
        times = tracking.fulfilment_times(f)
        if times:
            doc["fulfilment_time"] = times


def _order_for_channel(session: Session, external_id: str) -> Order:
    # A NUL cannot be in any external_id (and PostgreSQL refuses to compare it).
    order = intake.find_order(session, g.channel, external_id) if "\x00" not in external_id else None
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
    channel = g.channel  # detached; intake reads only its id

    def work(session: Session) -> tuple[int, dict[str, Any] | None]:
        order, sku_codes = intake.take(session, channel, raw)
        return order.id, (new_order_document(session, order, sku_codes) if sku_codes is not None else None)

    order_id, document = database().run(work)
    if document is None:  # the same order again: answer what is stored now
        return jsonify(_document(order_id)), 200
    current_app.logger.info("order %s from %s taken", document["external_id"], g.channel.name)
    return jsonify(document), 201


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


@bp.post("/orders/<external_id>/returns")
def authorise_return(external_id: str):
    """A customer's return of delivered units (app.fulfilment.customer_returns):
    201 and the order document for a new return, 200 for the same body
    again; 409 conflict (return_id reused, nothing delivered), 422
    invalid_request with field paths."""
    raw = _body()
    by = g.channel.name

    def work(session: Session) -> tuple[int, bool]:
        order = _order_for_channel(session, external_id)
        _ret, created = customer_returns.authorise_request(session, order, raw, by)
        return order.id, created

    order_id, created = database().run(work)
    return jsonify(_document(order_id)), 201 if created else 200


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
    with database().reading() as session:
        # The same items the channel's webhook receives.
        events = webhooks.feed_items(session, g.channel.id, after, limit)
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
    masterdata.check_code(code, "code")
    body = masterdata.validate(masterdata.StockBody, _json_object())
    by = f"api:{g.channel.name}" if g.channel is not None else "api"

    def work(session: Session):
        node = session.scalar(select(Node).where(Node.code == code))
        if node is None:
            raise Refusal("not_found", what="node", details={"node": code})
        # What is on the shelf: units picked and not yet shipped stay on top.
        return masterdata.count_shelf(session, node, body, by=by[:64], reason="api")

    return jsonify(database().run(work))


# --- carrier tracking (a carrier's token) ------------------------------------------

@bp.post("/carrier-events")
def carrier_events():
    """A carrier's tracking updates, `{"events": [{tracking_number, status, at,
    description}]}`. A malformed body is refused whole (422 invalid_request,
    nothing written); otherwise every item gets a result, in order: applied,
    recorded (history only: older than what is known), duplicate, or refused
    with an error (unknown_tracking_number, parcel_not_shipped) while the
    others still count. Answers 200 with the results."""
    if g.carrier is None:
        raise Refusal("forbidden", needed="a carrier's token")
    batch = tracking.parse_batch(_body())
    carrier = g.carrier

    def work(session: Session) -> list[dict[str, Any]]:
        return tracking.take_all(session, carrier, batch.events)

    results = database().run(work)
    summary: dict[str, int] = {}
    for r in results:
        summary[r["result"]] = summary.get(r["result"], 0) + 1
    return jsonify({"results": results, "summary": summary})


# --- webhook (a channel's token) ------------------------------------------------------

@bp.put("/webhook")
def put_webhook():
    """Register or replace the channel's webhook: `{"url", "secret"?, "after"?}`.
    Answers the webhook with its secret (201 new, 200 replaced)."""
    body = _json_object()
    channel_id = g.channel.id
    allow_private = current_app.config["LUYUE"].webhook_allow_private

    def work(session: Session):
        channel = session.get(type(g.channel), channel_id)
        w, created = webhooks.register(session, channel, body.get("url"), body.get("secret"), body.get("after"),
                                       allow_private=allow_private)
        return webhooks.document(session, w, with_secret=True), created

    doc, created = database().run(work)
    return jsonify(doc), 201 if created else 200


def _webhook(session: Session):
    w = webhooks.webhook_of(session, g.channel.id)
    if w is None:
        raise Refusal("not_found", what="webhook")
    return w


@bp.get("/webhook")
def get_webhook():
    with database().reading() as session:
        return jsonify(webhooks.document(session, _webhook(session)))


@bp.delete("/webhook")
def delete_webhook():
    def work(session: Session) -> None:
        _webhook(session)
        webhooks.unregister(session, session.get(type(g.channel), g.channel.id))
    database().run(work)
    return jsonify({"deleted": True})


@bp.get("/webhook/deliveries")
def webhook_deliveries():
    """The delivery log, newest attempt first; `before=<id>` pages back."""
    limit = _int_arg("limit", 100, 1, MAX_FEED_PAGE)
    before = _int_arg("before", 0, 0, 2**62) or None
    with database().reading() as session:
        attempts = webhooks.delivery_log(session, _webhook(session), limit, before)
    return jsonify({"deliveries": attempts, "next_before": attempts[-1]["id"] if attempts else None})


# --- SLA report (admin token) ---------------------------------------------------------

def _sla_rows():
    _require_admin()
    today = clock.business_day(dt.datetime.now(dt.timezone.utc))
    errors = []
    days = {}
    for name, default in (("from", today - dt.timedelta(days=6)), ("to", today)):
        raw = request.args.get(name)
        try:
            days[name] = dt.date.fromisoformat(raw) if raw else default
        except ValueError:
            errors.append((name, "expected a date YYYY-MM-DD"))
    if not errors and not days["from"] <= days["to"] <= days["from"] + dt.timedelta(days=366):
        errors.append(("to", "expected a date from `from` to a year after it"))
    if errors:
        raise invalid(errors)
    nodes = [n for n in request.args.getlist("node") if n] or None
    by_day = request.args.get("by_day", "true").lower() not in ("0", "false", "no")
    with database().reading() as session:
        return sla.report(session, days["from"], days["to"], nodes, by_day=by_day), days


@bp.get("/reports/sla")
def sla_report():
    """Per node and business day: shipped on time / late against promised_by,
    median and p90 seconds in each stage. `from`, `to` (dates, default the
    last 7 days), `node` (repeatable), `by_day=false` for one row per node."""
    rows, days = _sla_rows()
    return jsonify({"from": days["from"].isoformat(), "to": days["to"].isoformat(),
                    "stages": list(sla.STAGE_NAMES), "rows": [sla.as_dict(r) for r in rows]})


@bp.get("/reports/sla.csv")
def sla_csv():
    rows, days = _sla_rows()
    name = f"sla-{days['from'].isoformat()}-{days['to'].isoformat()}.csv"
    return Response(sla.to_csv(rows), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# --- read-back for an ERP (admin token) -------------------------------------------------

def _cursor_arg() -> str | None:
    raw = request.args.get("after") or None
    if raw is not None and (len(raw) > 200 or "\x00" in raw):
        raise invalid([("after", "expected the next_after of the previous page")])
    return raw


def _could_be_code(code: str) -> bool:
    """A code with characters no code has names nothing: 404, not a query."""
    return re.fullmatch(masterdata.CODE, code) is not None


def _node_or_404(session: Session, code: str) -> Node:
    node = readback.find_node(session, code) if _could_be_code(code) else None
    if node is None:
        raise Refusal("not_found", what="node", details={"node": code})
    return node


@bp.get("/nodes")
def list_nodes():
    """Every node, by code: `limit` (1-1000, default 100), `after` (a page's next_after)."""
    _require_admin()
    limit, after = _int_arg("limit", 100, 1, MAX_FEED_PAGE), _cursor_arg()
    with database().reading() as session:
        items, next_after = readback.nodes(session, after, limit)
    return jsonify({"nodes": items, "next_after": next_after})


@bp.get("/nodes/<code>")
def get_node(code: str):
    _require_admin()
    with database().reading() as session:
        return jsonify(readback.node_document(_node_or_404(session, code)))


@bp.get("/skus")
def list_skus():
    """Every SKU by code; `updated_after` (RFC 3339) keeps those changed since."""
    _require_admin()
    limit, after = _int_arg("limit", 100, 1, MAX_FEED_PAGE), _cursor_arg()
    updated_after = None
    raw = request.args.get("updated_after")
    if raw:
        try:
            updated_after = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            updated_after = None
        if updated_after is None or updated_after.tzinfo is None:
            raise invalid([("updated_after", "expected a time with its offset, e.g. 2026-11-25T14:05:00+08:00")])
    with database().reading() as session:
        items, next_after = readback.skus(session, updated_after, after, limit)
    return jsonify({"skus": items, "next_after": next_after})


@bp.get("/skus/<sku>")
def get_sku(sku: str):
    _require_admin()
    with database().reading() as session:
        item = readback.find_sku(session, sku) if _could_be_code(sku) else None
        if item is None:
            raise Refusal("not_found", what="SKU", details={"sku": sku})
        return jsonify(readback.sku_document(item))


@bp.get("/nodes/<code>/stock")
def get_stock(code: str):
    """A node's stock per SKU (on_hand, in_totes, reserved, available,
    quarantined, damaged), or `by=bin`: per bin and SKU (on_hand, in_totes)."""
    _require_admin()
    by = request.args.get("by", "sku")
    if by not in ("sku", "bin"):
        raise invalid([("by", "expected sku or bin")])
    limit, after = _int_arg("limit", 100, 1, MAX_FEED_PAGE), _cursor_arg()
    with database().reading() as session:
        node = _node_or_404(session, code)
        page = readback.stock_by_bin if by == "bin" else readback.stock_by_sku
        items, next_after = page(session, node, after, limit)
    return jsonify({"node": node.code, "by": by, "items": items, "next_after": next_after})
