"""Returns at the dock (退货入库): thin views over `app.fulfilment.returns`.

A blueprint nested in the dock's (`ship`): /ship/returns, endpoints
`ship.returns.*`, for dock staff and leads, opened from the dock home.

Screens, as named states:
    returns  scan a returned parcel's label (tracking or SSCC); how many
             parcels the carriers reported returned and are not back yet;
             the last parcels received back here, with their bins
    items    the parcel: what is in it (SKU, name, quantity, the bins each
             SKU usually goes to), the carrier's latest report; scan the bin
             the items go into
    putaway  put N units into bin B? yes -> returns (received, counted once
             per scan id); no -> items, to scan another bin

Scans of a label or a bin only read; the confirmation on putaway writes
everything in one transaction (units in the bin and the node's stock, the
parcel `returned`, the event `parcel.received_back`, waiting fulfilments
dispatched). A refusal answers 422 with the catalogue's message in a banner
and nothing written, on the screen where it is put right: about the parcel
(unknown, another node's, received back already, not left, intercepted,
delivered) on returns, about the bin on items. What it does to the order:
see the domain module (none of the contract's statuses move).
"""
from __future__ import annotations

from flask import Blueprint, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from app.fulfilment import returns, tracking
from app.fulfilment.carriers import CARRIERS
from app.fulfilment.errors import Refusal
from app.models import Parcel, Role, TrackingStatus
from app.web import database
from app.web.auth import role_required
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

DOCK = (Role.dock, Role.lead)
SCREENS = "handheld/returns/"
# Refusals about the bin are put right on the items screen; the rest are the parcel's.
BIN_REFUSALS = {"return_unknown_bin", "scan_unreadable"}


def _report_word(status: TrackingStatus) -> str:
    """The carrier's latest report, as the items screen says it."""
    return {TrackingStatus.in_transit: _("in transit"), TrackingStatus.out_for_delivery: _("out for delivery"),
            TrackingStatus.failed_attempt: _("delivery attempt failed"), TrackingStatus.delivered: _("delivered"),
            TrackingStatus.returned: _("returned")}[status]


@bp.errorhandler(Refusal)
def _refused(refusal: Refusal):
    """A refusal outside a scan (a role, a node)."""
    return refused_outside_scan(refusal, _returns)


# --- what to show --------------------------------------------------------------------

def _returns(refusal: Refusal | None = None, notice: str | None = None, last: int | None = None):
    with database().reading() as s:
        node = _node(s)
        return render_screen(SCREENS + "returns.html", _status(refusal), {"HX-Push-Url": url_for("ship.returns.home")},
                             recent=returns.recent(s, node), expected=returns.out_count(s, node), last_id=last,
                             refusal=refusal, notice=notice)


def _parcel(tracking_number: str, refusal: Refusal | None = None, into: str | None = None):
    """items, or putaway into bin `into`, for the parcel as it stands; returns
    (with the refusal) when it can no longer be received here."""
    with database().reading() as s:
        node = _node(s)
        try:
            parcel = returns.parcel_at(s, node, tracking_number)
        except Refusal as gone:
            return _returns(refusal=refusal if refusal is not None and refusal.key not in BIN_REFUSALS else gone)
        delivery = tracking.delivery_of(s, parcel)
        things = returns.items(s, parcel)
        context = {"parcel": parcel, "carrier": CARRIERS.get(parcel.carrier or ""), "items": things,
                   "units": sum(i.quantity for i in things), "delivery": delivery,
                   "report": _report_word(delivery.status) if delivery is not None else None, "refusal": refusal}
        tn = parcel.tracking_number
        if into is not None:
            try:
                location = returns.bin_at(s, node, into)
            except Refusal as wrong:
                context["refusal"] = refusal = wrong
            else:
                return render_screen(SCREENS + "putaway.html", _status(refusal),
                                     {"HX-Push-Url": url_for("ship.returns.putaway", tracking=tn, bin=location.code)},
                                     location=location, **context)
        return render_screen(SCREENS + "items.html", _status(refusal),
                             {"HX-Push-Url": url_for("ship.returns.parcel", tracking=tn)}, **context)


# --- screens -------------------------------------------------------------------------

@bp.get("")
@role_required(*DOCK)
def home():
    """returns: scan a returned parcel."""
    return _returns()


@bp.post("/scan")
@role_required(*DOCK)
def scan():
    """returns: a parcel's tracking or SSCC barcode -> items.
    Refusals (422, returns): return_unknown_parcel, return_other_node,
    return_already_received, return_not_shipped, return_intercepted,
    return_delivered, scan_unreadable. Nothing is written."""
    code = request.form.get("scan", "")
    with database().reading() as s:
        try:
            tn = returns.parcel_at(s, _node(s), code).tracking_number
        except Refusal as refusal:
            _log(refusal)
            return _returns(refusal=refusal)
    return _parcel(tn)


@bp.get("/p/<tracking>")
@role_required(*DOCK)
def parcel(tracking: str):
    """items: the parcel's contents; scan a bin. A parcel that cannot be
    received here (any more) goes back to returns with the refusal."""
    return _parcel(tracking)


@bp.post("/p/<tracking>/bin")
@role_required(*DOCK)
def scan_bin(tracking: str):
    """items: a bin label -> putaway.
    Refusals (422): return_unknown_bin, scan_unreadable (items); the
    parcel's own (returns). Nothing is written."""
    code = request.form.get("scan", "")
    with database().reading() as s:
        node = _node(s)
        try:
            returns.parcel_at(s, node, tracking)
            location = returns.bin_at(s, node, code).code
        except Refusal as refusal:
            _log(refusal)
            return _parcel(tracking, refusal=refusal)
    return _parcel(tracking, into=location)


@bp.get("/p/<tracking>/into/<bin>")
@role_required(*DOCK)
def putaway(tracking: str, bin: str):
    """putaway: put the parcel's units into the bin? (a bin not here: items)"""
    return _parcel(tracking, into=bin)


@bp.post("/p/<tracking>/into/<bin>")
@role_required(*DOCK)
def receive(tracking: str, bin: str):
    """putaway: yes -> returns, the parcel received back: its units on hand in
    the bin and the node's stock, `parcel.received_back`, fulfilments awaiting
    those SKUs dispatched. The same scan id again: returns, counted once.
    Refusals (422, nothing written): return_unknown_bin (items); the
    parcel's (returns), e.g. return_already_received when another handheld
    was first."""
    sid = scan_id()
    try:
        done = database().run(lambda s: returns.receive(s, _me(s), sid, _node(s), tracking, bin))
    except Refusal as refusal:
        _log(refusal)
        return _parcel(tracking, refusal=refusal)
    if done.what == "repeat":
        return _returns(notice=_("Already received."), last=done.parcel_id)
    with database().reading() as s:
        tn = s.get(Parcel, done.parcel_id).tracking_number
    return _returns(notice=ngettext("%(tracking)s received back: %(num)s unit into %(bin)s.",
                                    "%(tracking)s received back: %(num)s units into %(bin)s.",
                                    done.units, tracking=tn, bin=done.location),
                    last=done.parcel_id)
