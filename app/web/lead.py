"""The shift lead's dashboard (班组长看板): where work piles up, live.

Screens (lead and admin only; an admin may look at any node):
    dashboard   /lead?node=CODE   fulfilments per stage with the oldest of each,
                                  promises late or due soon, exceptions, pick
                                  lists being picked (release), holds, each
                                  picker's and packer's lines per hour
    fulfilment  /lead/f/<ref>     lines, dispatch reasons (candidates and
                                  scores), lineage, holds, events; re-dispatch,
                                  hold, release the hold; the order's customer
                                  returns, and authorise a return of delivered
                                  units
    returns     /lead/returns     customer returns expected at the node, and
                                  returned units held out of stock there
                                  (quarantined, damaged)
    find        /lead/find?q=     a fulfilment by its ref or its order's id
    counts      /lead/counts      cycle counts: variances over the limit to
                                  approve, recount or reject; counts asked for
                                  (ask for one: a bin and a SKU); recent
                                  counts in the books with their variances

Live: the dashboard opens `/lead/live?node=<code>&after=<seq>` with htmx's ws
extension. Every message carries the panels as out-of-band swaps by element
id (full counts, never increments), the exceptions after the last seq the
socket sent, newest first, and `#lead-seq` with the seq they reach. A page
that reconnects (static/js/lead.js puts its last seq in the URL) is sent the
full panels again and exactly the exceptions it missed, from the outbox.

Fan-out: the process's hub (`app.live`) wakes every socket on a commit in
any process; the node's view is made once per wake by `live.Shared` and its
HTML rendered once per language, then sent by each socket. A socket only
asks the database itself to replay exceptions older than the view carries.
"""
from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import access, sock
from app.fulfilment import clock, count, customer_returns, events, hold, orders, pick, queues, redispatch, returns
from app.fulfilment.errors import Refusal
from app.fulfilment.queues import NodeView
from app.fulfilment.scope import NodeScope
from app.live import Shared, close_if_stopping, hub as live_hub, stopping
from app.models import Node, Order, Role, Sku, StockCount, User, utcnow
from app.web import authorisation, database
from app.web.auth import ROLE_HOME
from app.web.handheld import render_screen, current_user as _me

bp = Blueprint("lead", __name__, url_prefix="/lead")
ROLE_HOME[Role.lead] = "lead.dashboard"

SCREENS = "lead/"
# Ages, promises and rates are re-read this often even when nothing commits.
REFRESH_SECONDS = 30.0
# A quiet socket looks this often whether its client is still there.
POLL_SECONDS = 2.0
# The hold lengths a lead can choose (hours; None: until released).
HOLD_HOURS = (None, 1, 4, 24)
# A websocket close code the ws extension does not retry: not allowed here.
CLOSE_NOT_ALLOWED = 1008


@bp.errorhandler(Refusal)
def _refused(refusal: Refusal):
    return render_screen("handheld/refused.html", refusal.status, refusal=refusal)


# --- which node --------------------------------------------------------------------------

def _node(s: Session, user: User, code: str | None) -> Node:
    """The lead's own node; an admin (whose scope is every node) may name another."""
    if code and NodeScope.of(user).everywhere:
        node = s.scalar(select(Node).where(Node.code == code))
        if node is None:
            raise Refusal("not_found", what=f"node {code}")
        return node
    return s.get(Node, user.node_id)


def _can_act(node_id: int) -> bool:
    return NodeScope.of(g.user).covers(node_id)


def _shift_hours() -> float:
    return current_app.config["LUYUE"].session_hours


# --- shared views and fragments ----------------------------------------------------------

_setup_lock = threading.Lock()


def _views() -> Shared[int, NodeView]:
    """This process's node views, shared by every dashboard socket and page."""
    app = current_app._get_current_object()
    with _setup_lock:
        views = app.extensions.get("luyue.lead_views")
        if views is None:
            def compute(node_id: int, previous: NodeView | None, seq: int) -> NodeView:
                hours = app.config["LUYUE"].session_hours
                with app.extensions["luyue.db"].reading() as s:
                    if previous is None:
                        return queues.view(s, node_id, seq, shift_hours=hours)
                    stale = utcnow() - previous.snapshot.at >= dt.timedelta(seconds=REFRESH_SECONDS)
                    return queues.advance(s, previous, seq, shift_hours=hours, refresh=stale)

            views = app.extensions["luyue.lead_views"] = Shared(live_hub(app), compute, REFRESH_SECONDS)
    return views


