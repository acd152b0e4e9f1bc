"""The whole schema in one view.

Orders are never edited after intake; the work lives in fulfilments (履约单),
one per node that ships part of an order. Stock is counted per bin
(`BinStock`) and summed per node and SKU (`Stock`), where reservations are
held: `Stock.reserved` always equals the sum of open `Reservation` rows, and
`Stock.on_hand` the sum of the bins.
"""
from __future__ import annotations

import datetime as dt
import enum
import secrets
from typing import Any, Optional

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, orm_insert_sentinel, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes on both databases (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


def _enum(cls: type[enum.Enum]) -> Enum:
    # Stored as plain strings with a CHECK, readable in SQL on both databases.
    return Enum(cls, native_enum=False, values_callable=lambda e: [m.value for m in e], length=32,
                validate_strings=True)


class NodeKind(str, enum.Enum):
    warehouse = "warehouse"
    store = "store"


class Delivery(str, enum.Enum):
    express = "express"
    same_city = "same_city"


class OrderStatus(str, enum.Enum):
    received = "received"
    in_fulfilment = "in_fulfilment"
    partially_shipped = "partially_shipped"
    shipped = "shipped"
    delivered = "delivered"
    completed = "completed"
    cancelled = "cancelled"


class FulfilmentStatus(str, enum.Enum):
    awaiting_stock = "awaiting_stock"
    awaiting_release = "awaiting_release"
    reserved = "reserved"
    picking = "picking"
    picked = "picked"
    packed = "packed"
    shipped = "shipped"
    delivered = "delivered"
    completed = "completed"
    cancelled = "cancelled"
    redispatched = "redispatched"


class ReservationState(str, enum.Enum):
    open = "open"
    released = "released"
    consumed = "consumed"


class Role(str, enum.Enum):
    picker = "picker"
    packer = "packer"
    dock = "dock"
    rider = "rider"
    lead = "lead"
    admin = "admin"


# --- channels and access ---------------------------------------------------

class Channel(Base):
    """A sales platform (web shop, marketplace connector, POS)."""

    __tablename__ = "channels"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    # A token belongs to a sales channel, or to a carrier (tracking updates).
    channel_id: Mapped[Optional[int]] = mapped_column(ForeignKey("channels.id"))
    carrier: Mapped[Optional[str]] = mapped_column(String(32))
    # Only a hash is kept; the token itself is shown once, at creation.
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[Optional[dt.datetime]]
    channel: Mapped[Optional[Channel]] = relationship()
    __table_args__ = (CheckConstraint("(channel_id IS NULL) <> (carrier IS NULL)", name="token_channel_or_carrier"),)


class LoginThrottle(Base):
    """Wrong PINs counted for a badge nobody has, as `User.failed_logins`
    counts them for a known one: an unknown badge locks exactly like a known
    one, so lockouts tell nothing about which badges exist."""

    __tablename__ = "login_throttles"
    # "badge:<code>"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[Optional[dt.datetime]]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RateWindow(Base):
    """API requests of one channel in one minute, counted in the database so
    every worker and machine enforces the same limit."""

    __tablename__ = "rate_windows"
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True)
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # Unix time // 60
    requests: Mapped[int] = mapped_column(default=0)


