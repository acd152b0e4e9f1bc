"""The OpenAPI 3.1 document of /api/v1, served at GET /api/v1/openapi.json
(no token needed). Its schemas are generated from the pydantic models the API
validates requests with and the models of its answers (app.web.api_documents);
docs/api.md says the rest in words."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from flask import Blueprint, jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app import MAX_BODY_BYTES
from app.fulfilment.customer_returns import ReturnRequest
from app.fulfilment.intake import OrderRequest
from app.fulfilment.tracking import CarrierBatch
from app.masterdata import CODE, NodeBody, SkuBody, StockBody
from app.web import api_documents as docs

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

PATH = "/api/v1/openapi.json"
REF = "#/components/schemas/{model}"

# Who may call an operation, and what every answer to it may be besides its own.
CHANNEL, ADMIN, CARRIER = "channel", "admin", "carrier"
_WHO = {CHANNEL: "A sales channel's token (an admin token is one too).",
        ADMIN: "An admin token; any other answers 403 forbidden.",
        CARRIER: "A carrier's token; any other answers 403 forbidden."}
_ERRORS = {
    401: "unauthorized: no token or an unknown one",
    403: "forbidden: this token may not call this operation",
    429: "rate_limited: too many requests this minute (Retry-After)",
    503: "unavailable: the database cannot be reached; nothing was written (Retry-After)",
}
_BODY_ERRORS = {
    413: f"too_large: the body is over {MAX_BODY_BYTES} bytes",
    415: "unsupported_media_type: the body is not application/json",
    422: "invalid_request: details.fields names each bad field by JSON path",
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    who: str
    answers: dict[int, type[BaseModel] | str]  # status -> document (or a media type)
    body: type[BaseModel] | None = None
    query: tuple[dict[str, Any], ...] = ()
    refusals: dict[int, str] = field(default_factory=dict)
    example: dict[str, Any] | None = None  # a body, as docs/api.md shows it


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


_LIMIT = _query("limit", "At most this many (default 100)", type="integer", minimum=1, maximum=1000)
_AFTER = _query("after", "The previous page's next_after", type="string", maxLength=200)
_NOT_FOUND = {404: "not_found"}
ORDER_EXAMPLE = {
    "external_id": "TM-20261124-000123", "placed_at": "2026-11-24T10:02:00+08:00",
    "customer": {"name": "王小明", "phone": "13800000000"},
    "ship_to": {"name": "王小明", "phone": "13800000000", "province": "上海市", "city": "上海市",
                "district": "浦东新区", "line1": "世纪大道100号", "postal_code": "200120",
                "lat": 31.2335, "lon": 121.5055},
    "delivery": "express", "promised_by": "2026-11-25T18:00:00+08:00",
    "lines": [{"sku": "SKU-0001", "quantity": 2}],
}
_ORDER_REFUSALS = {404: "not_found: no such order of this channel", 409: "conflict"}

OPERATIONS: tuple[Operation, ...] = (
    Operation("post", "/orders", "Submit an order (idempotent on external_id)", CHANNEL,
              {201: docs.OrderDocument, 200: docs.OrderDocument}, OrderRequest,
              refusals={409: "conflict: the same external_id with a different body",
                        422: "invalid_request, unknown_sku or not_serviceable"}, example=ORDER_EXAMPLE),
    Operation("get", "/orders/{external_id}", "The order document", CHANNEL, {200: docs.OrderDocument},
              refusals=_NOT_FOUND),
    Operation("post", "/orders/{external_id}/cancel", "Cancel what has not shipped; packed parcels are "
              "intercepted", CHANNEL, {200: docs.OrderDocument}, refusals=_ORDER_REFUSALS),
    Operation("post", "/orders/{external_id}/receipt", "The customer confirmed receipt", CHANNEL,
              {200: docs.OrderDocument}, refusals=_ORDER_REFUSALS),
    Operation("post", "/orders/{external_id}/returns", "Authorise a customer's return (idempotent on "
              "return_id)", CHANNEL, {201: docs.OrderDocument, 200: docs.OrderDocument}, ReturnRequest,
              refusals=_ORDER_REFUSALS, example={"return_id": "RT-20261205-0007", "reason": "不想要了",
                                                 "lines": [{"sku": "SKU-0001", "quantity": 1}]}),
    Operation("get", "/events", "The channel's event feed, in seq order", CHANNEL, {200: docs.EventFeed},
              query=(_query("after", "Events strictly after this seq (default 0)", type="integer", minimum=0),
                     _LIMIT), refusals={422: "invalid_request"}),
    Operation("put", "/nodes/{code}", "Create or replace a node", ADMIN,
              {201: docs.NodeDocument, 200: docs.NodeDocument}, NodeBody,
              example={"name": "浦东仓", "kind": "warehouse", "province": "上海市", "city": "上海市", "lat": 31.22,
                       "lon": 121.54, "daily_capacity": 5000, "same_city_radius_km": 0, "active": True}),
    Operation("put", "/skus/{sku}", "Create or replace a SKU and its barcodes", ADMIN,
              {201: docs.SkuDocument, 200: docs.SkuDocument}, SkuBody,
              refusals={409: "barcode_taken: a barcode belongs to another SKU"},
              example={"name": "保温杯", "barcodes": ["6901234567892"], "weight_g": 350, "presale": False}),
    Operation("put", "/nodes/{code}/stock", "Counts of what is on the bins' shelves (docs/stock.md)", ADMIN,
              {200: docs.StockCountResult}, StockBody, refusals=_NOT_FOUND,
              example={"items": [{"location": "A-01-02-1", "sku": "SKU-0001", "on_hand": 10}]}),
    Operation("get", "/nodes", "Read back every node, by code", ADMIN, {200: docs.NodePage},
              query=(_LIMIT, _AFTER), refusals={422: "invalid_request"}),
    Operation("get", "/nodes/{code}", "Read back a node", ADMIN, {200: docs.NodeDocument}, refusals=_NOT_FOUND),
    Operation("get", "/skus", "Read back every SKU, by code", ADMIN, {200: docs.SkuPage},
              query=(_query("updated_after", "Only SKUs changed after this time (RFC 3339 with an offset)",
                            type="string", format="date-time"), _LIMIT, _AFTER),
              refusals={422: "invalid_request"}),
    Operation("get", "/skus/{sku}", "Read back a SKU", ADMIN, {200: docs.SkuDocument}, refusals=_NOT_FOUND),
    Operation("get", "/nodes/{code}/stock", "Read back a node's stock per SKU, or per bin", ADMIN,
              {200: docs.NodeStock},
              query=(_query("by", "sku (default) or bin", type="string", enum=["sku", "bin"]), _LIMIT, _AFTER),
              refusals={404: "not_found", 422: "invalid_request"}),
    Operation("post", "/carrier-events", "A carrier's tracking updates, a result per item", CARRIER,
              {200: docs.CarrierResults}, CarrierBatch,
              example={"events": [{"tracking_number": "LY0000000001", "status": "in_transit",
                                   "at": "2026-11-25T09:00:00+08:00", "description": "已到达上海转运中心"}]}),
    Operation("put", "/webhook", "Register or replace the channel's webhook", CHANNEL,
              {201: docs.WebhookDocument, 200: docs.WebhookDocument}, docs.WebhookBody,
              example={"url": "https://erp.example.com/luyue/events", "after": 0}),
    Operation("get", "/webhook", "The channel's webhook", CHANNEL, {200: docs.WebhookDocument},
              refusals=_NOT_FOUND),
    Operation("delete", "/webhook", "Remove the channel's webhook", CHANNEL, {200: docs.WebhookDeleted},
              refusals=_NOT_FOUND),
    Operation("get", "/webhook/deliveries", "The webhook's delivery log, newest first", CHANNEL,
              {200: docs.DeliveryLog},
              query=(_LIMIT, _query("before", "The previous page's next_before", type="integer", minimum=0)),
              refusals={404: "not_found", 422: "invalid_request"}),
    Operation("get", "/reports/sla", "SLA per node and business day", ADMIN, {200: docs.SlaReport},
              query=(_query("from", "First day (default 6 days ago)", type="string", format="date"),
                     _query("to", "Last day (default today), at most a year after from", type="string",
                            format="date"),
                     {"name": "node", "in": "query", "required": False, "description": "Repeatable",
                      "schema": {"type": "array", "items": {"type": "string"}}, "style": "form",
                      "explode": True},
                     _query("by_day", "false: one row per node", type="boolean")),
              refusals={422: "invalid_request"}),
    Operation("get", "/reports/sla.csv", "The SLA report as CSV", ADMIN, {200: "text/csv"},
              query=(_query("from", "First day", type="string", format="date"),
                     _query("to", "Last day", type="string", format="date")),
              refusals={422: "invalid_request"}),
)

_PATH_PARAMS = {
    "external_id": {"type": "string", "minLength": 1, "examples": ["TM-20261124-000123"]},
    "code": {"type": "string", "pattern": CODE, "examples": ["SH-PD"]},
    "sku": {"type": "string", "pattern": CODE, "examples": ["SKU-0001"]},
}


@cache
def document() -> dict[str, Any]:
    models = {docs.ErrorBody} | {o.body for o in OPERATIONS if o.body} | {
        m for o in OPERATIONS for m in o.answers.values() if not isinstance(m, str)}
    modes = [(m, "validation" if any(o.body is m for o in OPERATIONS) else "serialization") for m in models]
    names, defs = models_json_schema(sorted(modes, key=lambda m: m[0].__name__), ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, names)
    return {
        "openapi": "3.1.0",
        "info": {"title": "luyue order fulfilment API", "version": "1",
                 "description": "The contract is docs/api.md; this document is generated from the models "
                                "the server validates requests and builds answers with. Every refusal has "
                                "the body ErrorBody. Answers may carry fields added later."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": defs.get("$defs", {}),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "luyue token create (see README)"}}},
    }


def _operation(op: Operation, names: dict) -> dict[str, Any]:
    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        return names[(model, mode)]

    error = {"application/json": {"schema": ref(docs.ErrorBody, "serialization")}}
    responses: dict[str, Any] = {}
    for status, answer in op.answers.items():
        content = ({answer: {"schema": {"type": "string"}}} if isinstance(answer, str)
                   else {"application/json": {"schema": ref(answer, "serialization")}})
        responses[str(status)] = {"description": "OK" if status == 200 else "Created", "content": content}
    refusals = every_refusal(op)
    for status in sorted(refusals):
        responses[str(status)] = {"description": refusals[status], "content": error}
    params = [{"name": name, "in": "path", "required": True, "schema": _PATH_PARAMS[name]}
              for name in _path_names(op.path)] + list(op.query)
    operation: dict[str, Any] = {
        "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}"
                       .replace(".", "_").replace("-", "_"),
        "summary": op.summary,
        "description": _WHO[op.who],
        "parameters": params,
        "responses": responses,
    }
    if op.body is not None:
        media: dict[str, Any] = {"schema": ref(op.body, "validation")}
        if op.example is not None:
            media["example"] = op.example
        operation["requestBody"] = {"required": True, "content": {"application/json": media}}
    return operation


def every_refusal(op: Operation) -> dict[int, str]:
    """The statuses an operation may refuse with (each with the error body)."""
    return {**_ERRORS, **(_BODY_ERRORS if op.body else {}), **op.refusals}


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


@bp.get("/openapi.json")
def served():
    """The document; no token needed."""
    return jsonify(document())
