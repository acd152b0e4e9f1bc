"""Intake (接收订单): validate, store, split, dispatch and reserve, in one
transaction. A retry with the same body answers the order already stored."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationError,
)
from sqlalchemy import Insert, bindparam, insert, inspect as sa_inspect, select
from sqlalchemy.orm import Session

from app.fulfilment import dispatch, events, orders
from app.fulfilment.errors import Refusal
from app.fulfilment.split import split
from app.models import (
    Channel,
    Delivery,
    Fulfilment,
    FulfilmentLine,
    FulfilmentStatus,
    Order,
    OrderLine,
    Reservation,
    Sku,
    utcnow,
)

MAX_LINES = 500
MAX_QUANTITY = 100_000

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=32,
                                         pattern=r"^\+?[0-9][0-9 \-]*$")]
Coordinate = StrictFloat | StrictInt


def _storable(value: dt.datetime) -> dt.datetime:
    """Kept in UTC: a time that would leave years 1-9999 there is refused."""
    try:
        value.astimezone(dt.timezone.utc)
    except OverflowError:
        raise ValueError("is out of range") from None
    return value


Moment = Annotated[AwareDatetime, AfterValidator(_storable)]


class _Strict(BaseModel):
    # Unknown fields are allowed: the contract lets clients add fields.
    model_config = ConfigDict(extra="ignore", strict=True)


class Customer(_Strict):
    name: Text
    phone: Phone | None = None


class ShipTo(_Strict):
    name: Text
    phone: Phone
    province: Text
    city: Text
    district: Text
    line1: Text
    line2: Annotated[str, StringConstraints(max_length=200)] | None = None
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{4,10}$")] | None = None
    lat: Annotated[Coordinate, Field(ge=-90, le=90)] | None = None
    lon: Annotated[Coordinate, Field(ge=-180, le=180)] | None = None


class Line(_Strict):
    sku: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    quantity: Annotated[StrictInt, Field(ge=1, le=MAX_QUANTITY)]
    presale_release_at: Moment | None = None


class OrderRequest(_Strict):
    external_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128,
                                                  pattern=r"^[\x21-\x7e]+$")]
    placed_at: Moment | None = None
    customer: Customer
    ship_to: ShipTo
    delivery: Literal["express", "same_city"]
    promised_by: Moment | None = None
    lines: Annotated[list[Line], Field(min_length=1, max_length=MAX_LINES)]


def json_path(loc: tuple[Any, ...]) -> str:
    """('lines', 2, 'quantity') -> 'lines[2].quantity'; the body itself is '$'."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path or "$"


def field_errors(error: ValidationError, data: Any) -> list[tuple[str, str]]:
    """Pydantic's errors as (JSON path, message). A location can go on past
    the input with a union member's tag (`ship_to.lat.float`): the path
    stops where the input does."""
    errs = []
    for err in error.errors(include_url=False):
        path: list[Any] = []
        value = data
        loc = err["loc"]
        # A union's member tag ends the location (`lat.float` for a bad `lat`).
        if len(loc) > 1 and isinstance(loc[-1], str) and err["type"].startswith(loc[-1] + "_"):
            loc = loc[:-1]
        for part in loc:
            if isinstance(part, str) and part.startswith(("function-", "constrained-")):
                continue
            if isinstance(part, int) and isinstance(value, list):
                value = value[part] if -len(value) <= part < len(value) else None
            elif isinstance(part, str) and isinstance(value, dict) and (part in value or err["type"] == "missing"):
                value = value.get(part)
            else:
                break
            path.append(part)
        errs.append((json_path(tuple(path)), err["msg"]))
    return errs


def control_character(text: str) -> str | None:
    for ch in text:
        if unicodedata.category(ch) == "Cc" and ch not in "\t\r\n":
            return "contains a NUL character" if ch == "\x00" else f"contains a control character (U+{ord(ch):04X})"
    return None


def nul_fields(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[str, str]]:
    """Text holding a control character: NUL, which PostgreSQL cannot store,
    or any other no label or keyboard sends (tab and line breaks pass)."""
    if isinstance(data, str):
        return [(json_path(path), problem)] if (problem := control_character(data)) else []
    found: list[tuple[str, str]] = []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        if isinstance(key, str) and (problem := control_character(key)):
            found.append((json_path(path + (key,)), problem))
        found += nul_fields(value, path + (key,))
    return found


