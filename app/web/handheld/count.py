"""Cycle count on the handheld (盘点): thin views over `app.fulfilment.count`.

A BLIND count: the counter is never shown what the books say is in the bin.

Screens, as named states:
    home   scan a bin; the counts asked for at this node (a lead's request,
           a short pick, a recount), oldest first, each opening its bin
    bin    the bin: scan a product to count (or open an asked-for SKU to
           count it from zero); another bin's label switches bins
    tally  bin and product: the units counted so far, big; scan each unit
           (+1), or key the total; confirm -> bin, with what happened:
           applied, sent to a lead (the variance is over
           LUYUE_COUNT_VARIANCE_UNITS), or to be counted again (units were
           picked from the bin while it was counted)

The tally lives in the screen (the URL's `n`), not the database: a unit
scan answers the same screen with n + 1, so a retry of it answers the
same again, and nothing is written before the confirmation. The
confirmation carries the scan id: sent twice, it is counted once. `started`
(when the bin was scanned) says which picks fell inside the count.
A refusal answers 422 with the catalogue's message, on the screen where it
is put right, and nothing is written.
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, current_app, request, url_for
from flask_babel import gettext as _

from app.fulfilment import count
from app.fulfilment.errors import Refusal
from app.models import utcnow
from app.web import database
from app.web.handheld import (
    current_node as _node,
    current_user as _me,
    log_refusal as _log,
    refused_outside_scan,
    render_screen,
    scan_id,
    screen_status as _status,
)

bp = Blueprint("count", __name__, url_prefix="/count")

SCREENS = "handheld/count/"


@bp.errorhandler(Refusal)
def _refused(refusal: Refusal):
    """A refusal outside a scan (a role, a node)."""
    return refused_outside_scan(refusal, _home)


@bp.app_template_global("count_reason")
def _reason_word(reason: str) -> str:
    """Why a count was asked for or made, as the screens say it."""
    return {"lead": _("asked by a lead"), "short_pick": _("short pick"), "recount": _("recount"),
            "picked_during_count": _("picked during a count"), "cycle": _("cycle count"),
            "api": _("stock API"), "import": _("stock import")}.get(reason, reason)


# --- what the screen carries ------------------------------------------------------------

def _started() -> dt.datetime:
    """When the counter scanned the bin (the screen carries it); now, if the
    screen lost it: picks before the confirmation are then not noticed."""
    try:
        at = dt.datetime.fromisoformat(request.values.get("started", ""))
    except ValueError:
        return utcnow()
    now = utcnow()
    return min(at, now) if at.tzinfo is not None else now  # never later than now: no pick slips past


def _tally() -> int:
    try:
        return max(0, min(int(request.values.get("n", "0")), count.MAX_COUNT))
    except ValueError:
        return 0


def _quantity() -> int | None:
    raw = (request.form.get("quantity") or "").strip()
    return int(raw) if raw.isdigit() else None


# --- what to show -----------------------------------------------------------------------

def _home(refusal: Refusal | None = None, notice: str | None = None):
    with database().reading() as s:
        tasks = count.requested(s, _node(s))
        return render_screen(SCREENS + "home.html", _status(refusal), {"HX-Push-Url": url_for("count.home")},
                             tasks=tasks, refusal=refusal, notice=notice)


def _bin(code: str, started: dt.datetime, refusal: Refusal | None = None, notice: str | None = None):
    with database().reading() as s:
        node = _node(s)
        try:
            location = count.bin_at(s, node, code)
        except Refusal as wrong:
            return _home(refusal=wrong)
        tasks = [t for t in count.requested(s, node) if t.location_id == location.id]
        when = started.isoformat()
        return render_screen(SCREENS + "bin.html", _status(refusal),
                             {"HX-Push-Url": url_for("count.bin", code=location.code, started=when)},
                             location=location, tasks=tasks, started=when, refusal=refusal, notice=notice)


def _counting(code: str, sku_code: str, n: int, started: dt.datetime, refusal: Refusal | None = None,
              notice: str | None = None):
    with database().reading() as s:
        node = _node(s)
        try:
            location = count.bin_at(s, node, code)
            sku = count.product_of(s, sku_code)
        except Refusal as wrong:
            return _home(refusal=wrong)
        when = started.isoformat()
        return render_screen(SCREENS + "tally.html", _status(refusal),
                             {"HX-Push-Url": url_for("count.tally", code=location.code, sku=sku.code, n=n,
                                                     started=when)},
                             location=location, sku=sku, n=n, started=when, refusal=refusal, notice=notice)


def _outcome(done: count.Counted, code: str, sku: str, n: int) -> str:
    if done.what == "repeat":
        return _("Already counted.")
    if done.what == "applied":
        return _("Counted: %(n)s × %(sku)s in %(bin)s.", n=n, sku=sku, bin=code)
    if done.what == "pending_approval":
        return _("Counted: %(n)s × %(sku)s in %(bin)s. It differs from the books: a lead will check it.",
                 n=n, sku=sku, bin=code)
    return _("Units were picked from %(bin)s while you counted: count %(sku)s again.", bin=code, sku=sku)


# --- screens ----------------------------------------------------------------------------

@bp.get("")
def home():
    """home: scan a bin; the counts asked for."""
    return _home()


@bp.post("/scan")
def scan_bin():
    """home: a bin label -> bin (the count starts now).
    Refusals (422, home): count_unknown_bin, scan_unreadable."""
    code = request.form.get("scan", "")
    with database().reading() as s:
        try:
            location = count.bin_at(s, _node(s), code).code
        except Refusal as refusal:
            _log(refusal)
            return _home(refusal=refusal)
    return _bin(location, utcnow())


@bp.get("/b/<code>")
def bin(code: str):
    """bin: scan a product to count."""
    return _bin(code, _started())


@bp.post("/b/<code>/product")
def scan_product(code: str):
    """bin: a product's barcode -> tally at 1 (the scanned unit); another
    bin's label -> that bin. Refusals (422, bin): count_unknown_product,
    scan_unreadable."""
    raw = request.form.get("scan", "")
    started = _started()
    with database().reading() as s:
        try:
            sku = count.product_of(s, raw).code
        except Refusal as refusal:
            try:
                other = count.bin_at(s, _node(s), raw).code
            except Refusal:
                _log(refusal)
                return _bin(code, started, refusal=refusal)
            return _bin(other, utcnow())
    return _counting(code, sku, 1, started)


@bp.get("/b/<code>/s/<sku>")
def tally(code: str, sku: str):
    """tally: the units counted so far (`n`)."""
    return _counting(code, sku, _tally(), _started())


@bp.post("/b/<code>/s/<sku>/unit")
def scan_unit(code: str, sku: str):
    """tally: a unit of the product -> tally, n + 1 (the bin's label again:
    n). Refusals (422, tally, n unchanged): count_other_product,
    count_unknown_product, scan_unreadable."""
    raw, n, started = request.form.get("scan", ""), _tally(), _started()
    with database().reading() as s:
        try:
            if count.bin_at(s, _node(s), raw).code == code:
                return _counting(code, sku, n, started)
        except Refusal:
            pass
        try:
            count.unit_scanned(s, count.product_of(s, sku), raw)
        except Refusal as refusal:
            _log(refusal)
            return _counting(code, sku, n, started, refusal=refusal)
    return _counting(code, sku, min(n + 1, count.MAX_COUNT), started)


@bp.post("/b/<code>/s/<sku>/confirm")
def confirm(code: str, sku: str):
    """tally: the total (keyed, or the scanned units) -> bin, the count
    recorded: applied, sent to a lead, or to count again. The same scan id
    again: bin, counted once. Refusals (422, tally): count_quantity_invalid,
    count_unknown_bin, count_unknown_product."""
    sid, total, started, n = scan_id(), _quantity(), _started(), _tally()
    limit = current_app.config["LUYUE"].count_variance_units
    try:
        done = database().run(lambda s: count.record(s, _me(s), sid, code, sku, total, started, limit))
    except Refusal as refusal:
        _log(refusal)
        return _counting(code, sku, n, started, refusal=refusal)
    return _bin(code, utcnow(), notice=_outcome(done, code, sku, total))