class User(Base):
    """A person on the floor, logging in with a badge code and a PIN."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(_enum(Role))
    node_id: Mapped[Optional[int]] = mapped_column(ForeignKey("nodes.id"))
    pin_hash: Mapped[str] = mapped_column(String(255))
    language: Mapped[str] = mapped_column(String(10), default="zh")
    active: Mapped[bool] = mapped_column(default=True)
    # Wrong PINs in a row; enough of them lock the badge for a while.
    failed_logins: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[Optional[dt.datetime]]
    # Written into each login's cookie and checked on every request: raising
    # it (logout, a new PIN, deactivation, a lead's sign-out) ends every
    # login of this user at once, on every device and worker process.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    node: Mapped[Optional["Node"]] = relationship()


# --- master data -------------------------------------------------------------

class Node(Base):
    """A fulfilment node (履约节点): a warehouse or a store."""

    __tablename__ = "nodes"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[NodeKind] = mapped_column(_enum(NodeKind))
    province: Mapped[str] = mapped_column(String(100))
    city: Mapped[str] = mapped_column(String(100))
    lat: Mapped[Optional[float]] = mapped_column(Float)
    lon: Mapped[Optional[float]] = mapped_column(Float)
    daily_capacity: Mapped[int]
    same_city_radius_km: Mapped[float] = mapped_column(Float, default=0)
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    __table_args__ = (CheckConstraint("daily_capacity >= 0", name="capacity_not_negative"),)


class NodeDay(Base):
    """Fulfilments booked at a node on one business day, booked like stock."""

    __tablename__ = "node_days"
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    booked: Mapped[int] = mapped_column(default=0)


class Location(Base):
    """A bin (库位). Pickers walk bins in `walk_seq` order, serpentine by aisle."""

    __tablename__ = "locations"
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    code: Mapped[str] = mapped_column(String(64))
    aisle: Mapped[str] = mapped_column(String(32))
    walk_seq: Mapped[int]
    __table_args__ = (UniqueConstraint("node_id", "code"),)


class Sku(Base):
    __tablename__ = "skus"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    weight_g: Mapped[int] = mapped_column(default=0)
    presale: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    barcodes: Mapped[list["Barcode"]] = relationship(
        back_populates="sku", cascade="all, delete-orphan", order_by="Barcode.code"
    )


class Barcode(Base):
    """Any code printed on a unit: GTIN (check digit verified) or an in-house code."""

    __tablename__ = "barcodes"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id", ondelete="CASCADE"), index=True)
    sku: Mapped[Sku] = relationship(back_populates="barcodes")


class BinStock(Base):
    """Units counted in one bin."""

    __tablename__ = "bin_stock"
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"), primary_key=True, index=True)
    on_hand: Mapped[int] = mapped_column(default=0)
    __table_args__ = (CheckConstraint("on_hand >= 0", name="bin_on_hand_not_negative"),)


class Stock(Base):
    """Per node and SKU: what is there and what is promised to fulfilments."""

    __tablename__ = "stock"
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"), index=True)
    on_hand: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)
    # Set when a count fell below what was reserved and not all of it moved.
    short_since: Mapped[Optional[dt.datetime]]
    __table_args__ = (
        UniqueConstraint("node_id", "sku_id"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
    )


# --- orders and their fulfilment ------------------------------------------

class Order(Base):
    """What a sales channel sent (订单). Never edited after intake, but for status."""

    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    external_id: Mapped[str] = mapped_column(String(128))
    # The request body exactly as received, and a digest of its canonical form
    # that tells a retry from a different order under the same external_id.
    payload: Mapped[dict[str, Any]]
    payload_sha256: Mapped[str] = mapped_column(String(64))
    placed_at: Mapped[dt.datetime]
    promised_by: Mapped[Optional[dt.datetime]]
    delivery: Mapped[Delivery] = mapped_column(_enum(Delivery))
    customer_name: Mapped[str] = mapped_column(String(200))
    customer_phone: Mapped[str] = mapped_column(String(32))
    ship_to: Mapped[dict[str, Any]]
    ship_lat: Mapped[Optional[float]] = mapped_column(Float)
    ship_lon: Mapped[Optional[float]] = mapped_column(Float)
    status: Mapped[OrderStatus] = mapped_column(_enum(OrderStatus), default=OrderStatus.received)
    cancel_requested_at: Mapped[Optional[dt.datetime]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    channel: Mapped[Channel] = relationship()
    lines: Mapped[list["OrderLine"]] = relationship(
        back_populates="order", order_by="OrderLine.line_no", cascade="all, delete-orphan"
    )
    fulfilments: Mapped[list["Fulfilment"]] = relationship(
        back_populates="order", order_by="Fulfilment.id", cascade="all, delete-orphan"
    )
    __table_args__ = (
        UniqueConstraint("channel_id", "external_id"),
        Index("ix_orders_status", "status"),
    )


class OrderLine(Base):
    __tablename__ = "order_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    line_no: Mapped[int]
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    quantity: Mapped[int]
    presale_release_at: Mapped[Optional[dt.datetime]]
    # SQLite cannot match generated ids to the rows of a multi-row INSERT; a
    # sentinel lets the ORM insert an order's lines in one statement anyway.
    _sentinel: Mapped[Optional[int]] = orm_insert_sentinel()
    order: Mapped[Order] = relationship(back_populates="lines")
    sku: Mapped[Sku] = relationship()


class Fulfilment(Base):
    """The part of an order one node ships (履约单); the unit of work."""

    __tablename__ = "fulfilments"
    id: Mapped[int] = mapped_column(primary_key=True)
    # Unique and set by us: also the insert sentinel (see OrderLine._sentinel).
    ref: Mapped[str] = mapped_column(String(40), unique=True, insert_sentinel=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[Optional[int]] = mapped_column(ForeignKey("nodes.id"))
    status: Mapped[FulfilmentStatus] = mapped_column(_enum(FulfilmentStatus))
    delivery: Mapped[Delivery] = mapped_column(_enum(Delivery))
    # Presale: held in awaiting_release until then.
    release_at: Mapped[Optional[dt.datetime]]
    # Lineage of re-dispatch: the fulfilment whose lines this one took over.
    redispatched_from_id: Mapped[Optional[int]] = mapped_column(ForeignKey("fulfilments.id"))
    # Why this node: the candidates and their scores, for a lead to read.
    dispatch_reason: Mapped[Optional[dict[str, Any]]]
    intercepted: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[Optional[dt.datetime]]
    shipped_at: Mapped[Optional[dt.datetime]]
    delivered_at: Mapped[Optional[dt.datetime]]
    completed_at: Mapped[Optional[dt.datetime]]
    cancelled_at: Mapped[Optional[dt.datetime]]

    order: Mapped[Order] = relationship(back_populates="fulfilments")
    node: Mapped[Optional[Node]] = relationship()
    redispatched_from: Mapped[Optional["Fulfilment"]] = relationship(remote_side=[id])
    lines: Mapped[list["FulfilmentLine"]] = relationship(
        back_populates="fulfilment", order_by="FulfilmentLine.id", cascade="all, delete-orphan"
    )
    parcels: Mapped[list["Parcel"]] = relationship(
        back_populates="fulfilment", order_by="Parcel.number", cascade="all, delete-orphan"
    )
    __table_args__ = (Index("ix_fulfilments_node_status", "node_id", "status"),
                      Index("ix_fulfilments_status", "status"))


class FulfilmentLine(Base):
    __tablename__ = "fulfilment_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    fulfilment_id: Mapped[int] = mapped_column(ForeignKey("fulfilments.id", ondelete="CASCADE"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    quantity: Mapped[int]
    _sentinel: Mapped[Optional[int]] = orm_insert_sentinel()  # see OrderLine._sentinel
    fulfilment: Mapped[Fulfilment] = relationship(back_populates="lines")
    sku: Mapped[Sku] = relationship()
    reservations: Mapped[list["Reservation"]] = relationship(back_populates="line")
    __table_args__ = (CheckConstraint("quantity >= 0", name="line_quantity_not_negative"),)


class Reservation(Base):
    """Stock held at a node for one fulfilment line (预占库存)."""

    __tablename__ = "reservations"
    id: Mapped[int] = mapped_column(primary_key=True)
    fulfilment_line_id: Mapped[int] = mapped_column(ForeignKey("fulfilment_lines.id", ondelete="CASCADE"),
                                                    index=True)
    stock_id: Mapped[int] = mapped_column(ForeignKey("stock.id"))
    quantity: Mapped[int]
    state: Mapped[ReservationState] = mapped_column(_enum(ReservationState), default=ReservationState.open)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[Optional[dt.datetime]]
    _sentinel: Mapped[Optional[int]] = orm_insert_sentinel()  # see OrderLine._sentinel
    line: Mapped[FulfilmentLine] = relationship(back_populates="reservations")
    stock: Mapped[Stock] = relationship()
    __table_args__ = (Index("ix_reservations_stock_state", "stock_id", "state"),
                      CheckConstraint("quantity > 0", name="reservation_quantity_positive"))


# --- the outbox --------------------------------------------------------------

class EventCounter(Base):
    """One row: the last `seq` handed out. Taking the next number locks the row
    until commit, so seqs become visible to readers in order and without gaps."""

    __tablename__ = "event_counter"
    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


# The counter row exists from the start (the migration inserts it too).
event.listen(EventCounter.__table__, "after_create", DDL("INSERT INTO event_counter (id, last_seq) VALUES (1, 0)"))


class Event(Base):
    __tablename__ = "events"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime]
    type: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[Optional[int]] = mapped_column(ForeignKey("channels.id"))
    order_id: Mapped[Optional[int]] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    fulfilment_id: Mapped[Optional[int]] = mapped_column(ForeignKey("fulfilments.id", ondelete="CASCADE"))
    node_id: Mapped[Optional[int]] = mapped_column(ForeignKey("nodes.id"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    order: Mapped[Optional[Order]] = relationship()
    fulfilment: Mapped[Optional[Fulfilment]] = relationship()
    __table_args__ = (Index("ix_events_channel_seq", "channel_id", "seq"),
                      Index("ix_events_order_seq", "order_id", "seq"))


# --- picking -------------------------------------------------------------------
# Pick lists (拣货单) are built from `reserved` fulfilments at one node: one
# order, or a batch of several with one tote each (cluster picking). Lines are
# per (fulfilment line, bin), so the bin every unit came from is on record for
# shipping to consume.

class PickListState(str, enum.Enum):
    open = "open"        # waiting for a picker: new, or released by a lead
    picking = "picking"  # held by exactly one picker
    done = "done"


class PickStep(str, enum.Enum):
    """Where a line's scan sequence stands; kept so work resumes on any device."""

    location = "location"
    product = "product"
    quantity = "quantity"
    tote = "tote"
    done = "done"