class _Fragments:
    """HTML shared by the sockets of a node: the panels rendered once per
    (node, version, language, may act), each exception once per (seq,
    language). Rendering holds the lock, so it is never done twice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._panels: dict[tuple, str] = {}
        self._items: OrderedDict[tuple, str] = OrderedDict()

    def panels(self, view: NodeView, can_act: bool) -> str:
        key = (view.node_id, view.version, g.language, can_act)
        with self._lock:
            html = self._panels.get(key)
            if html is None:
                # Older versions of this node are not asked for again.
                self._panels = {k: v for k, v in self._panels.items()
                                if k[0] != view.node_id or k[1] >= view.version - 1}
                html = self._panels[key] = render_template(SCREENS + "_panels.html", snap=view.snapshot,
                                                           can_act=can_act, oob=True)
            return html

    def item(self, e: queues.ExceptionItem) -> str:
        key = (e.seq, g.language)
        with self._lock:
            html = self._items.get(key)
            if html is None:
                html = self._items[key] = render_template(SCREENS + "_exception.html", e=e)
                while len(self._items) > 4 * queues.RECENT_EXCEPTIONS:
                    self._items.popitem(last=False)
            return html


def _fragments() -> _Fragments:
    app = current_app._get_current_object()
    with _setup_lock:
        found = app.extensions.get("luyue.lead_fragments")
        if found is None:
            found = app.extensions["luyue.lead_fragments"] = _Fragments()
    return found


def _message(view: NodeView, items: tuple[queues.ExceptionItem, ...], can_act: bool, seq: int) -> str:
    """One websocket message: the panels, the new exceptions (newest first)
    and the seq they reach, each swapped into the page by id."""
    parts = [_fragments().panels(view, can_act)]
    if items:
        parts.append('<ul hx-swap-oob="afterbegin:#lead-exceptions">')
        parts.extend(_fragments().item(e) for e in reversed(items))
        parts.append("</ul>")
    parts.append(f'<span id="lead-seq" data-seq="{seq}" hx-swap-oob="true" hidden></span>')
    return "".join(parts)


def _missed(view: NodeView, node_id: int, after: int) -> tuple[queues.ExceptionItem, ...]:
    items = view.exceptions_after(after)
    if items is None:  # older than the view carries: replay from the outbox
        with database().reading() as s:
            items = queues.exceptions(s, node_id, after=after, upto=view.seq)
    return items


# --- screens -------------------------------------------------------------------------------

def _dashboard(status: int = 200, refusal: Refusal | None = None, notice: str | None = None):
    with database().reading() as s:
        node = _node(s, g.user, request.values.get("node"))
        nodes = queues.nodes(s) if NodeScope.of(g.user).everywhere else []
    view = _views().get(node.id)
    with database().reading() as s:
        recent = queues.exceptions(s, node.id, upto=view.seq,
                                   since=queues.shift_start(utcnow(), _shift_hours()))
    # A path, not url_for's ws:// URL: the ws extension makes it wss:// on https pages.
    live = urlsplit(url_for("lead.live", node=node.code, after=view.seq))
    return render_screen(SCREENS + "dashboard.html", status, node=node, nodes=nodes, view=view,
                         live_url=f"{live.path}?{live.query}",
                         snap=view.snapshot, recent=list(reversed(recent)), can_act=_can_act(node.id),
                         refusal=refusal, notice=notice, oob=False)


@bp.get("")
def dashboard():
    """dashboard: the node's queues, live."""
    return _dashboard()


