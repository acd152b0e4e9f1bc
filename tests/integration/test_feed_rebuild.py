"""The feed suffices: a platform that reads only GET /api/v1/events keeps
every order right. A realistic run (a split order delivered, received and
partly returned; one awaiting stock until a count brings it; a presale
release; a short pick re-dispatched to another node; a cancel that
intercepts a packed parcel; a partial cancel after one part shipped) is
rebuilt from the feed alone and compared with GET /api/v1/orders/{id}."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from werkzeug.security import generate_password_hash

from app import access, masterdata
from app.fulfilment import intake, pack, pick, returns, ship
from app.models import Barcode, Disposition, Fulfilment, FulfilmentStatus, Handover, Node, Role, Sku, User
from racing import race
from support import PLACES, check_invariants, count, order_body, set_status, world

PREFIX = "6901234"
PIN_HASH = generate_password_hash("1234", "pbkdf2:sha256:1000")  # cheap: scrypt per user would dominate
SKUS = ["SKU-A", "SKU-B", "SKU-C", "SKU-P", "SKU-W"]
# (badge, role, node)
USERS = [("P1", "picker", "SH-PD"), ("K1", "packer", "SH-PD"), ("D1", "dock", "SH-PD"),
         ("P2", "picker", "SH-JD"), ("K2", "packer", "SH-JD"), ("D2", "dock", "SH-JD")]


def gtin(n: int) -> str:
    body = f"690123400{n:03d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


GTIN = {sku: gtin(i + 1) for i, sku in enumerate(SKUS)}


# --- the run, through the API and the floor's domain functions ---------------------------------

def floor(db) -> None:
    """SH-PD (near): SKU-A, two of SKU-C in one bin. SH-JD (32 km): SKU-B and
    SKU-C. SKU-P is a presale SKU at SH-PD; SKU-W is nowhere yet."""
    world(db, {"SH-PD": {"SKU-A": 50, "SKU-C": 2}, "SH-JD": {"SKU-B": 50, "SKU-C": 5}},
          nodes={code: PLACES[code] for code in ("SH-PD", "SH-JD")}, skus=SKUS)
    with db.transaction() as s:
        masterdata.put_sku(s, "SKU-P", masterdata.SkuBody(name="预售商品", presale=True))
    count(db, "SH-PD", {"SKU-P": 5}, location="A-09-01-1")
    with db.transaction() as s:
        for sku, code in GTIN.items():
            s.add(Barcode(code=code, sku_id=s.scalar(select(Sku.id).where(Sku.code == sku))))
        nodes = {n.code: n.id for n in s.scalars(select(Node))}
        for badge, role, node in USERS:
            s.add(User(code=badge, name=badge, role=Role(role), node_id=nodes[node], pin_hash=PIN_HASH,
                       language="en"))


def user(s, badge: str) -> User:
    return s.scalar(select(User).where(User.code == badge))


def submit(client, headers, external_id: str, lines, **extra) -> dict[str, Any]:
    answer = client.post("/api/v1/orders", json=order_body(external_id, lines, **extra), headers=headers)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def document(client, headers, external_id: str) -> dict[str, Any]:
    answer = client.get(f"/api/v1/orders/{external_id}", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def ref_at(client, headers, external_id: str, node: str, status: str) -> str:
    [ref] = [f["id"] for f in document(client, headers, external_id)["fulfilments"]
             if (f["node"], f["status"]) == (node, status)]
    return ref


def pick_all(db, picker: str, tote: str, short_sku: str | None = None) -> None:
    """The picker claims the next list and picks it scan by scan; with
    `short_sku`, the bin of that SKU is reported short after one unit."""
    with db.transaction() as s:
        pick.claim_next(s, user(s, picker), 1)
    shorted = False
    for n in range(100):
        with db.transaction() as s:
            me = user(s, picker)
            pl = pick.held_by(s, me)
            if pl is None:
                return
            if pick.next_tote_slot(pl) is not None:
                pick.scan(s, me, f"{tote}-{n}", tote)
                continue
            line = pick.current_line(pl)
            if (line.sku.code == short_sku and not shorted and line.picked >= 1
                    and line.step.value in ("product", "quantity")):
                pick.short_pick(s, me, f"{tote}-{n}")
                shorted = True
                continue
            code = {"location": line.location.code, "product": GTIN[line.sku.code],
                    "quantity": GTIN[line.sku.code], "tote": pick.slot_of(pl, line).tote}[line.step.value]
            pick.scan(s, me, f"{tote}-{n}", code)
    raise AssertionError("the list does not end")


def packed(db, ref: str, packer: str) -> str:
    """Every unit of fulfilment `ref` into one parcel, closed; its tracking number."""
    with db.transaction() as s:
        f = s.scalar(select(Fulfilment).where(Fulfilment.ref == ref))
        for line in f.lines:
            if line.quantity:
                pack.scan_item(s, f, GTIN[line.sku.code], quantity=line.quantity)
        return pack.close_parcel(s, f, 800, user(s, packer), PREFIX).tracking_number


def shipped(db, node: str, dock: str, *numbers: str) -> None:
    with db.transaction() as s:
        handover = ship.open_handover(s, s.scalar(select(Node).where(Node.code == node)), "ly-express",
                                      user(s, dock))
        for number in numbers:
            ship.scan_parcel(s, handover, number, user(s, dock))
        ship.close_handover(s, handover, user(s, dock))


def reported(client, carrier_headers, number: str, status: str, at: dt.datetime) -> None:
    answer = client.post("/api/v1/carrier-events", headers=carrier_headers, json={"events": [
        {"tracking_number": number, "status": status, "at": at.isoformat(), "description": status}]})
    assert answer.status_code == 200, answer.get_json()
    assert [r["result"] for r in answer.get_json()["results"]] == ["applied"]


def run(db, client, headers, carrier_headers) -> list[str]:
    now = dt.datetime.now(dt.timezone.utc)

    # A split order: SKU-A from SH-PD, SKU-B from SH-JD; both shipped, delivered
    # (the carrier's API), received by the customer, one unit returned.
    doc = submit(client, headers, "O-SPLIT", [("SKU-A", 2), ("SKU-B", 1)])
    assert sorted(f["node"] for f in doc["fulfilments"]) == ["SH-JD", "SH-PD"]
    pick_all(db, "P1", "T-01")
    pick_all(db, "P2", "T-02")
    split_pd = packed(db, ref_at(client, headers, "O-SPLIT", "SH-PD", "picked"), "K1")
    split_jd = packed(db, ref_at(client, headers, "O-SPLIT", "SH-JD", "picked"), "K2")
    shipped(db, "SH-PD", "D1", split_pd)
    shipped(db, "SH-JD", "D2", split_jd)
    reported(client, carrier_headers, split_pd, "in_transit", now - dt.timedelta(minutes=50))
    reported(client, carrier_headers, split_pd, "delivered", now - dt.timedelta(minutes=10))
    reported(client, carrier_headers, split_jd, "delivered", now - dt.timedelta(minutes=5))
    assert client.post("/api/v1/orders/O-SPLIT/receipt", headers=headers).status_code == 200
    answer = client.post("/api/v1/orders/O-SPLIT/returns", headers=headers, json={
        "return_id": "RT-1", "reason": "不想要了", "lines": [{"sku": "SKU-A", "quantity": 2}]})
    assert answer.status_code == 201, answer.get_json()
    [ret] = answer.get_json()["returns"]
    for n, disposition in enumerate([Disposition.sellable, Disposition.damaged]):
        with db.transaction() as s:
            returns.receive_units(s, user(s, "D1"), f"rma-{n}", s.scalar(select(Node).where(Node.code == "SH-PD")),
                                  ret["ref"], "SKU-A", 1, disposition, "A-01-01-1")
        if n == 0:  # half received: the feed says so too
            assert_mirrored(client, headers, ["O-SPLIT"])

    # Awaiting stock until a count brings SKU-W to SH-PD; shipped, in transit.
    doc = submit(client, headers, "O-WAIT", [("SKU-W", 1)])
    assert [f["status"] for f in doc["fulfilments"]] == ["awaiting_stock"]
    count(db, "SH-PD", {"SKU-W": 3}, location="A-08-01-1")
    pick_all(db, "P1", "T-03")
    wait_tn = packed(db, ref_at(client, headers, "O-WAIT", "SH-PD", "picked"), "K1")
    shipped(db, "SH-PD", "D1", wait_tn)
    reported(client, carrier_headers, wait_tn, "in_transit", now)

    # A short pick: one of two SKU-C at SH-PD's bin; the other goes to SH-JD.
    # The SH-PD part ships: the order is partially shipped.
    submit(client, headers, "O-SHORT", [("SKU-C", 2)])
    pick_all(db, "P1", "T-04", short_sku="SKU-C")
    short_tn = packed(db, ref_at(client, headers, "O-SHORT", "SH-PD", "picked"), "K1")
    shipped(db, "SH-PD", "D1", short_tn)

    # Packed, then cancelled: the parcel is intercepted.
    submit(client, headers, "O-INTERCEPT", [("SKU-A", 1)])
    pick_all(db, "P1", "T-05")
    packed(db, ref_at(client, headers, "O-INTERCEPT", "SH-PD", "picked"), "K1")
    assert client.post("/api/v1/orders/O-INTERCEPT/cancel", headers=headers).status_code == 200

    # A partial cancel: the SH-PD part shipped, the SH-JD part is cancelled.
    submit(client, headers, "O-PARTIAL", [("SKU-A", 1), ("SKU-B", 1)])
    pick_all(db, "P1", "T-06")
    partial_tn = packed(db, ref_at(client, headers, "O-PARTIAL", "SH-PD", "picked"), "K1")
    shipped(db, "SH-PD", "D1", partial_tn)
    assert client.post("/api/v1/orders/O-PARTIAL/cancel", headers=headers).status_code == 200

    # Presale: awaiting its release, then dispatched when it comes.
    release_at = now + dt.timedelta(days=2)
    submit(client, headers, "O-PRESALE",
           [{"sku": "SKU-P", "quantity": 1, "presale_release_at": release_at.isoformat()}],
           promised_by=(now + dt.timedelta(days=4)).isoformat())
    with db.transaction() as s:
        assert intake.release_due(s, now=release_at) == 1

    return ["O-SPLIT", "O-WAIT", "O-SHORT", "O-INTERCEPT", "O-PARTIAL", "O-PRESALE"]


# --- the platform's side: the feed alone ---------------------------------------------------------

def whole_feed(client, headers) -> list[dict[str, Any]]:
    events, after = [], 0
    while True:
        page = client.get("/api/v1/events", query_string={"after": after, "limit": 50}, headers=headers).get_json()
        if not page["events"]:
            return events
        events += page["events"]
        after = page["next_after"]


def rebuilt(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each order as a platform keeps it, applying each event's data in seq order."""
    orders: dict[str, dict[str, Any]] = {}
    for e in events:
        order = orders.setdefault(e["order"], {"status": None, "fulfilments": {}, "returns": {}})
        data = e["data"]
        if e["type"] == "order.status_changed":
            order["status"] = data["status"]
        elif e["type"].startswith("fulfilment.") or e["type"] == "pick.short":
            f = order["fulfilments"].setdefault(e["fulfilment"], {"parcels": {}})
            f.update(node=data["node"], status=data["status"], lines=data["lines"])
        elif e["type"].startswith("parcel."):
            f = order["fulfilments"].setdefault(e["fulfilment"], {"parcels": {}})
            f["parcels"][data["tracking_number"]] = {"tracking_number": data["tracking_number"],
                                                     "carrier": data["carrier"], "status": data["parcel_status"]}
        elif e["type"].startswith("return."):
            order["returns"][data["return_id"]] = {k: v for k, v in data.items() if k not in ("by", "unit")}
    return orders