def invalid(errors: list[tuple[str, str]]) -> Refusal:
    fields = list(dict.fromkeys(field for field, _ in errors))
    summary = "; ".join(f"{field}: {message}" for field, message in errors[:5])
    if len(errors) > 5:
        summary += f"; and {len(errors) - 5} more"
    return Refusal("invalid_request", summary=summary,
                   details={"fields": fields, "errors": [{"field": f, "message": m} for f, m in errors]})


def parse(raw: bytes) -> tuple[OrderRequest, dict[str, Any]]:
    """The validated request and the body as received; Refusal if invalid."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise invalid([("$", f"not valid JSON ({e})")]) from None
    except RecursionError:
        raise invalid([("$", "nested too deeply")]) from None
    # A NUL is one more bad field: the others are still named.
    nul = nul_fields(body)
    try:
        request = OrderRequest.model_validate_json(raw)
    except ValidationError as e:
        raise invalid(nul + field_errors(e, body)) from None
    if nul:
        raise invalid(nul)
    return request, body


def digest(request: BaseModel | dict[str, Any]) -> str:
    """A digest of what a request means, not how it was written: times as
    instants, 31 and 31.0 alike, key order and fields we ignore left out. The
    same order sent again by a client that formats it differently (a time in
    UTC instead of +08:00) is still the same order."""
    meaning = request.model_dump(exclude_none=True) if isinstance(request, BaseModel) else request
    canonical = json.dumps(_meaning(meaning), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _meaning(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _meaning(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_meaning(v) for v in value]
    return value


def _digest_as_received(body: dict[str, Any]) -> str:
    """How orders stored before digests of meaning were told apart: a retry
    of one of them is still recognised."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_order(session: Session, channel: Channel, external_id: str) -> Order | None:
    return session.scalar(select(Order).where(Order.channel_id == channel.id, Order.external_id == external_id))


def submit(session: Session, channel: Channel, raw: bytes) -> tuple[Order, bool]:
    """Take an order from a channel. Returns (order, created), the order as
    this session holds it."""
    order, sku_codes = take(session, channel, raw)
    if sku_codes is None:
        return order, False
    return session.get_one(Order, order.id), True


def take(session: Session, channel: Channel, raw: bytes) -> tuple[Order, dict[int, str] | None]:
    """Like `submit`; returns (order, sku id -> code for a new order, None for
    one already taken). Only `channel.id` is read: a detached channel will do.

    A new order comes back as it was built and stored (`store`), outside the
    session: enough to answer with, not to change further."""
    request, body = parse(raw)
    sha = digest(request)
    # Two columns, not the order: nearly every order is new.
    existing = session.execute(_TAKEN, {"channel_id": channel.id, "external_id": request.external_id}).first()
    if existing is not None:
        if existing.payload_sha256 in (sha, _digest_as_received(body)):
            return session.get_one(Order, existing.id), None
        raise Refusal("external_id_reused", external_id=request.external_id)

    codes = sorted({line.sku for line in request.lines})
    found = session.execute(_SKU_IDS, {"codes": codes}).all()
    skus = {code: sku_id for code, sku_id, _ in found}
    unknown = [code for code in codes if code not in skus]
    if unknown:
        raise Refusal("unknown_sku", skus=", ".join(unknown), details={"skus": unknown})
    # A presale SKU ordered without its release time would ship at once.
    presale = {code for code, _, is_presale in found if is_presale}
    if undated := [(f"lines[{i}].presale_release_at", f"is required: {line.sku} is a presale SKU")
                   for i, line in enumerate(request.lines)
                   if line.sku in presale and line.presale_release_at is None]:
        raise invalid(undated)

    now = utcnow()
    to = request.ship_to
    order = Order(
        channel_id=channel.id, external_id=request.external_id, payload=body, payload_sha256=sha,
        placed_at=request.placed_at or now, promised_by=request.promised_by,
        delivery=Delivery(request.delivery), customer_name=request.customer.name,
        customer_phone=request.customer.phone or to.phone,
        ship_to=to.model_dump(exclude_none=True), ship_lat=_float(to.lat), ship_lon=_float(to.lon),
        created_at=now, updated_at=now, fulfilments=[],
        lines=[OrderLine(line_no=i + 1, sku_id=skus[line.sku], quantity=line.quantity,
                         presale_release_at=line.presale_release_at) for i, line in enumerate(request.lines)],
    )
    dispatch.check_serviceable(session, order)
    events.record(session, "order.received", order=order,
                  data={"lines": len(order.lines), "delivery": order.delivery.value})
    for part in split(order, now):
        if part.release_at is not None:
            f = dispatch.new_fulfilment(order, FulfilmentStatus.awaiting_release, part.lines,
                                        delivery=order.delivery, release_at=part.release_at,
                                        reason={"rule": "presale", "release_at": part.release_at.isoformat()})
            events.record(session, "fulfilment.awaiting_release", fulfilment=f,
                          data={"release_at": part.release_at.isoformat()})
        else:
            dispatch.place(session, order, part.lines, order.delivery)
    orders.refresh(order, session)
    store(session, order)
    codes = {sku_id: code for code, sku_id in skus.items()}
    events.name_skus(session, codes)
    return order, codes


