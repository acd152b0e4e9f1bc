"""Packing screens (打包): thin views over `app.fulfilment.pack` and `printing`.

Screens, as named states:
    home     my node, totes waiting, parcels being filled (resume), the bench's
             printer, today's labels; scan a tote or a fulfilment
    items    the bench: what must go in (sku, name, needed, packed), scan each
             unit into the open parcel
    weight   the parcel's weight (typed, the keypad, or a scale's wedge input),
             then close it
    closed   a parcel was labelled: its label prints (the bench's printer, or
             the browser's print dialog); next parcel while units are left
    done     the fulfilment is packed: its parcels; scan the next tote
    parcel   one parcel: status, carrier, tracking, SSCC, items; reprint

Every scan answers with the screen to show next; a refusal answers 422 with
the same screen and the catalogue's message in a banner, nothing recorded (a
cancelled order's interception also sounds the alarm). Scans carry the
handheld's scan id: the same id again counts once.

PDFs: a parcel's label (`label.pdf`, size from LUYUE_LABEL_SIZE or ?size=),
its packing slip (`slip.pdf`), and a day's labels at the node in one file
(`labels.pdf?day=YYYY-MM-DD`, today by default).
"""
from __future__ import annotations

import dataclasses
import math
import datetime as dt
import re

from flask import Blueprint, Response, current_app, g, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from app.fulfilment import clock, pack
from app.fulfilment.carriers import CARRIERS
from app.fulfilment.errors import Refusal
from app.models import Fulfilment, FulfilmentStatus, Parcel, ParcelStatus, Role, utcnow
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
from printing.labels import batch_labels_pdf, packing_slip_pdf, shipping_label_pdf
from printing.layout import SIZES
from printing.printers import Printer, PrinterUnavailable, parse_printer, send_label

bp = Blueprint("pack", __name__, url_prefix="/pack")

SCREENS = "handheld/pack/"
PDF = "application/pdf"

auth.ROLE_HOME.setdefault(Role.packer, "pack.home")


@bp.app_template_global("parcel_status")
def parcel_status(status: ParcelStatus) -> str:
    """The word the parcel screens show for a status (pack and dock alike)."""
    return {ParcelStatus.open: _("being packed"), ParcelStatus.packed: _("packed"),
            ParcelStatus.shipped: _("shipped"), ParcelStatus.delivered: _("delivered"),
            ParcelStatus.intercepted: _("intercepted"), ParcelStatus.returned: _("received back")}[status]


bp.add_app_template_global(CARRIERS, "carriers")


@bp.app_template_filter("wall_clock")
def _localtime(at: dt.datetime | None) -> str:
    """An instant as the node's wall clock: 11-25 14:05."""
    return at.astimezone(clock.zone()).strftime("%m-%d %H:%M") if at is not None else "—"


@bp.errorhandler(Refusal)
def _refused(refusal: Refusal):
    """A refusal outside a scan (a role, a node, a parcel not found)."""
    # The dock reaches parcel pages too; its way back is its own screens.
    return refused_outside_scan(refusal, _home, refusal_screen=g.user is not None and g.user.role == Role.dock)


# --- printers ------------------------------------------------------------------------

def printers() -> dict[str, Printer]:
    """The label printers a bench may choose: LUYUE_PRINTERS (Settings.printers),
    NAME=URL entries. A URL without `size=` prints LUYUE_LABEL_SIZE labels."""
    settings = current_app.config["LUYUE"]
    found: dict[str, Printer] = {}
    for entry in re.split(r"[;,\n]", settings.printers or ""):
        name, sep, url = entry.strip().partition("=")
        if not sep or not name.strip():
            continue
        try:
            printer = parse_printer(url.strip(), name=name.strip())
        except ValueError as e:
            current_app.logger.warning("printer %r ignored: %s", name.strip(), e)
            continue
        if "size=" not in url:
            printer = dataclasses.replace(printer, size=label_size())
        found[printer.name] = printer
    return found


def my_printer() -> Printer | None:
    """The printer this bench chose (kept in the login session), if still configured."""
    name = session.get("pack_printer")
    return printers().get(name) if name else None


def label_size() -> str:
    size = current_app.config["LUYUE"].label_size
    return size if size in SIZES else "100x150"


def _print(parcel_id: int) -> tuple[str | None, Refusal | None]:
    """Send a parcel's label to the bench's printer. (notice, refusal); both
    None when the bench prints through the browser."""
    printer = my_printer()
    if printer is None:
        return None, None
    with database().reading() as s:
        label = pack.label_data(s.get(Parcel, parcel_id))
    try:
        send_label(printer, label, printer.size)
    except PrinterUnavailable as e:
        refusal = Refusal("printer_unavailable", printer=e.printer_name, reason=e.reason)
        _log(refusal)
        name, reason = e.printer_name, e.reason
        database().run(lambda s: pack.printer_failed(s, s.get(Parcel, parcel_id), name, reason, _me(s)))
        return None, refusal
    database().run(lambda s: _printed(s, parcel_id))
    return _("Label sent to printer %(printer)s.", printer=printer.name), None