def as_read(doc: dict[str, Any]) -> dict[str, Any]:
    """The same fields of GET /orders/{id}."""
    return {
        "status": doc["status"],
        "fulfilments": {f["id"]: {"node": f["node"], "status": f["status"], "lines": f["lines"],
                                  "parcels": {p["tracking_number"]: {k: p[k] for k in ("tracking_number", "carrier",
                                                                                       "status")}
                                              for p in f["parcels"]}}
                        for f in doc["fulfilments"]},
        "returns": {r["return_id"]: r for r in doc["returns"]},
    }


def assert_mirrored(client, headers, external_ids, feed=None) -> None:
    """Each order rebuilt from the feed equals its GET."""
    mirror = rebuilt(feed if feed is not None else whole_feed(client, headers))
    for ext in external_ids:
        assert mirror[ext] == as_read(document(client, headers, ext)), ext


def test_every_order_of_a_realistic_run_is_rebuilt_from_the_feed_alone(db, client, headers):
    floor(db)
    with db.transaction() as s:
        carrier_headers = {"Authorization": f"Bearer {access.create_carrier_token(s, 'ly-express')}"}
    external_ids = run(db, client, headers, carrier_headers)

    docs = {ext: document(client, headers, ext) for ext in external_ids}
    # The run went where it should (else the comparison proves little).
    assert {ext: d["status"] for ext, d in docs.items()} == {
        "O-SPLIT": "completed", "O-WAIT": "shipped", "O-SHORT": "partially_shipped",
        "O-INTERCEPT": "cancelled", "O-PARTIAL": "shipped", "O-PRESALE": "in_fulfilment"}
    statuses = {ext: sorted((f["node"], f["status"]) for f in d["fulfilments"]) for ext, d in docs.items()}
    assert statuses["O-SHORT"] == [("SH-JD", "reserved"), ("SH-PD", "shipped")]
    assert statuses["O-PARTIAL"] == [("SH-JD", "cancelled"), ("SH-PD", "shipped")]
    assert [p["status"] for f in docs["O-INTERCEPT"]["fulfilments"] for p in f["parcels"]] == ["intercepted"]
    assert {p["status"] for f in docs["O-SPLIT"]["fulfilments"] for p in f["parcels"]} == {"delivered"}
    assert [p["status"] for f in docs["O-WAIT"]["fulfilments"] for p in f["parcels"]] == ["in_transit"]
    assert [(r["status"], r["lines"][0]["sellable"], r["lines"][0]["damaged"])
            for r in docs["O-SPLIT"]["returns"]] == [("received", 1, 1)]

    feed = whole_feed(client, headers)
    types = {e["type"] for e in feed}
    assert {"fulfilment.awaiting_stock", "fulfilment.awaiting_release", "fulfilment.redispatched", "pick.short",
            "fulfilment.intercepted", "parcel.intercepted", "order.partially_cancelled", "parcel.delivered",
            "fulfilment.completed", "return.authorised", "return.counted", "return.received"} <= types
    for e in feed:
        if e["type"].startswith("fulfilment.") or e["type"] == "pick.short":
            assert {"node", "status", "lines"} <= set(e["data"]), e
        if e["type"].startswith("parcel."):
            assert {"tracking_number", "carrier", "status", "parcel_status"} <= set(e["data"]), e
    assert set(rebuilt(feed)) == set(external_ids)
    assert_mirrored(client, headers, external_ids, feed)
    check_invariants(db)