def store(session: Session, order: Order) -> None:
    """Write a new order, built in memory and never added to the session,
    with one INSERT per table (order, lines, fulfilments, their lines,
    reservations), and give the objects their ids; the fulfilments are named
    after the order's id here. The ORM's unit of work would write the same
    rows in two flushes for about three times the CPU
    (bench/intake_profile.py), and nothing after intake needs what it adds:
    the objects are answered from, then dropped."""
    order.id = session.execute(_INSERT[Order], _row(order)).scalar_one()
    session.execute(_INSERT[OrderLine], [_row(line, order_id=order.id) for line in order.lines])
    fulfilments = order.fulfilments
    for n, f in enumerate(fulfilments, 1):
        f.ref, f.order_id = dispatch.fulfilment_ref(order.id, n), order.id
    _ids(session, _INSERT[Fulfilment], fulfilments, [_row(f) for f in fulfilments])
    lines = [line for f in fulfilments for line in f.lines]
    _ids(session, _INSERT[FulfilmentLine], lines, [_row(line, fulfilment_id=line.fulfilment.id) for line in lines])
    holds = [_row(r, fulfilment_line_id=line.id) for line in lines for r in line.reservations]
    if holds:
        session.execute(_INSERT[Reservation], holds)


def _row(obj: Any, **ids: int) -> dict[str, Any]:
    """The object's columns as INSERT values (its own id and the ORM's insert
    sentinel are the database's to fill)."""
    return {**{c.key: getattr(obj, c.key) for c in sa_inspect(type(obj)).column_attrs
               if c.key not in ("id", "_sentinel")}, **ids}


def _ids(session: Session, statement: Insert, objects: list[Any], rows: list[dict[str, Any]]) -> None:
    """Insert `rows` in one statement and set each object's id from it."""
    if not rows:
        return
    for obj, new_id in zip(objects, session.execute(statement, rows).scalars(), strict=True):
        obj.id = new_id


# Statements of every intake, built once: building one costs more than
# running it (SQLAlchemy also keeps a built statement's cache key).
_TAKEN = select(Order.id, Order.payload_sha256).where(
    Order.channel_id == bindparam("channel_id"), Order.external_id == bindparam("external_id"))
_SKU_IDS = select(Sku.code, Sku.id, Sku.presale).where(Sku.code.in_(bindparam("codes", expanding=True)))
_INSERT = {
    Order: insert(Order.__table__).returning(Order.__table__.c.id),
    OrderLine: insert(OrderLine.__table__),
    # Several rows at once, their ids returned in the order of the rows.
    Fulfilment: insert(Fulfilment.__table__).returning(Fulfilment.__table__.c.id, sort_by_parameter_order=True),
    FulfilmentLine: insert(FulfilmentLine.__table__).returning(FulfilmentLine.__table__.c.id,
                                                               sort_by_parameter_order=True),
    Reservation: insert(Reservation.__table__),
}


def _float(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def release_due(session: Session, now: dt.datetime | None = None) -> int:
    """Presale fulfilments whose release time has come are dispatched now."""
    now = now or utcnow()
    due = session.scalars(
        select(Fulfilment).where(Fulfilment.status == FulfilmentStatus.awaiting_release,
                                 Fulfilment.release_at <= now).order_by(Fulfilment.release_at, Fulfilment.id)
    ).all()
    released = 0
    for f in due:
        # The order first (its status follows from all its fulfilments); one
        # another process holds is released by its next run.
        if orders.try_lock(session, f.order_id) is None or f.status != FulfilmentStatus.awaiting_release:
            continue
        released += 1
        dispatch.place(session, f.order, {line.sku_id: line.quantity for line in f.lines if line.quantity},
                       f.delivery, reuse=f, extra_reason={"released_presale": True})
        orders.refresh(f.order)
    return released