class PickList(Base):
    __tablename__ = "pick_lists"
    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(40), unique=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    state: Mapped[PickListState] = mapped_column(_enum(PickListState), default=PickListState.open)
    # Claimed by a conditional UPDATE (picker_id IS NULL), so never two pickers.
    picker_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    # The earliest promise among its fulfilments: lists are claimed in this order.
    promised_by: Mapped[Optional[dt.datetime]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[Optional[dt.datetime]]
    finished_at: Mapped[Optional[dt.datetime]]
    # A lead's last release: from whom, by whom, when; so the picker it was
    # taken from is told on their next scan or reload (until they claim again).
    released_from_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    released_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    released_at: Mapped[Optional[dt.datetime]]
    node: Mapped[Node] = relationship()
    picker: Mapped[Optional[User]] = relationship(foreign_keys=[picker_id])
    released_by: Mapped[Optional[User]] = relationship(foreign_keys=[released_by_id])
    orders: Mapped[list["PickListFulfilment"]] = relationship(
        back_populates="pick_list", order_by="PickListFulfilment.slot", cascade="all, delete-orphan")
    lines: Mapped[list["PickLine"]] = relationship(
        back_populates="pick_list", order_by="PickLine.seq", cascade="all, delete-orphan")
    __table_args__ = (Index("ix_pick_lists_node_state", "node_id", "state"),
                      Index("ix_pick_lists_picker", "picker_id"),
                      Index("ix_pick_lists_released_from", "released_from_id"))


class PickListFulfilment(Base):
    """One fulfilment on a list, in a cart slot, going into its own tote."""

    __tablename__ = "pick_list_fulfilments"
    id: Mapped[int] = mapped_column(primary_key=True)
    pick_list_id: Mapped[int] = mapped_column(ForeignKey("pick_lists.id", ondelete="CASCADE"))
    # A fulfilment is on one list only; a concurrent builder loses on this key.
    fulfilment_id: Mapped[int] = mapped_column(ForeignKey("fulfilments.id", ondelete="CASCADE"), unique=True)
    slot: Mapped[int]
    # Scanned by the picker when the list starts; packing finds the order by it.
    tote: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    pick_list: Mapped[PickList] = relationship(back_populates="orders")
    fulfilment: Mapped[Fulfilment] = relationship()
    __table_args__ = (UniqueConstraint("pick_list_id", "slot"),)


class PickLine(Base):
    """Units of one fulfilment line to take from one bin, in walk order."""

    __tablename__ = "pick_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    pick_list_id: Mapped[int] = mapped_column(ForeignKey("pick_lists.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int]
    fulfilment_line_id: Mapped[int] = mapped_column(ForeignKey("fulfilment_lines.id", ondelete="CASCADE"),
                                                    index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    quantity: Mapped[int]
    # Units taken from this bin (in hand, then in the tote).
    picked: Mapped[int] = mapped_column(default=0)
    # Units declared missing from this bin and re-dispatched.
    short: Mapped[int] = mapped_column(default=0)
    step: Mapped[PickStep] = mapped_column(_enum(PickStep), default=PickStep.location)
    done_at: Mapped[Optional[dt.datetime]]
    pick_list: Mapped[PickList] = relationship(back_populates="lines")
    fulfilment_line: Mapped[FulfilmentLine] = relationship()
    location: Mapped[Location] = relationship()
    sku: Mapped[Sku] = relationship()
    __table_args__ = (
        UniqueConstraint("pick_list_id", "seq"),
        Index("ix_pick_lines_bin", "location_id", "sku_id"),
        CheckConstraint("picked >= 0 AND picked <= quantity", name="picked_within_quantity"),
        CheckConstraint("short >= 0", name="short_not_negative"),
    )


class ScanRecord(Base):
    """Every accepted scan, keyed by the id the handheld made for it: a retry
    over flaky Wi-Fi carries the same id and is counted once. An id is the
    worker's own (unique per user): another worker's id is a new scan."""

    __tablename__ = "scan_records"
    __table_args__ = (UniqueConstraint("user_id", "scan_id", name="uq_scan_records_user_scan"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    scan_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # Which kind of work took it ("pick", later "pack", "ship"...) and what it did.
    work: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    code: Mapped[Optional[str]] = mapped_column(String(200))
    quantity: Mapped[Optional[int]]
    pick_list_id: Mapped[Optional[int]] = mapped_column(ForeignKey("pick_lists.id", ondelete="CASCADE"), index=True)
    pick_line_id: Mapped[Optional[int]] = mapped_column(ForeignKey("pick_lines.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# --- packing and outbound ----------------------------------------------------
# A fulfilment leaves in one or more parcels (包裹), each verified unit by unit
# at the bench, then scanned onto a carrier's handover (交接) at the dock.

class ParcelStatus(str, enum.Enum):
    open = "open"            # being filled at the packing bench
    packed = "packed"        # closed, weighed, labelled
    shipped = "shipped"      # scanned out on a handover
    delivered = "delivered"
    intercepted = "intercepted"  # its order was cancelled before it left
    returned = "returned"    # came back to its node undelivered; its units are in stock again


class Parcel(Base):
    __tablename__ = "parcels"
    id: Mapped[int] = mapped_column(primary_key=True)
    fulfilment_id: Mapped[int] = mapped_column(ForeignKey("fulfilments.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    status: Mapped[ParcelStatus] = mapped_column(_enum(ParcelStatus), default=ParcelStatus.open)
    carrier: Mapped[Optional[str]] = mapped_column(String(32))
    tracking_number: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    sscc: Mapped[Optional[str]] = mapped_column(String(18), unique=True)
    # The parcel's own random value a same-city delivery code is made from
    # (tracking.delivery_code): neither the server's key nor the label alone
    # gives the code.
    delivery_code_seed: Mapped[Optional[str]] = mapped_column(String(32), default=lambda: secrets.token_hex(16))
    weight_g: Mapped[Optional[int]]
    packed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    packed_at: Mapped[Optional[dt.datetime]]
    label_printed_at: Mapped[Optional[dt.datetime]]
    handover_id: Mapped[Optional[int]] = mapped_column(ForeignKey("handovers.id"), index=True)
    shipped_at: Mapped[Optional[dt.datetime]]
    # Received back at the dock (app.fulfilment.returns): when, by whom, into which bin.
    returned_at: Mapped[Optional[dt.datetime]]
    returned_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    returned_location_id: Mapped[Optional[int]] = mapped_column(ForeignKey("locations.id"))
    fulfilment: Mapped[Fulfilment] = relationship(back_populates="parcels")
    handover: Mapped[Optional["Handover"]] = relationship(back_populates="parcels")
    returned_by: Mapped[Optional[User]] = relationship(foreign_keys=[returned_by_id])
    returned_location: Mapped[Optional[Location]] = relationship()
    items: Mapped[list["ParcelItem"]] = relationship(back_populates="parcel", order_by="ParcelItem.id",
                                                     cascade="all, delete-orphan")
    __table_args__ = (UniqueConstraint("fulfilment_id", "number"),)


class ParcelItem(Base):
    __tablename__ = "parcel_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    parcel_id: Mapped[int] = mapped_column(ForeignKey("parcels.id", ondelete="CASCADE"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    quantity: Mapped[int]
    # Received back at the dock (app.fulfilment.returns): the bin this SKU went into.
    returned_location_id: Mapped[Optional[int]] = mapped_column(ForeignKey("locations.id"))
    parcel: Mapped[Parcel] = relationship(back_populates="items")
    sku: Mapped[Sku] = relationship()
    returned_location: Mapped[Optional[Location]] = relationship()
    __table_args__ = (UniqueConstraint("parcel_id", "sku_id"), CheckConstraint("quantity > 0", name="item_quantity_positive"))


class HandoverStatus(str, enum.Enum):
    open = "open"
    closed = "closed"


class Handover(Base):
    """Parcels given to one carrier at one node, signed for on the manifest."""

    __tablename__ = "handovers"
    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    carrier: Mapped[str] = mapped_column(String(32))
    status: Mapped[HandoverStatus] = mapped_column(_enum(HandoverStatus), default=HandoverStatus.open)
    opened_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[Optional[dt.datetime]]
    node: Mapped[Node] = relationship()
    parcels: Mapped[list[Parcel]] = relationship(back_populates="handover", order_by="Parcel.shipped_at")
    __table_args__ = (Index("ix_handovers_node_status", "node_id", "carrier", "status"),)


# --- delivery, webhooks and holds ---------------------------------------------
# After the dock: couriers report where a parcel is (tracking updates, kept as
# a history), same-city riders deliver with a proof (the customer's code or a
# photo), each channel's feed is pushed to its webhook in `seq` order with a
# log of attempts, and a fulfilment can be held (a hold stops picking).

class TrackingStatus(str, enum.Enum):
    """What a courier or rider reports about a parcel after it left the dock."""

    in_transit = "in_transit"
    out_for_delivery = "out_for_delivery"
    failed_attempt = "failed_attempt"
    delivered = "delivered"
    returned = "returned"


class ProofKind(str, enum.Enum):
    """How a delivery was proven: the carrier said so, the customer's 4-digit
    code, a photo taken by the rider, or a lead who confirmed it by hand."""

    carrier = "carrier"
    code = "code"
    photo = "photo"
    lead = "lead"


class TrackingUpdate(Base):
    """One status report about a parcel, in the courier's own time `at`.
    Every report is kept (out of order ones too); the same (parcel, status,
    at) twice is one report."""

    __tablename__ = "tracking_updates"
    id: Mapped[int] = mapped_column(primary_key=True)
    parcel_id: Mapped[int] = mapped_column(ForeignKey("parcels.id", ondelete="CASCADE"))
    status: Mapped[TrackingStatus] = mapped_column(_enum(TrackingStatus))
    at: Mapped[dt.datetime]
    description: Mapped[Optional[str]] = mapped_column(String(500))
    # "carrier" (the carrier-events API) or "rider" (the same-city screen).
    source: Mapped[str] = mapped_column(String(16))
    # False when a newer report was already in: history only, the parcel stayed.
    applied: Mapped[bool] = mapped_column(default=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("parcel_id", "status", "at", name="uq_tracking_update"),
                      Index("ix_tracking_updates_parcel_at", "parcel_id", "at"))


class ParcelDelivery(Base):
    """Where a shipped parcel stands on its way to the customer: the latest
    report (by its `at`), the rider carrying it, and the proof of delivery."""

    __tablename__ = "parcel_deliveries"
    parcel_id: Mapped[int] = mapped_column(ForeignKey("parcels.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[TrackingStatus] = mapped_column(_enum(TrackingStatus))
    status_at: Mapped[dt.datetime]
    # Same-city: the rider who scanned it at pickup, and when.
    rider_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    picked_up_at: Mapped[Optional[dt.datetime]]
    # Wrong delivery codes typed for this parcel; at the limit only a photo or a lead proves it.
    code_failures: Mapped[int] = mapped_column(default=0)
    proof: Mapped[Optional[ProofKind]] = mapped_column(_enum(ProofKind))
    # A photo proof: its file under the instance folder, relative to it.
    photo_path: Mapped[Optional[str]] = mapped_column(String(255))
    delivered_at: Mapped[Optional[dt.datetime]]
    delivered_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    parcel: Mapped[Parcel] = relationship()
    rider: Mapped[Optional[User]] = relationship(foreign_keys=[rider_id])
    __table_args__ = (Index("ix_parcel_deliveries_rider_status", "rider_id", "status"),
                      CheckConstraint("code_failures >= 0", name="code_failures_not_negative"))


class FulfilmentHold(Base):
    """A reason not to work on a fulfilment (for now): no pick list takes it
    while a hold is active, i.e. not released and `until` not passed."""

    __tablename__ = "fulfilment_holds"
    id: Mapped[int] = mapped_column(primary_key=True)
    fulfilment_id: Mapped[int] = mapped_column(ForeignKey("fulfilments.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(200))
    # Who: a user's badge code, a channel, or "system".
    placed_by: Mapped[str] = mapped_column(String(64))
    placed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    until: Mapped[Optional[dt.datetime]]
    released_at: Mapped[Optional[dt.datetime]]
    released_by: Mapped[Optional[str]] = mapped_column(String(64))
    fulfilment: Mapped[Fulfilment] = relationship()
    __table_args__ = (Index("ix_fulfilment_holds_fulfilment", "fulfilment_id", "released_at"),)


class Webhook(Base):
    """A channel's URL that receives its feed, one event at a time in `seq`
    order. `delivered_seq` is the cursor: the last event it answered 2xx to.
    A server process sends only while it holds the lease (a conditional
    UPDATE claims it), so two processes never send the same event at once."""

    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    # HMAC-SHA256 key for X-Luyue-Signature; kept as given, it must sign.
    secret: Mapped[str] = mapped_column(String(200))
    delivered_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # Failed attempts at the event after the cursor; sets the backoff.
    failures: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[Optional[dt.datetime]]
    last_error: Mapped[Optional[str]] = mapped_column(String(500))
    lease_owner: Mapped[Optional[str]] = mapped_column(String(100))
    lease_until: Mapped[Optional[dt.datetime]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    channel: Mapped[Channel] = relationship()
    deliveries: Mapped[list["WebhookDelivery"]] = relationship(
        back_populates="webhook", cascade="all, delete-orphan", passive_deletes=True)


class WebhookDelivery(Base):
    """One attempt to POST one event: the log a channel reads."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int]
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[int]
    status_code: Mapped[Optional[int]]
    error: Mapped[Optional[str]] = mapped_column(String(500))
    ok: Mapped[bool]
    webhook: Mapped[Webhook] = relationship(back_populates="deliveries")
    __table_args__ = (Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
                      Index("ix_webhook_deliveries_at", "at"))


# --- cycle counts (盘点) ---------------------------------------------------------
# A count says what is ON THE SHELF of one bin for one SKU. Units picked into
# totes and not yet shipped are still in the bin's on_hand (shipping takes
# them off), so the bin's book shelf figure is on_hand - in totes; see
# app.fulfilment.count and docs/stock.md.

class CountStatus(str, enum.Enum):
    requested = "requested"                # a task on the counters' list, not counted yet
    applied = "applied"                    # counted; the variance is in the books
    pending_approval = "pending_approval"  # counted; the variance is over the limit, a lead decides
    recount = "recount"                    # a lead (or a pick during the count) sent it back: a new request follows
    rejected = "rejected"                  # a lead threw the count away; the books stay


class StockCount(Base):
    """One count of one SKU in one bin: asked for (by a lead, a short pick),
    counted (blind, on a handheld, or by the API or a CSV import) and its
    variance applied at once, or held for a lead's approval."""

    __tablename__ = "stock_counts"
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    status: Mapped[CountStatus] = mapped_column(_enum(CountStatus))
    # Why it was counted: lead, short_pick, recount, picked_during_count, cycle, api, import.
    reason: Mapped[str] = mapped_column(String(32))
    # "<location_id>:<sku_id>" while requested, else NULL: one open request per bin and SKU.
    open_key: Mapped[Optional[str]] = mapped_column(String(40), unique=True)
    requested_by: Mapped[Optional[str]] = mapped_column(String(64))  # badge code, channel or "system"
    requested_at: Mapped[Optional[dt.datetime]]
    # The count: what the books said was on the shelf, what was counted, and
    # the units in totes at that moment (on hand = shelf + in totes).
    book_on_shelf: Mapped[Optional[int]]
    counted: Mapped[Optional[int]]
    in_totes: Mapped[Optional[int]]
    variance: Mapped[Optional[int]]
    counted_by: Mapped[Optional[str]] = mapped_column(String(64))
    counted_at: Mapped[Optional[dt.datetime]]
    # A lead's decision on a variance over the limit, and when it reached the books.
    decided_by: Mapped[Optional[str]] = mapped_column(String(64))
    decided_at: Mapped[Optional[dt.datetime]]
    applied_at: Mapped[Optional[dt.datetime]]
    recount_of_id: Mapped[Optional[int]] = mapped_column(ForeignKey("stock_counts.id"))
    node: Mapped[Node] = relationship()
    location: Mapped[Location] = relationship()
    sku: Mapped[Sku] = relationship()
    __table_args__ = (Index("ix_stock_counts_node_status", "node_id", "status"),
                      Index("ix_stock_counts_bin", "location_id", "sku_id"),
                      CheckConstraint("counted IS NULL OR counted >= 0", name="counted_not_negative"))


# --- customer returns (退货) -----------------------------------------------------
# A customer's return of delivered units is authorised first (the platform
# through the API, or a lead), then received at the dock unit by unit, each
# unit with a disposition. Sellable units go on hand in a bin; damaged and
# quarantined ones are held out of on_hand, in `QuarantineStock`.

class ReturnStatus(str, enum.Enum):
    authorised = "authorised"  # the customer may send it; the dock expects it
    received = "received"      # the dock received it (every unit, or closed with what came)


class Disposition(str, enum.Enum):
    """What the dock decided about one returned unit."""

    sellable = "sellable"      # on hand again, in a bin
    damaged = "damaged"        # held out of stock: cannot be sold
    quarantine = "quarantine"  # held out of stock until a lead decides


class CustomerReturn(Base):
    """One authorised return (RMA) of an order's delivered units."""

    __tablename__ = "customer_returns"
    id: Mapped[int] = mapped_column(primary_key=True)
    # What the dock scans or types: R-<order id>-<n>, made here.
    ref: Mapped[str] = mapped_column(String(40), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    # The platform's idempotency key, unique per order (a lead's return uses its ref).
    return_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[Optional[str]] = mapped_column(String(200))
    # Digest of the request body: a retry (same body) from a different return.
    payload_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[ReturnStatus] = mapped_column(_enum(ReturnStatus), default=ReturnStatus.authorised)
    # A channel's name (API) or a lead's badge code.
    authorised_by: Mapped[str] = mapped_column(String(100))
    authorised_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    received_at: Mapped[Optional[dt.datetime]]
    received_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    # The node that received it.
    node_id: Mapped[Optional[int]] = mapped_column(ForeignKey("nodes.id"))
    order: Mapped[Order] = relationship()
    received_by: Mapped[Optional[User]] = relationship()
    node: Mapped[Optional[Node]] = relationship()
    lines: Mapped[list["ReturnLine"]] = relationship(back_populates="customer_return", order_by="ReturnLine.id",
                                                     cascade="all, delete-orphan")
    __table_args__ = (UniqueConstraint("order_id", "return_id"),
                      Index("ix_customer_returns_status", "status"))


class ReturnLine(Base):
    """Units of one SKU in a return, and what the dock made of those received."""

    __tablename__ = "return_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_return_id: Mapped[int] = mapped_column(ForeignKey("customer_returns.id", ondelete="CASCADE"),
                                                    index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    quantity: Mapped[int]
    received: Mapped[int] = mapped_column(default=0)
    sellable: Mapped[int] = mapped_column(default=0)
    damaged: Mapped[int] = mapped_column(default=0)
    quarantined: Mapped[int] = mapped_column(default=0)
    customer_return: Mapped[CustomerReturn] = relationship(back_populates="lines")
    sku: Mapped[Sku] = relationship()
    __table_args__ = (
        UniqueConstraint("customer_return_id", "sku_id"),
        CheckConstraint("quantity > 0", name="return_quantity_positive"),
        CheckConstraint("received = sellable + damaged + quarantined AND received <= quantity",
                        name="return_received_within_quantity"),
        CheckConstraint("sellable >= 0 AND damaged >= 0 AND quarantined >= 0", name="return_counts_not_negative"),
    )


class QuarantineStock(Base):
    """Returned units held at a node and out of stock: not in `Stock.on_hand`
    nor any bin, so never reserved or picked. Per node and SKU: `quarantined`
    (waiting for a lead's decision) and `damaged`."""

    __tablename__ = "quarantine_stock"
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"), primary_key=True)
    quarantined: Mapped[int] = mapped_column(default=0)
    damaged: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    __table_args__ = (CheckConstraint("quarantined >= 0 AND damaged >= 0", name="quarantine_not_negative"),)
