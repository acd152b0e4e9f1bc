"""The documents the API answers with, as pydantic models: the OpenAPI
document is generated from them (app.web.openapi) and the tests validate
real answers against them, so the views' dicts and the contract cannot drift.

Fields the contract (docs/api.md) fixes come first; every model lets a client
meet fields added later (additional properties are allowed, as the contract
says clients must expect)."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.models import FulfilmentStatus, OrderStatus, ParcelStatus, TrackingStatus

Time = AwareDatetime
Cursor = Annotated[Optional[str], Field(description="Give it as `after` for the next page; null on the last page.")]


class _Document(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- errors ---------------------------------------------------------------------------

class ErrorDetail(_Document):
    code: str = Field(description="snake_case, e.g. invalid_request, not_found, unavailable")
    message: str
    details: dict[str, Any] = Field(description="invalid_request: `fields` maps each bad field's JSON path "
                                                "to what is wrong")


class ErrorBody(_Document):
    error: ErrorDetail


# --- the order document ------------------------------------------------------------------

class OrderLine(_Document):
    sku: str
    quantity: int


class TrackingReport(_Document):
    status: Literal[tuple(s.value for s in TrackingStatus)]  # type: ignore[misc]
    at: Time
    description: Optional[str]
    source: str


class ParcelDocument(_Document):
    tracking_number: Optional[str]
    carrier: Optional[str]
    status: Literal[tuple(dict.fromkeys([*(s.value for s in ParcelStatus),  # type: ignore[misc]
                                         *(s.value for s in TrackingStatus)]))] = Field(
        description="The parcel's status, or once the carrier reported, its latest report")
    sscc: Optional[str] = None
    weight_g: Optional[int] = None
    shipped_at: Optional[Time] = None
    tracking: list[TrackingReport] = []
    delivered_at: Optional[Time] = None
    proof: Optional[str] = None
    returned_at: Optional[Time] = None
    delivery_code: Optional[str] = Field(None, description="same_city: the code the customer tells the rider")


class HoldDocument(_Document):
    id: int
    reason: str
    by: Optional[str]
    since: Time
    until: Optional[Time]


class FulfilmentDocument(_Document):
    id: str
    node: Optional[str]
    status: Literal[tuple(s.value for s in FulfilmentStatus)]  # type: ignore[misc]
    delivery: Literal["express", "same_city"]
    lines: list[OrderLine]
    parcels: list[ParcelDocument]
    redispatched_from: Optional[str] = None
    dispatch_reason: Optional[Any] = Field(None, description="Why this node: the candidates considered")
    holds: list[HoldDocument] = []
    release_at: Optional[Time] = None
    intercepted: Optional[bool] = None
    dispatched_at: Optional[Time] = None
    shipped_at: Optional[Time] = None
    delivered_at: Optional[Time] = None
    completed_at: Optional[Time] = None
    cancelled_at: Optional[Time] = None
    fulfilment_time: Optional[dict[str, int]] = None


class OrderEvent(_Document):
    seq: int
    at: Time
    type: str
    fulfilment: Optional[str]


class ReturnLineDocument(_Document):
    sku: str
    quantity: int
    received: int
    sellable: int
    damaged: int
    quarantined: int = 0


class ReturnDocument(_Document):
    return_id: str
    status: Literal["authorised", "received"]
    lines: list[ReturnLineDocument]
    ref: Optional[str] = None
    reason: Optional[str] = None
    authorised_by: Optional[str] = None
    authorised_at: Optional[Time] = None
    received_at: Optional[Time] = None
    node: Optional[str] = None


class OrderDocument(_Document):
    external_id: str
    status: Literal[tuple(s.value for s in OrderStatus)]  # type: ignore[misc]
    created_at: Time
    updated_at: Time
    placed_at: Optional[Time] = None
    promised_by: Optional[Time] = None
    delivery: Literal["express", "same_city"]
    fulfilments: list[FulfilmentDocument]
    events: list[OrderEvent]
    returns: list[ReturnDocument] = []


# --- the event feed ------------------------------------------------------------------------

class FeedEvent(_Document):
    seq: int
    at: Time
    type: str
    order: Optional[str]
    fulfilment: Optional[str]
    data: Optional[dict[str, Any]]


class EventFeed(_Document):
    events: list[FeedEvent]
    next_after: int


# --- master data and read-back -------------------------------------------------------------------

class NodeDocument(_Document):
    code: str
    name: str
    kind: Literal["warehouse", "store"]
    province: str
    city: str
    lat: Optional[float]
    lon: Optional[float]
    daily_capacity: int
    same_city_radius_km: float
    active: bool
    updated_at: Optional[Time] = Field(None, description="Read-back only")


class SkuDocument(_Document):
    sku: str
    name: str
    barcodes: list[str]
    weight_g: int
    presale: bool
    updated_at: Optional[Time] = Field(None, description="Read-back only")


class NodePage(_Document):
    nodes: list[NodeDocument]
    next_after: Cursor


class SkuPage(_Document):
    skus: list[SkuDocument]
    next_after: Cursor


class StockPerSku(_Document):
    sku: str
    on_hand: int = Field(description="In the books: on the shelves plus in_totes")
    in_totes: int = Field(description="Picked and not yet shipped")
    reserved: int
    available: int = Field(description="on_hand - reserved")
    quarantined: int = Field(description="Returned units held out of on_hand until a lead decides")
    damaged: int = Field(description="Returned damaged units, held out of on_hand")


class StockPerBin(_Document):
    location: str
    sku: str
    on_hand: int
    in_totes: int


class NodeStock(_Document):
    node: str
    by: Literal["sku", "bin"]
    items: list[StockPerSku] | list[StockPerBin]
    next_after: Cursor


class BinCount(_Document):
    location: str
    sku: str
    book_on_shelf: int
    counted: int
    in_totes: int
    variance: int = Field(description="counted - book_on_shelf")


class StockCountResult(_Document):
    """What a stock PUT did (docs/stock.md)."""
    items: int
    locations: int
    shortages: dict[str, int] = Field(description="Per SKU: units reserved beyond what was counted "
                                                  "(moved to other nodes where they could be)")
    redispatched: list[str] = Field(description="Fulfilments moved off this node")
    dispatched: list[str] = Field(description="Fulfilments that were waiting for stock, now reserved here")
    counts: list[BinCount]


# --- carriers -------------------------------------------------------------------------------------

class CarrierResultError(_Document):
    code: str
    message: str


class CarrierResult(_Document):
    tracking_number: str
    status: str
    at: str
    result: str = Field(description="applied, recorded, duplicate, unknown_tracking_number, not_shipped")
    parcel_status: Optional[str] = None
    error: Optional[CarrierResultError] = None


class CarrierResults(_Document):
    results: list[CarrierResult]
    summary: dict[str, int]


# --- webhooks ---------------------------------------------------------------------------------------

class WebhookBody(BaseModel):
    """`PUT /webhook`: checked by app.webhooks.register."""
    url: str = Field(description="https:// (http:// to a private address only when the server allows it)")
    secret: Optional[str] = Field(None, description="Generated when left out on a new webhook")
    after: Optional[Annotated[int, Field(ge=0)]] = Field(None, description="Deliver events after this seq")


class WebhookDocument(_Document):
    url: str
    delivered_seq: int
    pending: int
    failures: int
    next_attempt_at: Optional[Time]
    last_error: Optional[str]
    created_at: Time
    updated_at: Time
    secret_hint: str
    secret: Optional[str] = Field(None, description="PUT's answer only")
    signing_secret: Optional[str] = Field(None, description="PUT's answer only: whsec_… for Standard Webhooks "
                                                            "libraries")


class WebhookDeleted(_Document):
    deleted: Literal[True]


class DeliveryAttempt(_Document):
    id: int
    seq: int
    type: str
    attempt: int
    at: Time
    ok: bool
    status_code: Optional[int]
    error: Optional[str]
    duration_ms: Optional[int]


class DeliveryLog(_Document):
    deliveries: list[DeliveryAttempt]
    next_before: Optional[int]


# --- reports ------------------------------------------------------------------------------------------

class StageFigures(_Document):
    count: int
    median_s: Optional[float]
    p90_s: Optional[float]


class SlaRow(_Document):
    day: Optional[str] = Field(description="YYYY-MM-DD; null with by_day=false")
    node: str
    shipped: int
    on_time: int
    late: int
    no_promise: int
    on_time_rate: Optional[float]
    stages: dict[str, StageFigures]


class SlaReport(_Document):
    from_: str = Field(alias="from")
    to: str
    stages: list[str]
    rows: list[SlaRow]


class OpenApiDocument(_Document):
    """This document."""
    openapi: str
