"""SLA numbers: per node and business day, fulfilments shipped on time
against their order's `promised_by`, and the time spent in each stage.

On time: a fulfilment (an order's part at one node) that shipped on that
business day (`clock.business_day(shipped_at)`) at or before its order's
`promised_by`; late: after it; orders without a promise are counted apart
(`no_promise`) and left out of the rate.

Stages, from the outbox's event timestamps:

    reserved -> picking -> picked -> packed -> shipped -> delivered

the time "in reserved" is from `fulfilment.reserved` to `fulfilment.picking`,
and so on to "in shipped" (`fulfilment.shipped` to `fulfilment.delivered`).
A stage ends at the first event of the next stage and starts at the latest
event of its own before that (a fulfilment reserved again after a presale
or re-dispatch counts from the last time). A stage's duration belongs to the
node and business day it ended on. Median, and p90 by linear interpolation
between the closest ranks (numpy's default): p = x[k] + (x[k+1] - x[k]) * f
where k + f = 0.9 * (n - 1).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.fulfilment import clock
from app.models import Event, Fulfilment, Node, Order

FLOW = ("reserved", "picking", "picked", "packed", "shipped", "delivered")
# (stage, the event that starts it, the event that ends it)
STAGES = tuple((a, f"fulfilment.{a}", f"fulfilment.{b}") for a, b in zip(FLOW, FLOW[1:]))
STAGE_NAMES = tuple(s for s, _, _ in STAGES)


@dataclass
class Stage:
    count: int = 0
    median_s: float | None = None
    p90_s: float | None = None


@dataclass
class Row:
    """One node on one business day (`day` None: the whole range)."""

    day: dt.date | None
    node: str
    shipped: int = 0
    on_time: int = 0
    late: int = 0
    no_promise: int = 0
    stages: dict[str, Stage] = field(default_factory=lambda: {s: Stage() for s in STAGE_NAMES})

    @property
    def on_time_rate(self) -> float | None:
        judged = self.on_time + self.late
        return self.on_time / judged if judged else None


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    xs = sorted(values)
    if not xs:
        raise ValueError("no values")
    pos = p * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    zone = clock.zone()
    low = dt.datetime.combine(start, dt.time(), zone)
    high = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone)
    return low.astimezone(dt.timezone.utc), high.astimezone(dt.timezone.utc)


def report(session: Session, start: dt.date, end: dt.date, nodes: list[str] | None = None,
           by_day: bool = True, by_node: bool = True) -> list[Row]:
    """Rows for each (business day, node) with anything shipped or a stage
    ended in [start, end], sorted by day then node; with `by_day` False one
    row per node over the whole range; with `by_node` False the nodes
    (those in `nodes`, or all) together, as node "*"."""
    low, high = _bounds(start, end)
    codes = dict(session.execute(select(Node.id, Node.code)).all())
    wanted = set(nodes) if nodes else None
    rows: dict[tuple[dt.date | None, str], Row] = {}

    def row(day: dt.date, node_id: int | None) -> Row | None:
        code = codes.get(node_id)
        if code is None or (wanted is not None and code not in wanted):
            return None
        key = (day if by_day else None, code if by_node else "*")
        if key not in rows:
            rows[key] = Row(*key)
        return rows[key]

    for node_id, shipped_at, promised_by in session.execute(
            select(Fulfilment.node_id, Fulfilment.shipped_at, Order.promised_by)
            .join(Order, Order.id == Fulfilment.order_id)
            .where(Fulfilment.shipped_at >= low, Fulfilment.shipped_at < high)):
        r = row(clock.business_day(shipped_at), node_id)
        if r is None:
            continue
        r.shipped += 1
        if promised_by is None:
            r.no_promise += 1
        elif shipped_at <= promised_by:
            r.on_time += 1
        else:
            r.late += 1

    durations: dict[tuple[dt.date | None, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for stage, node_id, ended, seconds in stage_durations(session, low, high):
        r = row(clock.business_day(ended), node_id)
        if r is not None:
            durations[(r.day, r.node)][stage].append(seconds)
    for key, per_stage in durations.items():
        for stage, values in per_stage.items():
            rows[key].stages[stage] = Stage(len(values), statistics.median(values), percentile(values, 0.9))
    return sorted(rows.values(), key=lambda r: (r.day or dt.date.min, r.node))


def stage_durations(session: Session, low: dt.datetime, high: dt.datetime
                    ) -> list[tuple[str, int | None, dt.datetime, float]]:
    """(stage, node id, ended at, seconds) for stages that ended in [low, high)."""
    types = [f"fulfilment.{s}" for s in FLOW]
    ending = select(Event.fulfilment_id).where(Event.type.in_(types[1:]), Event.at >= low, Event.at < high,
                                               Event.fulfilment_id.is_not(None)).distinct()
    per_f: dict[int, list[tuple[dt.datetime, int, str, int | None]]] = defaultdict(list)
    for fid, at, seq, type_, node_id in session.execute(
            select(Event.fulfilment_id, Event.at, Event.seq, Event.type, Event.node_id)
            .where(Event.fulfilment_id.in_(ending), Event.type.in_(types), Event.at < high)
            .order_by(Event.fulfilment_id, Event.seq)):
        per_f[fid].append((at, seq, type_, node_id))
    out = []
    for evs in per_f.values():
        for stage, opens, closes in STAGES:
            end = next((e for e in evs if e[2] == closes), None)
            if end is None or not low <= end[0] < high:
                continue
            begin = [e for e in evs if e[2] == opens and e[1] < end[1]]
            if not begin:
                continue
            out.append((stage, end[3], end[0], (end[0] - begin[-1][0]).total_seconds()))
    return out


# --- export ------------------------------------------------------------------------------

def csv_header() -> list[str]:
    head = ["day", "node", "shipped", "on_time", "late", "no_promise", "on_time_pct"]
    for s in STAGE_NAMES:
        head += [f"{s}_count", f"{s}_median_s", f"{s}_p90_s"]
    return head


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def csv_rows(rows: list[Row]) -> list[list[str]]:
    """The header and one line per row, as strings (empty: no data)."""
    out = [csv_header()]
    for r in rows:
        rate = r.on_time_rate
        line = [r.day.isoformat() if r.day else "all", r.node, str(r.shipped), str(r.on_time), str(r.late),
                str(r.no_promise), "" if rate is None else f"{rate * 100:.1f}"]
        for s in STAGE_NAMES:
            st = r.stages[s]
            line += [str(st.count), _num(st.median_s), _num(st.p90_s)]
        out.append(line)
    return out


def to_csv(rows: list[Row]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(csv_rows(rows))
    return buf.getvalue()


def as_dict(r: Row) -> dict:
    return {"day": r.day.isoformat() if r.day else None, "node": r.node, "shipped": r.shipped,
            "on_time": r.on_time, "late": r.late, "no_promise": r.no_promise, "on_time_rate": r.on_time_rate,
            "stages": {s: {"count": st.count, "median_s": st.median_s, "p90_s": st.p90_s}
                       for s, st in r.stages.items()}}
