"""Dock outbound screens (出库交接): thin views over `app.fulfilment.ship`.

Screens, as named states:
    home     the carriers: labelled parcels waiting for each, its open
             handover (resume) or a new one
    scan     a carrier's open handover: scan parcels onto it, running count,
             the last ones scanned; close it
    confirm  close the handover with N parcels?
    closed   the handover is closed: its manifest (交接单) opens in the print
             dialog for the courier to sign; the labels of its parcels

Returned parcels are received back from the home's Returns button: their
screens are `app.web.handheld.returns`, a blueprint nested in this one.

Every scan answers with the screen to show next; a refusal answers 422 with
the same screen and the catalogue's message in a banner, nothing recorded.
An intercepted parcel (拦截, its order was cancelled) also sounds the alarm.
Scans carry the handheld's scan id: the same id again counts once, and a
parcel scanned again onto the handover it is on is not counted twice.
"""
from __future__ import annotations

from flask import Blueprint, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from app.fulfilment import pack, returns, ship
from app.fulfilment.carriers import CARRIERS
from app.fulfilment.errors import Refusal
from app.models import HandoverStatus, Parcel, Role
from app.web import auth, database
from app.web.handheld import (
    refused_outside_scan,
    render_screen,
    scan_id,
    current_node as _node,
    current_user as _me,
    log_refusal as _log,
    screen_status as _status,
)
from app.web.handheld import returns as returns_screens
from app.web.handheld.pack import label_size, pdf_response
from printing.labels import batch_labels_pdf, manifest_pdf

bp = Blueprint("ship", __name__, url_prefix="/ship")
bp.register_blueprint(returns_screens.bp)

SCREENS = "handheld/ship/"

auth.ROLE_HOME.setdefault(Role.dock, "ship.home")


@bp.errorhandler(Refusal)
def _refused(refusal: Refusal):
    """A refusal outside a scan (a role, a node, a handover not found)."""
    return refused_outside_scan(refusal, _home)


# --- what to show --------------------------------------------------------------------

def _home(refusal: Refusal | None = None, notice: str | None = None):
    with database().reading() as s:
        node = _node(s)
        waiting, open_ = ship.waiting(s, node), ship.open_handovers(s, node)
        rows = [{"code": code, "name": carrier.name, "service": carrier.service, "waiting": waiting.get(code, 0),
                 "handover": open_.get(code), "scanned": ship.scanned(s, open_[code]) if code in open_ else 0}
                for code, carrier in CARRIERS.items()]
        return render_screen(SCREENS + "home.html", _status(refusal), {"HX-Push-Url": url_for("ship.home")},
                             rows=rows, returns_expected=returns.out_count(s, node) + len(returns.expected_returns(s, node)), refusal=refusal, notice=notice)


def _handover(ref: str, refusal: Refusal | None = None, notice: str | None = None, confirm: bool = False,
              last: Parcel | None = None):
    """scan, confirm or closed for handover `ref` as it stands."""
    with database().reading() as s:
        try:
            handover = ship.handover_at(s, _node(s), ref)
        except Refusal as missing:
            return _home(refusal=missing)
        context = {"handover": handover, "carrier": CARRIERS[handover.carrier], "count": ship.scanned(s, handover),
                   "refusal": refusal, "notice": notice}
        headers = {"HX-Push-Url": url_for("ship.handover", ref=ref)}
        if handover.status == HandoverStatus.closed:
            return render_screen(SCREENS + "closed.html", _status(refusal), headers, print_now=confirm, **context)
        if confirm:
            return render_screen(SCREENS + "confirm.html", _status(refusal),
                                 {"HX-Push-Url": url_for("ship.confirm", ref=ref)}, **context)
        waiting = ship.waiting(s, _node(s)).get(handover.carrier, 0)
        return render_screen(SCREENS + "scan.html", _status(refusal), headers, recent=ship.recent(s, handover),
                             waiting=waiting, last_id=last.id if last is not None else None, **context)


# --- screens -------------------------------------------------------------------------

@bp.get("")
def home():
    """home: each carrier's waiting parcels and open handover."""
    return _home()


@bp.post("/open")
def open_handover():
    """home: a carrier -> scan, on its open handover or a new one.
    Refusals: ship_unknown_carrier."""
    carrier = request.form.get("carrier", "")
    try:
        handover = database().run(lambda s: ship.open_handover(s, _node(s), carrier, _me(s)))
    except Refusal as refusal:
        _log(refusal)
        return _home(refusal=refusal)
    return _handover(handover.ref)


@bp.get("/h/<ref>")
def handover(ref: str):
    """scan while the handover is open; closed (the manifest) after."""
    return _handover(ref)


@bp.post("/h/<ref>/scan")
def scan(ref: str):
    """scan: a parcel's tracking or SSCC barcode -> scan, one more parcel.
    Refusals (422, scan): ship_intercepted (alarm), ship_other_carrier,
    ship_already_shipped (on another handover), ship_unknown_parcel,
    ship_not_packed, ship_other_node, ship_handover_closed (closed),
    parcel_received_back (it came back, see returns), scan_unreadable. The
    same scan id again, or a parcel already on this handover: the same
    screen, counted once."""
    code = request.form.get("scan", "")
    sid = scan_id()
    try:
        done = database().run(lambda s: ship.scan(s, _me(s), sid, _node(s), ref, code))
    except Refusal as refusal:
        _log(refusal)
        return _handover(ref, refusal=refusal)
    with database().reading() as s:
        parcel = s.get(Parcel, done.parcel_id) if done.parcel_id else None
        tracking = parcel.tracking_number if parcel is not None else None
    if done.what == "repeat":
        return _handover(ref, notice=_("Already counted."))
    if done.what == "again":
        return _handover(ref, notice=_("%(tracking)s is already on this handover; counted once.", tracking=tracking))
    return _handover(ref, notice=_("%(tracking)s loaded.", tracking=tracking), last=parcel)


@bp.get("/h/<ref>/close")
def confirm(ref: str):
    """confirm: close the handover with its parcels, or go back to scanning."""
    return _handover(ref, confirm=True)


@bp.post("/h/<ref>/close")
def close(ref: str):
    """confirm: yes -> closed, the manifest opens in the print dialog."""
    def work(s: Session) -> None:
        ship.close_handover(s, ship.handover_at(s, _node(s), ref, lock=True), _me(s))
    try:
        database().run(work)
    except Refusal as refusal:
        _log(refusal)
        return _home(refusal=refusal)
    return _handover(ref, notice=_("Handover closed. Print the manifest for the courier to sign."), confirm=True)


@bp.get("/h/<ref>/manifest.pdf")
def manifest(ref: str):
    """The handover manifest (交接单): its parcels, a barcode of its ref, and
    lines for the courier's signature."""
    with database().reading() as s:
        data = ship.manifest_data(s, ship.handover_at(s, _node(s), ref))
    return pdf_response(manifest_pdf(data), f"manifest-{ref}.pdf")


@bp.get("/h/<ref>/labels.pdf")
def labels(ref: str):
    """Every label of the handover's parcels in one PDF, a page each."""
    with database().reading() as s:
        handover = ship.handover_at(s, _node(s), ref)
        labels = [pack.label_data(p) for p in handover.parcels]
    if not labels:
        return _handover(ref, refusal=Refusal("handover_empty", handover=ref))
    return pdf_response(batch_labels_pdf(labels, size=label_size()), f"labels-{ref}.pdf")
