"""Returns at the dock (退货入库): thin views over `app.fulfilment.returns`.

A blueprint nested in the dock's (`ship`): /ship/returns, endpoints
`ship.returns.*`, for dock staff and leads, opened from the dock home.

Screens, as named states:
    returns  scan a returned parcel's label or a customer return's reference
             (or a delivered parcel's label: its authorised return); the
             customer returns expected here, how many parcels the carriers
             reported returned and are not back yet, the last received
    items    a parcel its carrier brought back: what is in it, each SKU with
             its bin (chosen, or its usual one); scan the bin for the next
             SKU, or take its usual bin -> items (next SKU) or putaway
    putaway  each SKU's units into its bin? yes -> returns (received,
             counted once per scan id); no -> items, the bins chosen afresh
    return   a customer return: its lines (received, sellable, damaged,
             quarantined of each); scan a unit -> unit; close it with what
             came -> returns
    unit     one SKU of the return, N units (key another N): scan a bin
             (sellable), take its usual bin (sellable), damaged or
             quarantine -> return (counted), or returns when it was the last

Scans of a label, a product or a bin that only choose read; writes are the
put-away confirmation (the whole parcel, one transaction) and each unit's
disposition (one transaction each). A refusal answers 422 with the
catalogue's message in a banner and nothing written, on the screen where it
is put right: about the parcel or the return on returns, about a bin on
items or unit, about a product on return. What it does to the order: see
the domain module (none of the contract's statuses move).
"""
from __future__ import annotations

from flask import Blueprint, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from app.fulfilment import returns, tracking
from app.fulfilment.carriers import CARRIERS
from app.fulfilment.errors import Refusal
from app.models import CustomerReturn, Disposition, Parcel, TrackingStatus
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

bp = Blueprint("returns", __name__, url_prefix="/returns")

SCREENS = "handheld/returns/"
# Refusals put right on the items or unit screen (a bin, a quantity); the rest are the parcel's or return's.
BIN_REFUSALS = {"return_unknown_bin", "scan_unreadable", "return_bin_needed", "quantity_invalid"}
# Refusals about a scanned product, put right on the return screen.
PRODUCT_REFUSALS = {"rma_unknown_product", "rma_not_in_return", "rma_line_complete", "scan_unreadable"}


def _report_word(status: TrackingStatus) -> str:
    """The carrier's latest report, as the items screen says it."""
    return {TrackingStatus.in_transit: _("in transit"), TrackingStatus.out_for_delivery: _("out for delivery"),
            TrackingStatus.failed_attempt: _("delivery attempt failed"), TrackingStatus.delivered: _("delivered"),
            TrackingStatus.returned: _("returned")}[status]


def _disposition_word(disposition: Disposition) -> str:
    return {Disposition.sellable: _("sellable"), Disposition.damaged: _("damaged"),
            Disposition.quarantine: _("quarantine")}[disposition]


@bp.errorhandler(Refusal)
def _refused(refusal: Refusal):
    """A refusal outside a scan (a role, a node)."""
    return refused_outside_scan(refusal, _returns)


def _chosen() -> list[str]:
    """The bins chosen so far for a parcel's SKUs, in the order of its items."""
    return [b.strip()[:64] for b in request.values.getlist("bin") if b.strip()][:500]


# --- what to show --------------------------------------------------------------------

def _returns(refusal: Refusal | None = None, notice: str | None = None, last: int | None = None,
             last_return: str | None = None):
    with database().reading() as s:
        node = _node(s)
        return render_screen(SCREENS + "returns.html", _status(refusal), {"HX-Push-Url": url_for("ship.returns.home")},
                             recent=returns.recent(s, node), expected=returns.out_count(s, node),
                             customer_returns=returns.expected_returns(s, node),
                             received_returns=returns.recent_returns(s, node), last_id=last,
                             last_return=last_return, refusal=refusal, notice=notice)


def _parcel(tracking_number: str, chosen: list[str], refusal: Refusal | None = None):
    """items for the parcel as it stands with the bins chosen so far, or
    putaway once every SKU has one; returns (with the refusal) when it can no
    longer be received here."""
    with database().reading() as s:
        node = _node(s)
        try:
            parcel = returns.parcel_at(s, node, tracking_number)
        except Refusal as gone:
            return _returns(refusal=refusal if refusal is not None and refusal.key not in BIN_REFUSALS else gone)
        delivery = tracking.delivery_of(s, parcel)
        things = returns.items(s, parcel)
        chosen = chosen[:len(things)]
        tn = parcel.tracking_number
        context = {"parcel": parcel, "carrier": CARRIERS.get(parcel.carrier or ""), "items": things,
                   "chosen": chosen, "units": sum(i.quantity for i in things), "delivery": delivery,
                   "report": _report_word(delivery.status) if delivery is not None else None, "refusal": refusal}
        if len(chosen) == len(things):
            return render_screen(SCREENS + "putaway.html", _status(refusal),
                                 {"HX-Push-Url": url_for("ship.returns.parcel", tracking=tn, bin=chosen)}, **context)
        return render_screen(SCREENS + "items.html", _status(refusal),
                             {"HX-Push-Url": url_for("ship.returns.parcel", tracking=tn, bin=chosen or None)},
                             current=things[len(chosen)], **context)


