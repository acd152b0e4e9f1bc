"""The business day. Node capacity and SLA days turn over at local midnight."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

_zone = ZoneInfo("Asia/Shanghai")


def configure(timezone: str) -> None:
    global _zone
    _zone = ZoneInfo(timezone)


def zone() -> ZoneInfo:
    return _zone


def business_day(at: dt.datetime) -> dt.date:
    return at.astimezone(_zone).date()


def stamp(value: dt.datetime | None) -> str | None:
    """RFC 3339 with the business zone's offset, as the API and webhooks show times."""
    return value.astimezone(_zone).isoformat(timespec="milliseconds") if value else None


def wall(value: dt.datetime | None) -> str:
    """An instant as a worker reads it in a message: 11-25 14:05, local time."""
    return value.astimezone(_zone).strftime("%m-%d %H:%M") if value else "-"
