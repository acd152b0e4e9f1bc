"""Same-city rider screens (同城配送): thin views over `app.fulfilment.ride`.

Screens, as named states:
    home    scan parcels at pickup from the dock; my drop list, nearest first
    drop    one drop: where, who, what; deliver with the customer's code or a
            photo, or report nobody there
    locked  (lead) parcels whose code is locked after too many wrong codes:
            let the rider try again, or confirm the delivery by hand

Every action answers with the screen to show next; a refusal answers 422 with
the same screen and the catalogue's message in a banner. A wrong code is the
one refusal that writes something: it is counted (committed) before the
refusal is shown, and after `ride.MAX_CODE_FAILURES` the code is locked.
"""
from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

from flask import Blueprint, current_app, g, request, send_file, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.fulfilment import ride, tracking
from app.fulfilment.errors import Refusal
from app.fulfilment.scope import NodeScope
from app.models import Fulfilment, Parcel, ParcelDelivery, Role, TrackingStatus, User
from app.web import auth, database
from app.web.handheld import (
    refused_outside_scan,
    render_screen,
    scan_id,
    current_user as _me,
    screen_status as _status,
    log_refusal as _log,
)

bp = Blueprint("ride", __name__, url_prefix="/ride")

SCREENS = "rider/"
PROOFS = "proofs"  # under the instance folder
# What a photo file starts with: JPEG, PNG, WebP (RIFF....WEBP), HEIC/HEIF (....ftyp).
_MAGIC = ((0, b"\xff\xd8\xff"), (0, b"\x89PNG\r\n\x1a\n"), (8, b"WEBP"), (4, b"ftyp"))
_SUFFIX = {b"\xff\xd8\xff": ".jpg", b"\x89PNG\r\n\x1a\n": ".png", b"WEBP": ".webp", b"ftyp": ".heic"}

auth.ROLE_HOME.setdefault(Role.rider, "ride.home")


@bp.errorhandler(Refusal)
def _refused(refusal: Refusal):
    """A refusal outside a drop (a role, a node): the refusal screen."""
    return refused_outside_scan(refusal, _home)


def _home(refusal: Refusal | None = None, notice: str | None = None):
    with database().reading() as s:
        drops = ride.drop_list(s, _me(s))
        return render_screen(SCREENS + "home.html", _status(refusal), {"HX-Push-Url": url_for("ride.home")},
                             drops=drops, refusal=refusal, notice=notice, limit=ride.MAX_CODE_FAILURES)