@bp.get("/find")
def find():
    """find: a fulfilment by ref or order id -> its page; else the dashboard
    says it was not found."""
    q = (request.args.get("q") or "").strip()[:128]
    with database().reading() as s:
        f = queues.find(s, q, NodeScope.of(g.user))
        ref = f.ref if f is not None else None
    if ref is None:
        return _dashboard(404, Refusal("not_found", what=_("fulfilment %(q)s", q=q)))
    return redirect(url_for("lead.fulfilment", ref=ref))


def _fulfilment_screen(ref: str, status: int = 200, refusal: Refusal | None = None, notice: str | None = None):
    with database().reading() as s:
        found = queues.detail(s, ref, NodeScope.of(g.user))
        if found is None:
            raise Refusal("not_found", what=_("fulfilment %(q)s", q=ref))
        order = found.fulfilment.order
        room = customer_returns.returnable(s, order)
        skus = {sku.id: sku for sku in s.scalars(select(Sku).where(Sku.id.in_(list(room))))} if room else {}
        returnable = [(skus[sku_id], delivered, authorised) for sku_id, (delivered, authorised)
                      in sorted(room.items(), key=lambda kv: skus[kv[0]].code) if delivered > authorised]
        return render_screen(SCREENS + "fulfilment.html", status, d=found, f=found.fulfilment,
                             order_returns=customer_returns.of_order(s, order.id), returnable=returnable,
                             can_act=queues.may_act(g.user, found.fulfilment),
                             movable=found.fulfilment.status in redispatch.MOVABLE,
                             holdable=found.fulfilment.status in orders.NOT_YET_SHIPPED,
                             active_holds=hold.active_holds(s, found.fulfilment),
                             hold_hours=HOLD_HOURS, refusal=refusal, notice=notice)


@bp.get("/f/<ref>")
def fulfilment(ref: str):
    """fulfilment: what it is, why it is where it is, where it came from and went."""
    return _fulfilment_screen(ref)


def _act(ref: str, work, done):
    """Run a lead's action on a fulfilment; answer with its page and a notice,
    or the refusal in place (422)."""
    def run(s: Session):
        f = queues.detail(s, ref, NodeScope.of(g.user))  # another node's: not found
        if f is None:
            raise Refusal("not_found", what=_("fulfilment %(q)s", q=ref))
        return work(s, f.fulfilment, _me(s))
    try:
        result = database().run(run)
    except Refusal as refusal:
        return _fulfilment_screen(ref, 422, refusal=refusal)
    return _fulfilment_screen(ref, notice=done(result))


def _reason() -> str:
    return " ".join((request.form.get("reason") or "").split())[:200]


@bp.post("/f/<ref>/redispatch")
def redispatch_by_hand(ref: str):
    """fulfilment: re-dispatch everything it still holds, with a reason ->
    fulfilment (closed as redispatched, its new fulfilments in the lineage).
    Refusals: redispatch_reason_needed, redispatch_not_allowed (packed or later)."""
    reason = _reason()

    def work(s, f, me):
        if not reason:
            raise Refusal("redispatch_reason_needed", fulfilment=f.ref)
        return [p.ref for p in redispatch.redispatch(s, f, None, reason, by=me.code)]
    return _act(ref, work, lambda placed: _("Re-dispatched to %(refs)s.", refs=", ".join(placed) or "-"))


@bp.post("/f/<ref>/hold")
def place_hold(ref: str):
    """fulfilment: hold it (no pick list takes it) for a reason, until
    released or for some hours. Refusals: hold_reason_needed, hold_not_allowed."""
    reason = _reason()
    try:
        hours = int(request.form.get("hours") or 0)
    except ValueError:
        hours = 0
    until = utcnow() + dt.timedelta(hours=hours) if hours in HOLD_HOURS else None

    def work(s, f, me):
        hold.place_hold(s, f, reason, by=me.code, until=until)
    return _act(ref, work, lambda _result: _("Held."))


@bp.post("/f/<ref>/release-hold")
def release_hold(ref: str):
    """fulfilment: release its holds. Refusals: hold_not_found."""
    def work(s, f, me):
        hold.release_hold(s, f, by=me.code)
    return _act(ref, work, lambda _result: _("Hold released."))