# --- two changes of one order at once ------------------------------------------------------------

ROUNDS = 20


def test_two_parts_of_a_split_order_shipped_at_once_tell_each_status_change_once_in_order(db, client, headers):
    """Two docks scan out the two parts of one order together (SH-PD's and
    SH-JD's), ROUNDS times: the feed says in_fulfilment, partially_shipped,
    shipped, each `previous` the status before, whichever commits first;
    never a change twice or a stale `previous`."""
    floor(db)
    numbers = {}
    for r in range(ROUNDS):
        ext = f"R-{r:02d}"
        submit(client, headers, ext, [("SKU-A", 1), ("SKU-B", 1)])
        set_status(db, ext, FulfilmentStatus.picked)
        numbers[ext] = (packed(db, ref_at(client, headers, ext, "SH-PD", "picked"), "K1"),
                        packed(db, ref_at(client, headers, ext, "SH-JD", "picked"), "K2"))
    with db.transaction() as s:  # the handovers exist before: the race is over the order
        handovers = {code: ship.open_handover(s, s.scalar(select(Node).where(Node.code == code)), "ly-express",
                                              user(s, dock)).id for code, dock in (("SH-PD", "D1"), ("SH-JD", "D2"))}

    def scan(node: str, dock: str, number: str):
        return lambda s: ship.scan_parcel(s, s.get(Handover, handovers[node]), number, user(s, dock)).tracking_number

    for ext, (pd, jd) in numbers.items():
        assert race(db, scan("SH-PD", "D1", pd), scan("SH-JD", "D2", jd)) == [pd, jd]
        said = [(e["data"]["previous"], e["data"]["status"]) for e in whole_feed(client, headers)
                if e["order"] == ext and e["type"] == "order.status_changed"]
        assert said == [(None, "in_fulfilment"), ("in_fulfilment", "partially_shipped"),
                        ("partially_shipped", "shipped")], (ext, said)
        assert document(client, headers, ext)["status"] == "shipped"
    check_invariants(db)