def _return(ref: str, refusal: Refusal | None = None, notice: str | None = None):
    """return: the customer return's lines; returns (with the refusal) when
    it can no longer be received here."""
    with database().reading() as s:
        node = _node(s)
        try:
            ret = returns.return_at(s, node, ref)
        except Refusal as gone:
            return _returns(refusal=gone)
        lines = returns.return_items(s, ret, node)
        return render_screen(SCREENS + "return.html", _status(refusal),
                             {"HX-Push-Url": url_for("ship.returns.customer_return", ref=ret.ref)},
                             ret=ret, lines=lines, came=sum(x.received for x in lines),
                             left=sum(x.left for x in lines), refusal=refusal, notice=notice)


def _unit(ref: str, sku: str, quantity: int, refusal: Refusal | None = None):
    """unit: one SKU of the return and how many; return when that SKU is done."""
    with database().reading() as s:
        node = _node(s)
        try:
            ret = returns.return_at(s, node, ref)
        except Refusal as gone:
            return _returns(refusal=gone)
        line = next((x for x in returns.return_items(s, ret, node) if x.sku == sku), None)
        if line is None or line.left <= 0:
            return _return(ret.ref, refusal=refusal if refusal is not None and refusal.key not in BIN_REFUSALS
                           else None)
        quantity = min(max(quantity, 1), line.left)
        return render_screen(SCREENS + "unit.html", _status(refusal),
                             {"HX-Push-Url": url_for("ship.returns.unit", ref=ret.ref, sku=line.sku, q=quantity)},
                             ret=ret, line=line, quantity=quantity, refusal=refusal)


def _quantity() -> int:
    try:
        return int(request.values.get("q") or 1)
    except ValueError:
        return 1


# --- the returns screen ------------------------------------------------------------------

@bp.get("")
def home():
    """returns: scan a returned parcel or a customer return."""
    return _returns()


@bp.post("/scan")
def scan():
    """returns: a parcel's tracking or SSCC barcode -> items; a customer
    return's reference, or the label of a delivered parcel it is for -> return.
    Refusals (422, returns): return_unknown_parcel, return_other_node,
    return_already_received, return_not_shipped, return_intercepted,
    return_delivered, return_not_reported, rma_other_node,
    rma_already_received, scan_unreadable. Nothing is written."""
    code = request.form.get("scan", "")
    with database().reading() as s:
        try:
            found = returns.found_at(s, _node(s), code)
        except Refusal as refusal:
            _log(refusal)
            return _returns(refusal=refusal)
        if isinstance(found, CustomerReturn):
            ref = found.ref
            tn = None
        else:
            ref, tn = None, found.tracking_number
    return _return(ref) if ref is not None else _parcel(tn, [])


# --- a parcel its carrier brought back ------------------------------------------------------

@bp.get("/p/<tracking>")
def parcel(tracking: str):
    """items (or putaway once every SKU has a bin, `?bin=` per item in
    order). A parcel that cannot be received here (any more) goes back to
    returns with the refusal."""
    return _parcel(tracking, _chosen())


@bp.post("/p/<tracking>/bin")
def scan_bin(tracking: str):
    """items: a bin label for the next SKU -> items (the SKU after) or
    putaway. Refusals (422): return_unknown_bin, scan_unreadable (items);
    the parcel's own (returns). Nothing is written."""
    code = request.form.get("scan", "")
    chosen = _chosen()
    with database().reading() as s:
        node = _node(s)
        try:
            returns.parcel_at(s, node, tracking)
            location = returns.bin_at(s, node, code).code
        except Refusal as refusal:
            _log(refusal)
            return _parcel(tracking, chosen, refusal=refusal)
    return _parcel(tracking, chosen + [location])


