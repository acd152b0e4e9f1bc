"""Carrier adapters: who takes a parcel, and the tracking number they issue.

A real courier integration implements `Carrier` (issue a number, say where to
track it) and registers itself in `CARRIERS`. The built-in ones serve the demo
and stores without an integration: numbers carry a mod-10 check digit so a
mistyped one is caught at the outbound scan.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from app.barcodes import gs1_check_digit
from app.models import Delivery


class Carrier(Protocol):
    code: str
    name: str
    service: str

    def tracking_number(self, serial: int) -> str: ...

    def tracking_url(self, tracking_number: str) -> str: ...

    def owns(self, tracking_number: str) -> bool: ...


@dataclass(frozen=True)
class BuiltinCarrier:
    code: str
    name: str
    service: str
    prefix: str
    url: str

    def tracking_number(self, serial: int) -> str:
        body = f"{serial:011d}"
        return f"{self.prefix}{body}{gs1_check_digit(body)}"

    def tracking_url(self, tracking_number: str) -> str:
        return self.url.format(tracking_number)

    def owns(self, tracking_number: str) -> bool:
        digits = tracking_number[len(self.prefix):]
        return (tracking_number.startswith(self.prefix) and len(digits) == 12 and digits.isdigit()
                and gs1_check_digit(digits[:-1]) == int(digits[-1]))


CARRIERS: dict[str, Carrier] = {
    "ly-express": BuiltinCarrier("ly-express", "履约快递 LY Express", "标准快递 Standard", "LY",
                                 "https://track.luyue.example/{}"),
    "ly-rider": BuiltinCarrier("ly-rider", "同城配 Same-city rider", "同城即时 Same day", "SC",
                               "https://track.luyue.example/{}"),
}

# Which carrier a parcel goes with, by the fulfilment's delivery mode.
BY_DELIVERY: dict[Delivery, str] = {Delivery.express: "ly-express", Delivery.same_city: "ly-rider"}


def carrier_for(delivery: Delivery) -> Carrier:
    return CARRIERS[BY_DELIVERY[delivery]]


def carrier(code: str) -> Carrier | None:
    return CARRIERS.get(code)
