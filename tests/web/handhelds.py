"""Helpers for the handheld web tests: the picking floor and a picker's handheld."""
from __future__ import annotations

import re
from typing import Any

import support
from sqlalchemy import select

from app.barcodes import ean13
from app.models import Fulfilment

# SKU -> barcode (EAN-13; SKU-C also has a second, in-house code).
BARCODES = {"SKU-A": ean13("690123400001"), "SKU-B": ean13("690123400002"), "SKU-C": ean13("690123400003"),
            "SKU-D": ean13("690123400004"), "SKU-E": ean13("690123400005")}
EXTRA_BARCODES = {"SKU-C": ["C-INHOUSE-3"]}
# SH-PD: aisle A-01 walked up, A-02 down, B-01 up again (serpentine).
BINS = [("A-01-01-1", "SKU-A", 10), ("A-01-05-1", "SKU-B", 10), ("A-02-02-1", "SKU-C", 10),
        ("A-02-07-1", "SKU-D", 10), ("B-01-03-1", "SKU-E", 3)]
USERS = [("P1", "张伟", "picker", "1111", "SH-PD", "zh"), ("P2", "Tom Wilson", "picker", "2222", "SH-PD", "en"),
         ("L1", "李娜", "lead", "3333", "SH-PD", "zh"), ("J1", "王芳", "picker", "4444", "SH-JD", "zh"),
         ("K1", "Kim", "packer", "5555", "SH-PD", "en")]


class Floor:
    def __init__(self, db, headers):
        self.db = db
        self.headers = headers

    def order(self, client, external_id: str, lines: list[tuple[str, int]], promised_by: str) -> str:
        """Submit an order; returns the ref of its (single) fulfilment."""
        body = support.order_body(external_id, lines, promised_by=promised_by)
        answer = client.post("/api/v1/orders", json=body, headers=self.headers)
        assert answer.status_code == 201, answer.get_json()
        fulfilments = answer.get_json()["fulfilments"]
        assert [f["status"] for f in fulfilments] == ["reserved"], fulfilments
        return fulfilments[0]["id"]

    def document(self, client, external_id: str) -> dict[str, Any]:
        return client.get(f"/api/v1/orders/{external_id}", headers=self.headers).get_json()

    def status(self, ref: str) -> str:
        with self.db.reading() as s:
            return s.scalar(select(Fulfilment.status).where(Fulfilment.ref == ref)).value


def login(client, badge: str, pin: str) -> None:
    answer = client.post("/login/pin", data={"badge": badge, "pin": pin})
    assert answer.status_code == 302, answer.get_data(as_text=True)


HX = {"HX-Request": "true"}


class Handheld:
    """One picker's handheld: scans as the Scan field sends them (htmx)."""

    def __init__(self, client):
        self.client = client
        self.n = 0

    def _id(self) -> str:
        self.n += 1
        return f"test-scan-{id(self)}-{self.n:04d}"

    def scan(self, code: str, scan_id: str | None = None):
        return self.client.post("/pick/scan", data={"scan": code, "scan_id": scan_id or self._id()}, headers=HX)

    def quantity(self, n: int | str, scan_id: str | None = None):
        return self.client.post("/pick/quantity", data={"quantity": str(n), "scan_id": scan_id or self._id()},
                                headers=HX)

    def short(self, scan_id: str | None = None):
        return self.client.post("/pick/short", data={"scan_id": scan_id or self._id()}, headers=HX)

    def claim(self, orders: int = 4):
        return self.client.post("/pick/claim", data={"orders": str(orders)}, headers=HX)

    def screen(self):
        return self.client.get("/pick/work", headers=HX)


def text(answer) -> str:
    """The page's visible words, tags dropped and whitespace collapsed."""
    html = answer.get_data(as_text=True)
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def refusal_of(answer) -> str | None:
    found = re.search(r'data-refusal="([a-z_]+)"', answer.get_data(as_text=True))
    return found.group(1) if found else None


def step_of(answer) -> str | None:
    found = re.search(r'data-step="([a-z]+)"', answer.get_data(as_text=True))
    return found.group(1) if found else None



# --- the floor's state, read straight from the database ---------------------------------

def scans_recorded(db) -> int:
    from sqlalchemy import func

    from app.models import ScanRecord
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(ScanRecord))


def bin_count(db, location: str, sku: str) -> int:
    from app.models import BinStock, Location, Sku
    with db.reading() as s:
        return s.scalar(select(BinStock.on_hand).join(Location, Location.id == BinStock.location_id)
                        .join(Sku, Sku.id == BinStock.sku_id).where(Location.code == location, Sku.code == sku))


def lines_of(db, ref: str | None = None) -> list[tuple[str, str, int, int, str]]:
    """(location, sku, quantity, picked, step) of a list's lines in walk order
    (the only list when ref is None)."""
    from app.models import PickList
    with db.reading() as s:
        query = select(PickList)
        if ref is not None:
            query = query.where(PickList.ref == ref)
        pl = s.scalars(query).one()
        return [(line.location.code, line.sku.code, line.quantity, line.picked, line.step.value)
                for line in pl.lines]


def pick_through(hh: "Handheld", floor_codes: list[str]) -> None:
    """Scan codes that must all be accepted."""
    for code in floor_codes:
        answer = hh.scan(code)
        assert answer.status_code == 200, (code, refusal_of(answer), text(answer))