@bp.post("/p/<tracking>/receive")
def receive(tracking: str):
    """putaway: yes -> returns, the parcel received back: each SKU's units
    on hand in its bin and the node's stock, `parcel.received_back`,
    fulfilments awaiting those SKUs dispatched. The same scan id again:
    returns, counted once. Refusals (422, nothing written):
    return_unknown_bin, return_bin_needed (items); the parcel's (returns),
    e.g. return_already_received when another handheld was first."""
    sid = scan_id()
    chosen = _chosen()

    try:
        done = database().run(lambda s: returns.receive(s, _me(s), sid, _node(s), tracking,
                                                        returns.bins_for(s, tracking, chosen)))
    except Refusal as refusal:
        _log(refusal)
        return _parcel(tracking, chosen if refusal.key not in BIN_REFUSALS else [], refusal=refusal)
    if done.what == "repeat":
        return _returns(notice=_("Already received."), last=done.parcel_id)
    with database().reading() as s:
        tn = s.get(Parcel, done.parcel_id).tracking_number
    bins = ", ".join(dict.fromkeys(b for _sku, b in done.bins))
    return _returns(notice=ngettext("%(tracking)s received back: %(num)s unit into %(bins)s.",
                                    "%(tracking)s received back: %(num)s units into %(bins)s.",
                                    done.units, tracking=tn, bins=bins),
                    last=done.parcel_id)


# --- a customer's return -------------------------------------------------------------------------

@bp.get("/r/<ref>")
def customer_return(ref: str):
    """return: the return's lines; scan a unit."""
    return _return(ref)


@bp.post("/r/<ref>/scan")
def scan_unit(ref: str):
    """return: a product barcode of the return -> unit (1 unit).
    Refusals (422, return): rma_unknown_product, rma_not_in_return,
    rma_line_complete, scan_unreadable; the return's own (returns).
    Nothing is written."""
    code = request.form.get("scan", "")
    with database().reading() as s:
        node = _node(s)
        try:
            ret = returns.return_at(s, node, ref)
        except Refusal as gone:
            _log(gone)
            return _returns(refusal=gone)
        try:
            sku = returns.return_product(s, ret, node, code).sku
        except Refusal as refusal:
            _log(refusal)
            return _return(ref, refusal=refusal)
    return _unit(ref, sku, 1)


@bp.get("/r/<ref>/u/<sku>")
def unit(ref: str, sku: str):
    """unit: N units of the SKU (`?q=N`, keyed on the screen)."""
    return _unit(ref, sku, _quantity())


@bp.post("/r/<ref>/u/<sku>/<disposition>")
def count_unit(ref: str, sku: str, disposition: str):
    """unit: sellable (a bin scanned, or its usual bin), damaged or
    quarantine -> return (the units counted), or returns when the return is
    complete. The same scan id again: counted once. Refusals (422, nothing
    written): return_unknown_bin, return_bin_needed, quantity_invalid,
    scan_unreadable (unit); rma_line_complete (return, e.g. another
    handheld took the last unit); the return's (returns)."""
    try:
        how = Disposition(disposition)
    except ValueError:
        return _unit(ref, sku, _quantity())
    quantity = _quantity()
    sid = scan_id()
    bin_code = (request.form.get("scan") or request.form.get("bin") or "").strip() or None
    if how == Disposition.sellable and request.form.get("scan") is not None and bin_code is None:
        refusal = Refusal("scan_unreadable")
        _log(refusal)
        return _unit(ref, sku, quantity, refusal=refusal)
    try:
        done = database().run(lambda s: returns.receive_units(s, _me(s), sid, _node(s), ref, sku, quantity, how,
                                                              bin_code))
    except Refusal as refusal:
        _log(refusal)
        if refusal.key in BIN_REFUSALS:
            return _unit(ref, sku, quantity, refusal=refusal)
        if refusal.key in PRODUCT_REFUSALS:
            return _return(ref, refusal=refusal)
        return _returns(refusal=refusal)
    if done.what == "repeat":
        return _return(ref, notice=_("Already counted."))
    what = (_("%(num)s × %(sku)s into %(bin)s (sellable).", num=done.units, sku=done.sku, bin=done.location)
            if how == Disposition.sellable else
            _("%(num)s × %(sku)s: %(disposition)s, held out of stock.", num=done.units, sku=done.sku,
              disposition=_disposition_word(how)))
    if done.complete:
        return _returns(notice=_("Return %(ref)s received.", ref=done.ref) + " " + what, last_return=done.ref)
    return _return(ref, notice=what)


@bp.post("/r/<ref>/close")
def close(ref: str):
    """return: close it with what came -> returns. Refusals (422):
    rma_nothing_received (return); the return's (returns)."""
    sid = scan_id()
    try:
        done = database().run(lambda s: returns.close(s, _me(s), sid, _node(s), ref))
    except Refusal as refusal:
        _log(refusal)
        return _return(ref, refusal=refusal) if refusal.key == "rma_nothing_received" else _returns(refusal=refusal)
    if done.what == "repeat":
        return _returns(notice=_("Already received."))
    return _returns(notice=ngettext("Return %(ref)s received: %(num)s unit came.",
                                    "Return %(ref)s received: %(num)s units came.", done.units, ref=done.ref),
                    last_return=done.ref)
