"""The leads' SLA report: thin views over `app.fulfilment.sla`.

    /reports/sla      a range of business days, one node or all (an admin; a
                      lead sees their own node only): shipped on
                      time / late per day (stacked bars), median and p90 time
                      in each stage (bars), the table per day and node
    /reports/sla.csv  the same rows as CSV (`sla.to_csv`); without a node,
                      the user's node (an admin: every node)

Charts are SVG drawn on the server: no script, nothing to build, they print.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace

from flask import Blueprint, Response, g, request
from sqlalchemy import select

from app.fulfilment import clock, sla
from app.fulfilment.errors import Refusal
from app.fulfilment.intake import invalid
from app.fulfilment.scope import NodeScope
from app.models import Node
from app.web import database
from app.web.handheld import render_screen

bp = Blueprint("reports", __name__, url_prefix="/reports")

MAX_DAYS = 92


@dataclass(frozen=True)
class Query:
    start: dt.date
    end: dt.date
    node: str | None  # None: every node together

    @property
    def args(self) -> dict[str, str]:
        out = {"from": self.start.isoformat(), "to": self.end.isoformat()}
        if self.node:
            out["node"] = self.node
        return out


def _query(default_node: str | None) -> Query:
    today = clock.business_day(dt.datetime.now(dt.timezone.utc))
    errors, days = [], {}
    for name, default in (("from", today - dt.timedelta(days=6)), ("to", today)):
        raw = (request.args.get(name) or "").strip()
        try:
            days[name] = dt.date.fromisoformat(raw) if raw else default
        except ValueError:
            errors.append((name, "expected a date YYYY-MM-DD"))
    if not errors and not days["from"] <= days["to"] < days["from"] + dt.timedelta(days=MAX_DAYS):
        errors.append(("to", f"expected a date from `from` to {MAX_DAYS - 1} days after it"))
    if errors:
        raise invalid(errors)
    node = request.args.get("node", default_node or "")
    return Query(days["from"], days["to"], node or None)


def _my_node() -> str | None:
    return g.user.node.code if g.user is not None and g.user.node is not None else None


def _visible(s) -> list[str]:
    """The codes of the nodes the user may report on (their scope)."""
    return list(s.scalars(select(Node.code).where(NodeScope.of(g.user).where(Node.id)).order_by(Node.code)))


def _scoped(q: Query, visible: list[str]) -> Query:
    """The query within the user's scope: no node named means every node
    for an admin, the user's own for anyone else; a node they may not see
    is refused as unknown (before its name reaches a header)."""
    if q.node is None:
        return q if NodeScope.of(g.user).everywhere else replace(q, node=_my_node())
    if q.node not in visible:
        raise Refusal("not_found", what=f"node {q.node[:64]!r}")
    return q


def duration(seconds: float | None) -> str:
    """1 h 05 min, 12 min, 45 s."""
    if seconds is None:
        return "—"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min"
    return f"{s} s"


# --- charts ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    kind: str
    title: str


def day_chart(rows: list[sla.Row], start: dt.date, end: dt.date, width: int = 420, height: int = 200) -> dict:
    """Shipped per day, stacked: on time, late, no promise."""
    by_day = {r.day: r for r in rows}
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    top = max([by_day[d].shipped for d in days if d in by_day] + [1])
    left, plot_h = 36, height - 28 - 12
    step = (width - left - 8) / len(days)
    bars, labels = [], []
    for i, day in enumerate(days):
        r = by_day.get(day)
        x = left + i * step + step * 0.15
        y = 12 + plot_h
        for kind, n in (("on_time", r.on_time if r else 0), ("late", r.late if r else 0),
                        ("no_promise", r.no_promise if r else 0)):
            if n:
                h = plot_h * n / top
                y -= h
                bars.append(Bar(x, y, step * 0.7, h, kind, f"{day:%m-%d} {kind}: {n}"))
        every = max(1, -(-len(days) // 7))
        if i % every == 0:
            labels.append((left + i * step + step / 2, f"{day:%m-%d}"))
    ticks = [(12 + plot_h - plot_h * v / top, v) for v in sorted({0, top // 2, top})]
    return {"width": width, "height": height, "bars": bars, "labels": labels, "ticks": ticks, "left": left,
            "baseline": 12 + plot_h}


def stage_chart(row: sla.Row | None, width: int = 420, row_h: int = 30) -> dict:
    """Median (bar) and p90 (tick) seconds in each stage."""
    stages = [(name, row.stages[name] if row else sla.Stage()) for name in sla.STAGE_NAMES]
    top = max([st.p90_s or 0 for _n, st in stages] + [1])
    left, right = 70, 118
    plot_w = width - left - right
    items = []
    for i, (name, st) in enumerate(stages):
        y = 8 + i * row_h
        items.append({"name": name, "y": y, "h": row_h - 12, "count": st.count,
                      "median_w": plot_w * (st.median_s or 0) / top, "p90_x": left + plot_w * (st.p90_s or 0) / top,
                      "median": duration(st.median_s), "p90": duration(st.p90_s)})
    return {"width": width, "height": 8 + len(stages) * row_h, "left": left, "items": items,
            "text_x": left + plot_w + 8}


STAGE_LABELS = {"reserved": "reserved → picking", "picking": "picking → picked", "picked": "picked → packed",
                "packed": "packed → shipped", "shipped": "shipped → delivered"}


# --- views -----------------------------------------------------------------------------------

@bp.get("/sla")
def sla_page():
    """The report page; bad dates answer 422 with the form and the message."""
    try:
        q = _query(_my_node())
    except Refusal as refusal:
        q = Query(clock.business_day(dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=6),
                  clock.business_day(dt.datetime.now(dt.timezone.utc)), _my_node())
        return _render(q, refusal)
    return _render(q)


def _render(q: Query, refusal: Refusal | None = None):
    with database().reading() as s:
        nodes = _visible(s)
        q = _scoped(q, nodes)
        chosen = [q.node] if q.node else None
        per_day_all = sla.report(s, q.start, q.end, chosen, by_day=True, by_node=False)
        whole = sla.report(s, q.start, q.end, chosen, by_day=False, by_node=False)
        table = sla.report(s, q.start, q.end, chosen, by_day=True, by_node=True)
    total = whole[0] if whole else None
    return render_screen(
        "reports/sla.html", 422 if refusal else 200, q=q, nodes=nodes, refusal=refusal, total=total,
        every_node=NodeScope.of(g.user).everywhere,
        days=day_chart(per_day_all, q.start, q.end), stages=stage_chart(total), table=table,
        stage_names=sla.STAGE_NAMES, stage_labels=STAGE_LABELS, duration=duration)


@bp.get("/sla.csv")
def sla_csv():
    q = _query(None)
    with database().reading() as s:
        q = _scoped(q, _visible(s))
        rows = sla.report(s, q.start, q.end, [q.node] if q.node else None)
    # A header is never built from what was typed: the node's code only as
    # letters, digits and dashes.
    node = re.sub(r"[^A-Za-z0-9_-]", "_", q.node) if q.node else ""
    name = f"sla-{q.start.isoformat()}-{q.end.isoformat()}{'-' + node if node else ''}.csv"
    return Response(sla.to_csv(rows), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})