@bp.post("/f/<ref>/return")
def authorise_return(ref: str):
    """fulfilment: authorise a customer return of the order's delivered
    units (`q-<SKU>` per SKU, a reason) -> fulfilment, the return listed;
    the dock can receive it. Refusals: return_nothing_delivered,
    return_nothing_returnable, return_over_delivered."""
    reason = _reason()
    wanted: dict[str, int] = {}
    for key, value in request.form.items():
        if key.startswith("q-"):
            try:
                wanted[key[2:]] = max(int(value or 0), 0)
            except ValueError:
                wanted[key[2:]] = 0

    def work(s, f, me):
        order = s.get(Order, f.order_id)
        ids = dict(s.execute(select(Sku.code, Sku.id).where(Sku.code.in_(list(wanted)))).all()) if wanted else {}
        units = {ids[code]: q for code, q in wanted.items() if code in ids}
        return customer_returns.authorise_by_lead(s, order, units, reason or None, by=me.code).ref
    return _act(ref, work, lambda made: _("Return %(ref)s authorised: the dock can receive it.", ref=made))


@bp.get("/returns")
def returns_page():
    """returns: customer returns expected here; units held out of stock."""
    with database().reading() as s:
        node = _node(s, g.user, request.values.get("node"))
        return render_screen(SCREENS + "returns.html", node=node, expected=returns.expected_returns(s, node),
                             received=returns.recent_returns(s, node, limit=20), held=returns.held_out(s, node))


@bp.post("/lists/<ref>/release")
def release_list(ref: str):
    """dashboard: release a pick list a picker abandoned -> dashboard (the
    list waits for the next claim, totes and steps as they were).
    Refusals: pick_list_not_held, not_found."""
    def work(s: Session) -> None:
        me = _me(s)
        pick.release(s, pick.list_for_release(s, me, ref), me)
    try:
        database().run(work)
    except Refusal as refusal:
        return _dashboard_answer(422, refusal=refusal)
    return _dashboard_answer(notice=_("Pick list %(list)s released.", list=ref))


@bp.post("/sign-out")
def sign_out_worker():
    """dashboard: a worker's badge -> dashboard ("signed out"): every login of
    that worker ends, on every device (a handheld left logged in, a badge
    lent). Refusals: sign_out_unknown_worker (not a worker of this node)."""
    badge = request.form.get("badge", "")

    def work(s: Session) -> str:
        return access.sign_out_worker(s, _me(s), badge).name
    try:
        name = database().run(work)
    except Refusal as refusal:
        return _dashboard_answer(refusal.status, refusal=refusal)
    return _dashboard_answer(notice=_("%(name)s is signed out on every device.", name=name))


def _dashboard_answer(status: int = 200, refusal: Refusal | None = None, notice: str | None = None):
    """An action's answer on the dashboard: the notice alone for htmx (the
    socket brings the panels), the whole page otherwise."""
    if getattr(request, "htmx", False) and request.htmx.target == "lead-notice":
        return render_template(SCREENS + "_notice.html", refusal=refusal, notice=notice), status
    return _dashboard(status, refusal, notice)


# --- live ------------------------------------------------------------------------------------

@sock.route("/live", bp=bp)
def live(ws) -> None:
    """Pushes the node's panels and new exceptions whenever events commit in
    any process; replays from `after` on (re)connection. A session without
    the lead (or admin) role is closed at once with 1008, not retried."""
    user = g.user
    if authorisation.socket_refusal() is not None:
        ws.close(reason=CLOSE_NOT_ALLOWED, message="lead role needed")
        return
    with database().reading() as s:
        try:
            node_id = _node(s, user, request.args.get("node")).id
        except Refusal:
            ws.close(reason=CLOSE_NOT_ALLOWED, message="no such node")
            return
        newest = events.last_seq(s)
    try:
        after = max(0, int(request.args.get("after", "0")))
    except ValueError:
        after = 0
    after = min(after, newest)  # a seq from before a database reset means nothing here
    can_act = _can_act(node_id)
    hub, views = live_hub(current_app), _views()
    view = views.get(node_id)
    ws.send(_message(view, _missed(view, node_id, after), can_act, max(after, view.seq)))
    sent, version = max(after, view.seq), view.version
    while ws.connected and not stopping.is_set():
        hub.wait(sent, POLL_SECONDS)
        view = views.get(node_id)
        if view.seq <= sent and view.version == version:
            continue
        items = _missed(view, node_id, sent)
        if items or view.version != version:
            ws.send(_message(view, items, can_act, max(sent, view.seq)))
        sent, version = max(sent, view.seq), view.version
    close_if_stopping(ws)