def _drop(parcel_id: int, refusal: Refusal | None = None, notice: str | None = None):
    with database().reading() as s:
        try:
            drop = ride.on_list(s, _me(s), parcel_id)
        except Refusal as gone:
            return _home(refusal=refusal or gone, notice=notice)
        return render_screen(SCREENS + "drop.html", _status(refusal),
                             {"HX-Push-Url": url_for("ride.drop", parcel_id=parcel_id)},
                             drop=drop, refusal=refusal, notice=notice, limit=ride.MAX_CODE_FAILURES,
                             left=max(0, ride.MAX_CODE_FAILURES - drop.delivery.code_failures),
                             photo_limit_mb=_photo_limit() // (1024 * 1024))


def _photo_limit() -> int:
    return current_app.config["LUYUE"].proof_photo_max_bytes


def _code_key() -> str:
    return current_app.config["LUYUE"].delivery_code_secret or current_app.config["SECRET_KEY"]


# --- screens -----------------------------------------------------------------------------

@bp.get("/")
def home():
    """My drop list and the pickup scan field."""
    return _home()


@bp.post("/pickup")
def pickup():
    """A parcel's label scanned at the dock.

    home --scan a same-city parcel--> home (on my drop list: out for delivery;
         shipped now if the dock had not scanned it out yet)
    home --scan it again--> home ("already on your list")
    home --scan another carrier's, another node's, a cancelled (alarm), a
         delivered, an unpacked or another rider's parcel--> home + refusal"""
    code = (request.form.get("scan") or "").strip()
    if not code:
        refusal = Refusal("scan_unreadable")
        _log(refusal)
        return _home(refusal=refusal)
    try:
        number, new = database().run(lambda s: (lambda p, n: (p.tracking_number, n))(
            *ride.pickup(s, _me(s), code, scan_id())))
    except Refusal as refusal:
        _log(refusal)
        return _home(refusal=refusal)
    if new:
        return _home(notice=_("Parcel %(tracking)s is on your list.", tracking=number))
    return _home(notice=_("Parcel %(tracking)s is already on your list.", tracking=number))


@bp.get("/drops/<int:parcel_id>")
def drop(parcel_id: int):
    """One drop of my list (a parcel not on it: home + refusal)."""
    return _drop(parcel_id)


@bp.post("/drops/<int:parcel_id>/code")
def deliver_with_code(parcel_id: int):
    """The 4-digit code the customer read out.

    drop --right code--> home ("delivered")
    drop --wrong code--> drop + refusal, counted ("n tries left")
    drop --wrong code, none left--> drop + refusal (code locked: photo or lead)
    drop --not 4 digits / code locked--> drop + refusal, not counted"""
    typed = request.form.get("code", "")
    sid = scan_id()
    try:
        check = database().run(lambda s: ride.try_code(s, _me(s), parcel_id, typed, _code_key(), sid))
    except Refusal as refusal:
        _log(refusal)
        return _drop(parcel_id, refusal=refusal)
    if check.delivered:
        return _delivered(parcel_id)
    with database().reading() as s:
        number = s.get(Parcel, parcel_id).tracking_number
    refusal = (Refusal("delivery_code_wrong", tracking=number, left=check.left) if check.left
               else Refusal("delivery_code_locked", tracking=number, limit=ride.MAX_CODE_FAILURES))
    _log(refusal)
    return _drop(parcel_id, refusal=refusal)


@bp.post("/drops/<int:parcel_id>/photo")
def deliver_with_photo(parcel_id: int):
    """A photo of the handover, taken with the phone's camera.

    drop --photo--> home ("delivered")
    drop --no file / not an image / too large--> drop + refusal"""
    limit = _photo_limit()
    request.max_content_length = limit + 64 * 1024  # the form around the photo
    try:
        upload = request.files.get("photo")
    except Exception:  # noqa: BLE001 - werkzeug's RequestEntityTooLarge, read lazily
        upload = None
        refusal = Refusal("photo_too_large", limit_mb=limit // (1024 * 1024))
        _log(refusal)
        return _drop(parcel_id, refusal=refusal)
    sid = scan_id()
    try:
        data = _read_photo(upload, limit)
        with database().reading() as s:
            ride.on_list(s, _me(s), parcel_id)  # before anything goes on disk
        relative = _store_photo(parcel_id, data)
        database().run(lambda s: ride.deliver_with_photo(s, _me(s), parcel_id, relative, sid))
    except Refusal as refusal:
        _log(refusal)
        return _drop(parcel_id, refusal=refusal)
    return _delivered(parcel_id)


@bp.post("/drops/<int:parcel_id>/failed")
def failed_attempt(parcel_id: int):
    """Nobody there: drop --> home, the parcel stays on the list."""
    sid = scan_id()
    try:
        number = database().run(lambda s: ride.failed_attempt(s, _me(s), parcel_id,
                                                              request.form.get("note", ""), sid).tracking_number)
    except Refusal as refusal:
        _log(refusal)
        return _drop(parcel_id, refusal=refusal)
    return _home(notice=_("Parcel %(tracking)s: delivery attempt recorded. It stays on your list.",
                          tracking=number))


def _delivered(parcel_id: int):
    with database().reading() as s:
        number = s.get(Parcel, parcel_id).tracking_number
    return _home(notice=_("Parcel %(tracking)s delivered.", tracking=number))


def _read_photo(upload, limit: int) -> bytes:
    if upload is None or not upload.filename:
        raise Refusal("photo_needed")
    data = upload.stream.read(limit + 1)
    if not data:
        raise Refusal("photo_needed")
    if len(data) > limit:
        raise Refusal("photo_too_large", limit_mb=limit // (1024 * 1024))
    if not any(data[at:at + len(magic)] == magic for at, magic in _MAGIC):
        raise Refusal("photo_not_image")
    return data


def _store_photo(parcel_id: int, data: bytes) -> str:
    """Write the photo under instance/proofs/<yyyy-mm>/; returns the path
    relative to the instance folder."""
    suffix = next(_SUFFIX[m] for at, m in _MAGIC if data[at:at + len(m)] == m)
    month = dt.date.today().strftime("%Y-%m")
    relative = Path(PROOFS) / month / f"{parcel_id}-{secrets.token_hex(8)}{suffix}"
    target = Path(current_app.instance_path) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return relative.as_posix()


# --- leads -------------------------------------------------------------------------------

@bp.get("/locked")
def locked():
    """(lead) Same-city parcels of my node on their way whose code is locked."""
    return _locked()


def _locked(refusal: Refusal | None = None, notice: str | None = None):
    with database().reading() as s:
        rows = s.execute(
            select(Parcel, ParcelDelivery, User).join(ParcelDelivery, ParcelDelivery.parcel_id == Parcel.id)
            .outerjoin(User, User.id == ParcelDelivery.rider_id)
            .where(ParcelDelivery.code_failures >= ride.MAX_CODE_FAILURES,
                   ParcelDelivery.status.in_(ride.ON_THE_WAY), NodeScope.of(g.user).where(User.node_id))
            .order_by(ParcelDelivery.updated_at)).all()
        return render_screen(SCREENS + "locked.html", _status(refusal), rows=rows, refusal=refusal, notice=notice)


@bp.post("/locked/<int:parcel_id>/<action>")
def lead_action(parcel_id: int, action: str):
    """locked --unlock--> locked (the rider may try codes again)
    locked --confirm--> locked (delivered, proof "lead")"""
    if action not in ("unlock", "confirm"):
        raise Refusal("not_found", what="action")

    def work(s: Session) -> str:
        parcel = s.get(Parcel, parcel_id)
        delivery = tracking.delivery_of(s, parcel) if parcel is not None else None
        if delivery is None or delivery.rider is None or not NodeScope.of(g.user).covers(delivery.rider.node_id):
            raise Refusal("not_found", what="parcel")
        if action == "unlock":
            ride.unlock_code(s, _me(s), parcel)
        else:
            ride.confirm_by_lead(s, _me(s), parcel)
        return parcel.tracking_number

    try:
        number = database().run(work)
    except Refusal as refusal:
        _log(refusal)
        return _locked(refusal=refusal)
    return _locked(notice=_("Parcel %(tracking)s: done.", tracking=number))


@bp.get("/proofs/<int:parcel_id>")
def proof_photo(parcel_id: int):
    """(lead) The photo a rider took as proof of delivery."""
    with database().reading() as s:
        # Only a photo of a parcel sent from a node in the lead's scope.
        delivery = s.scalar(select(ParcelDelivery).join(Parcel, Parcel.id == ParcelDelivery.parcel_id)
                            .join(Fulfilment, Fulfilment.id == Parcel.fulfilment_id)
                            .where(ParcelDelivery.parcel_id == parcel_id,
                                   NodeScope.of(g.user).where(Fulfilment.node_id)))
        if delivery is None or not delivery.photo_path:
            raise Refusal("not_found", what="photo")
        path = Path(current_app.instance_path) / delivery.photo_path
    if not path.is_file():
        raise Refusal("not_found", what="photo")
    return send_file(path, max_age=0)


@bp.app_template_filter("km")
def _km(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} km" if value >= 1 else f"{value * 1000:.0f} m"


@bp.app_template_global("masked_phone")
def _masked_phone(phone: str | None) -> str:
    return (phone[:3] + "****" + phone[-4:]) if phone and len(phone) >= 11 else (phone or "")


bp.add_app_template_global(TrackingStatus, "TrackingStatus")
