"""Split (拆单): one order into the parts that are fulfilled separately.

Lines for sale now form one part, dispatched together (dispatch may split it
further across nodes). Presale lines form one part per release time, held in
`awaiting_release` until then. Lines of the same SKU are added together.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from app.models import Order


@dataclass
class Part:
    release_at: dt.datetime | None
    lines: dict[int, int] = field(default_factory=dict)  # sku_id -> quantity


def split(order: Order, now: dt.datetime) -> list[Part]:
    parts: dict[dt.datetime | None, Part] = {}
    for line in order.lines:
        release = line.presale_release_at
        if release is not None and release <= now:
            release = None  # already released: ships like any other line
        part = parts.setdefault(release, Part(release))
        part.lines[line.sku_id] = part.lines.get(line.sku_id, 0) + line.quantity
    return sorted(parts.values(), key=lambda p: (p.release_at is not None, p.release_at or now))