def _printed(s: Session, parcel_id: int) -> None:
    s.get(Parcel, parcel_id).label_printed_at = utcnow()


# --- what to show --------------------------------------------------------------------

def _home(refusal: Refusal | None = None, notice: str | None = None):
    with database().reading() as s:
        node = _node(s)
        start, end = _day_bounds(clock.business_day(utcnow()))
        return render_screen(SCREENS + "home.html", _status(refusal), {"HX-Push-Url": url_for("pack.home")},
                             waiting=pack.waiting(s, node), resume=pack.open_at(s, node),
                             today=len(pack.labelled_on(s, node, start, end)), printers=printers(),
                             printer=my_printer(), refusal=refusal, notice=notice)


def _rows(f: Fulfilment) -> list[dict]:
    """One row per SKU of the fulfilment: needed, packed in all, in the open parcel."""
    packed = pack.packed_units(f)
    open_parcel = next((p for p in f.parcels if p.status == ParcelStatus.open), None)
    in_box = {item.sku_id: item.quantity for item in open_parcel.items} if open_parcel else {}
    rows: dict[int, dict] = {}
    for line in f.lines:
        if not line.quantity:
            continue
        row = rows.setdefault(line.sku_id, {"sku": line.sku.code, "name": line.sku.name, "needed": 0,
                                            "packed": packed.get(line.sku_id, 0),
                                            "in_box": in_box.get(line.sku_id, 0),
                                            "barcode": line.sku.barcodes[0].code if line.sku.barcodes else ""})
        row["needed"] += line.quantity
    return sorted(rows.values(), key=lambda r: (r["packed"] >= r["needed"], r["sku"]))


def _bench(ref: str, refusal: Refusal | None = None, notice: str | None = None, weigh: bool = False):
    """items, weight, or done, for fulfilment `ref` as it stands."""
    with database().reading() as s:
        try:
            f = pack.fulfilment_at(s, _node(s), ref)
        except Refusal as missing:
            return _home(refusal=missing)
        if f.status in pack.PACKED_OR_LATER:
            return _done_screen(s, f, refusal=refusal, notice=notice)
        if f.status != FulfilmentStatus.picked:
            return _home(refusal=refusal or _unpackable(f))
        open_parcel = next((p for p in f.parcels if p.status == ParcelStatus.open), None)
        in_box = sum(item.quantity for item in open_parcel.items) if open_parcel else 0
        left = sum(pack.remaining(f).values())
        step = "weight" if in_box and (weigh or left == 0) else "items"
        template = "weight.html" if step == "weight" else "items.html"
        return render_screen(SCREENS + template, _status(refusal), {"HX-Push-Url": url_for("pack.bench", ref=ref)},
                             f=f, rows=_rows(f), step=step, in_box=in_box, left=left,
                             number=open_parcel.number if open_parcel else len(f.parcels) + 1,
                             closed=[p for p in f.parcels if p.status != ParcelStatus.open],
                             estimate=_estimate(open_parcel), printer=my_printer(),
                             refusal=refusal, notice=notice)


def _unpackable(f: Fulfilment) -> Refusal:
    try:
        pack.check_packable(f)
    except Refusal as refusal:
        return refusal
    return Refusal("pack_not_found", code=f.ref)  # pragma: no cover - picked is packable


def _estimate(parcel: Parcel | None) -> int:
    """The parcel's weight by its items' master data, a hint beside the scale."""
    if parcel is None:
        return 0
    return sum(item.quantity * (item.sku.weight_g or 0) for item in parcel.items)


def _done_screen(s: Session, f: Fulfilment, refusal: Refusal | None = None, notice: str | None = None,
                 printed: Parcel | None = None):
    return render_screen(SCREENS + "done.html", _status(refusal), {"HX-Push-Url": url_for("pack.bench", ref=f.ref)},
                         f=f, parcels=[p for p in f.parcels if p.status != ParcelStatus.open], printed=printed,
                         printer=my_printer(), refusal=refusal, notice=notice)