# --- template helpers -----------------------------------------------------------------------

@bp.app_template_filter("local_time")
def _local_time(value: dt.datetime | str | None, fmt: str = "%H:%M") -> str:
    """A time in the node's zone; ISO strings too (dispatch reasons keep them)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.astimezone(clock.zone()).strftime(fmt) if value else ""


@bp.app_template_global("age")
def _age(since: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """A short age: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    if since is None:
        return ""
    seconds = max(0, int(((now or utcnow()) - since).total_seconds()))
    if seconds < 60:
        return _("%(n)s s", n=seconds)
    minutes = seconds // 60
    if minutes < 60:
        return _("%(n)s min", n=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return _("%(h)s h %(m)s min", h=hours, m=minutes)
    days, hours = divmod(hours, 24)
    return _("%(d)s d %(h)s h", d=days, h=hours)



# --- cycle counts -------------------------------------------------------------------------

COUNT_DECISIONS = {"approve": count.approve, "recount": count.order_recount, "reject": count.reject}


def _counts(status: int = 200, refusal: Refusal | None = None, notice: str | None = None):
    with database().reading() as s:
        node = _node(s, g.user, request.values.get("node"))
        return render_screen(SCREENS + "counts.html", status, node=node, pending=count.pending(s, node),
                             asked=count.requested(s, node), recent=count.recent(s, node),
                             can_act=g.user.node_id == node.id,
                             limit=current_app.config["LUYUE"].count_variance_units,
                             refusal=refusal, notice=notice)


@bp.get("/counts")
def counts():
    """counts: variances waiting for a decision, counts asked for, recent
    counts in the books."""
    return _counts()


@bp.post("/counts/<int:count_id>/<decision>")
def decide_count(count_id: int, decision: str):
    """counts: approve (the variance goes into the books), recount (thrown
    away, the bin back on the counters' list) or reject (thrown away) ->
    counts. Refusals (422): count_already_decided (another lead was first),
    not_found."""
    decide = COUNT_DECISIONS.get(decision)
    if decide is None:
        return _counts(422, refusal=Refusal("not_found", what="decision"))
    try:
        c = database().run(lambda s: decide(s, _me(s), count_id))
    except Refusal as refusal:
        return _counts(422, refusal=refusal)
    with database().reading() as s:
        c = s.get(StockCount, c.id)
        words = {"sku": c.sku.code, "bin": c.location.code, "variance": f"{c.variance:+d}"}
    return _counts(notice={"approve": _("Variance %(variance)s of %(sku)s in %(bin)s applied.", **words),
                           "recount": _("%(sku)s in %(bin)s is on the counters' list again.", **words),
                           "reject": _("Count of %(sku)s in %(bin)s thrown away; the books stay.", **words)}[decision])


@bp.post("/counts/request")
def request_count():
    """counts: ask for a count of a bin and a SKU (one open request per bin
    and SKU) -> counts, the request on the counters' /count list.
    Refusals (422): count_unknown_bin, count_unknown_product, scan_unreadable."""
    bin_code, sku_code = request.form.get("bin", ""), request.form.get("sku", "")
    try:
        asked = database().run(lambda s: count.request_by_codes(s, _me(s), bin_code, sku_code).id)
    except Refusal as refusal:
        return _counts(422, refusal=refusal)
    with database().reading() as s:
        c = s.get(StockCount, asked)
        return _counts(notice=_("Count of %(sku)s in %(bin)s asked for.", sku=c.sku.code, bin=c.location.code))