def _closed_screen(parcel_id: int, notice: str | None, refusal: Refusal | None):
    """After a close: the label printing, and the next parcel or done."""
    with database().reading() as s:
        parcel = s.get(Parcel, parcel_id)
        f = parcel.fulfilment
        if f.status in pack.PACKED_OR_LATER:
            return _done_screen(s, f, refusal=refusal, notice=notice, printed=parcel)
        return render_screen(SCREENS + "closed.html", _status(refusal),
                             {"HX-Push-Url": url_for("pack.bench", ref=f.ref)},
                             f=f, parcel=parcel, left=sum(pack.remaining(f).values()), printed=parcel,
                             count=max(pack.parcel_count(f), parcel.number),
                             printer=my_printer(), refusal=refusal, notice=notice)


# --- screens -------------------------------------------------------------------------

@bp.get("")
def home():
    """home: totes waiting, parcels to resume, the bench's printer."""
    return _home()


@bp.post("/start")
def start():
    """home: a tote or fulfilment -> items (or weight, or done when packed);
    a parcel's label -> parcel.
    Refusals (422, home): pack_not_found, pack_intercepted (alarm),
    pack_not_picked, pack_already_packed, scan_unreadable."""
    code = (request.form.get("scan") or "").strip()
    if not code:
        return _home(refusal=Refusal("scan_unreadable"))
    try:
        with database().reading() as s:
            ref = pack.find_for_packing(s, _node(s), code).ref
    except Refusal as refusal:
        if refusal.key == "pack_not_found":
            with database().reading() as s:
                try:
                    tracking = pack.parcel_at(s, _node(s), code).tracking_number
                except Refusal:
                    tracking = None
            if tracking is not None:
                return _parcel_screen(tracking)
        _log(refusal)
        return _home(refusal=refusal)
    return _bench(ref)


@bp.get("/f/<ref>")
def bench(ref: str):
    """items or weight for a fulfilment being packed; done when it is packed."""
    return _bench(ref)


@bp.post("/f/<ref>/scan")
def scan(ref: str):
    """items: a unit -> items (one more packed), or weight when every unit is
    in a parcel.
    Refusals (422, items): pack_wrong_product, pack_extra_item,
    pack_unknown_product, scan_unreadable; pack_intercepted (alarm, items
    shown no more: home). A repeated scan id: the same screen, nothing
    counted twice."""
    code = request.form.get("scan", "")
    sid = scan_id()
    try:
        done = database().run(lambda s: pack.scan(s, _me(s), sid, _node(s), ref, code))
    except Refusal as refusal:
        _log(refusal)
        if refusal.key == "pack_intercepted":
            return _home(refusal=refusal)
        return _bench(ref, refusal=refusal)
    if done.repeat:
        return _bench(ref, notice=_("Already counted."))
    return _bench(ref, notice=_("%(sku)s packed.", sku=done.sku))


@bp.get("/f/<ref>/weight")
def weigh(ref: str):
    """weight: close the parcel now (the box is full, units are left)."""
    return _bench(ref, weigh=True)


@bp.post("/f/<ref>/close")
def close(ref: str):
    """weight: a weight -> closed (the label prints; next parcel), or done
    after the fulfilment's last unit.
    Refusals (422, weight or items): pack_weight_needed, pack_empty_parcel,
    pack_intercepted (alarm, home). printer_unavailable (422, closed): the
    parcel stays packed; reprint from its page. A repeated scan id: the
    parcel closed the first time."""
    sid = scan_id()
    weight = parse_weight(request.form.get("weight", ""))
    prefix = current_app.config["LUYUE"].gs1_company_prefix
    try:
        if weight is None:
            raise Refusal("pack_weight_needed", limit=pack.MAX_PARCEL_WEIGHT_G)
        done = database().run(
            lambda s: pack.close(s, _me(s), sid, _node(s), ref, weight, prefix))
    except Refusal as refusal:
        _log(refusal)
        if refusal.key == "pack_intercepted":
            return _home(refusal=refusal)
        return _bench(ref, refusal=refusal, weigh=True)
    if done.parcel_id is None:  # pragma: no cover - a repeated close always names its parcel
        return _bench(ref, notice=_("Already counted."))
    if done.repeat:
        return _closed_screen(done.parcel_id, _("Already counted."), None)
    notice, refusal = _print(done.parcel_id)
    if notice is None and refusal is None:
        notice = _("Parcel closed. Its label opens in the print dialog.")
    return _closed_screen(done.parcel_id, notice, refusal)


_WEIGHT = re.compile(r"(\d+(?:[.,]\d+)?)\s*(kg|g|lb)?", re.IGNORECASE)


def parse_weight(raw: str) -> int | None:
    """Grams from what was typed or what a scale sent as keystrokes:
    "1250", "1250 g", "1.25 kg", "ST,GS,+  1.250kg", "1,25". A number with
    a decimal point and no unit is kilograms (scales send 1.250)."""
    found = _WEIGHT.findall(raw or "")
    if not found:
        return None
    number, unit = found[-1]
    value = float(number.replace(",", "."))
    unit = unit.lower()
    if unit == "kg" or (not unit and re.search(r"[.,]", number)):
        value *= 1000
    elif unit == "lb":
        value *= 453.59237
    if not math.isfinite(value) or value > pack.MAX_PARCEL_WEIGHT_G:
        return None  # the refusal names the range
    grams = round(value)
    return grams if grams > 0 else None


# --- printers ------------------------------------------------------------------------

@bp.post("/printer")
def choose_printer():
    """home: the bench's printer (or none: the browser's print dialog) -> home.
    Refusals: printer_unknown."""
    name = (request.form.get("printer") or "").strip()
    if name and name not in printers():
        return _home(refusal=Refusal("printer_unknown", printer=name))
    if name:
        session["pack_printer"] = name
        return _home(notice=_("Labels go to printer %(printer)s.", printer=name))
    session.pop("pack_printer", None)
    return _home(notice=_("Labels open in the browser's print dialog."))


# --- parcels and their papers ----------------------------------------------------------

def _parcel_screen(tracking: str, refusal: Refusal | None = None, notice: str | None = None,
                   printed: bool = False):
    with database().reading() as s:
        parcel = pack.parcel_at(s, _node(s), tracking)
        f = parcel.fulfilment
        return render_screen(SCREENS + "parcel.html", _status(refusal),
                             {"HX-Push-Url": url_for("pack.parcel", tracking=parcel.tracking_number)},
                             parcel=parcel, f=f, count=max(pack.parcel_count(f), parcel.number),
                             printed=parcel if printed else None, printer=my_printer(),
                             refusal=refusal, notice=notice)


@bp.get("/parcels/<tracking>")
def parcel(tracking: str):
    """parcel: status, carrier, tracking, SSCC, items; reprint, slip.
    Refusals: parcel_not_found (home)."""
    return _parcel_screen(tracking)


@bp.post("/parcels/<tracking>/print")
def reprint(tracking: str):
    """parcel: print the label again -> parcel (sent to the bench's printer,
    or the browser's print dialog opens). Refusals: printer_unavailable."""
    with database().reading() as s:
        parcel_id = pack.parcel_at(s, _node(s), tracking).id
    notice, refusal = _print(parcel_id)
    return _parcel_screen(tracking, refusal=refusal, notice=notice, printed=my_printer() is None)


def pdf_response(body: bytes, name: str) -> Response:
    """A PDF shown in the browser (inline), never cached."""
    return Response(body, mimetype=PDF, headers={"Content-Disposition": f'inline; filename="{name}"',
                                                 "Cache-Control": "no-store"})


@bp.get("/parcels/<tracking>/label.pdf")
def label_pdf(tracking: str):
    """The parcel's shipping label, LUYUE_LABEL_SIZE (or ?size=76x130)."""
    size = request.args.get("size") or label_size()
    if size not in SIZES:
        size = label_size()
    with database().reading() as s:
        parcel = pack.parcel_at(s, _node(s), tracking)
        label, parcel_id, first = pack.label_data(parcel), parcel.id, parcel.label_printed_at is None
    if first:
        database().run(lambda s: _printed(s, parcel_id))
    return pdf_response(shipping_label_pdf(label, size=size), f"label-{label.tracking_number}.pdf")


@bp.get("/parcels/<tracking>/slip.pdf")
def slip_pdf(tracking: str):
    """The parcel's packing slip (装箱单): what is in the box."""
    with database().reading() as s:
        parcel = pack.parcel_at(s, _node(s), tracking)
        slip, name = pack.packing_slip_data(parcel), parcel.tracking_number
    return pdf_response(packing_slip_pdf(slip), f"slip-{name}.pdf")


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=clock.zone())
    return start.astimezone(dt.timezone.utc), (start + dt.timedelta(days=1)).astimezone(dt.timezone.utc)


@bp.get("/labels.pdf")
def labels_pdf():
    """Every label of parcels packed at my node on one day (?day=YYYY-MM-DD,
    today by default) in one PDF, a page each."""
    try:
        day = dt.date.fromisoformat(request.args["day"]) if request.args.get("day") else None
    except ValueError:
        day = None
    day = day or clock.business_day(utcnow())
    size = request.args.get("size") if request.args.get("size") in SIZES else label_size()
    with database().reading() as s:
        labels = [pack.label_data(p) for p in pack.labelled_on(s, _node(s), *_day_bounds(day))]
    if not labels:
        return _home(refusal=Refusal("labels_none", day=day.isoformat()))
    return pdf_response(batch_labels_pdf(labels, size=size), f"labels-{g.user.node.code}-{day.isoformat()}.pdf")
