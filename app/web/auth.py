"""Logging in on a handheld: scan the badge, then type the PIN.

The login lasts one shift (`Settings.session_hours`), checked on every request
against the time it was made, not only by the cookie's expiry, and against
the user's session version (app.access.end_sessions): logout, a new PIN,
deactivation and a lead's sign-out end every copy of the cookie. The language
is the user's (stored on their profile, switchable on any screen); before
login it is the browser's, or what was last chosen on this device.

Who may open which screen is one table, `app.web.authorisation.RULES`.
"""
from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app import access
from app.fulfilment.errors import Refusal
from app.models import Role, User
from app.web import database

bp = Blueprint("auth", __name__)

LANGUAGES = {"zh": "zh_CN", "en": "en"}
# Where each role starts after login; later blueprints add theirs here.
ROLE_HOME: dict[Role, str] = {Role.picker: "pick.home", Role.lead: "pick.home", Role.admin: "pick.home"}


@bp.app_template_global("new_scan_id")
def _new_scan_id() -> str:
    # A global, not a context variable: the macros that use it see globals only.
    from app.web.handheld import new_scan_id
    return new_scan_id()


# --- who is asking -------------------------------------------------------------------

@bp.before_app_request
def load_user() -> None:
    g.user = None
    user_id = session.get("user_id")
    # Static files need no worker: they load even while the database is down.
    if user_id is not None and request.endpoint != "static":
        hours = current_app.config["LUYUE"].session_hours
        if time.time() - float(session.get("login_at", 0)) > hours * 3600:
            session.pop("user_id", None)
            session["expired"] = True  # said once, on the login screen
        else:
            with database().reading() as s:
                user = s.scalar(select(User).where(User.id == user_id, User.active.is_(True))
                                .options(selectinload(User.node)))
            if user is None or user.session_version != session.get("session_version"):
                # Deactivated, or this login was ended (logout elsewhere, a
                # new PIN, a lead's sign-out): said once, on the login screen.
                session.pop("user_id", None)
                session["signed_out"] = True
                user = None
            g.user = user
    g.language = g.user.language if g.user else (session.get("language") or _browser_language())


# Requests that change something or open a live socket.
_GUARDED_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@bp.before_app_request
def same_site_only() -> None:
    """A screen's form or live socket opened from another site is refused.

    The session cookie is SameSite=Lax, which browsers already keep off
    cross-site posts; this also covers sibling sites under the same domain
    and older browsers. Browsers name the page a request came from in Origin
    (or Referer); a request naming neither is not from a browser page and
    passes. The API is not concerned: it takes bearer tokens, not cookies."""
    upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
    if request.path.startswith("/api/") or (request.method not in _GUARDED_METHODS and not upgrade):
        return
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source:
        return
    host = urlsplit(source).netloc.lower() if source != "null" else "null"
    trusted = {request.host.lower()} | {
        h.strip().lower() for h in current_app.config["LUYUE"].trusted_origins.split(",") if h.strip()}
    if host not in trusted:
        raise Refusal("cross_site_request", source=host or source[:80])


def _browser_language() -> str:
    best = request.accept_languages.best_match(["zh", "zh-CN", "en"], default="zh")
    return "en" if best == "en" else "zh"


def locale() -> str:
    """Flask-Babel's locale selector."""
    return LANGUAGES.get(getattr(g, "language", None) or "zh", "zh_CN")


def _home_for(user: User) -> str:
    endpoint = ROLE_HOME.get(user.role)
    return url_for(endpoint) if endpoint and endpoint in current_app.view_functions else url_for("auth.menu")


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site, never another host."""
    if not target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc and target.startswith("/") else None


# --- screens -------------------------------------------------------------------------

@bp.get("/")
def index():
    if g.user is None:
        return redirect(url_for("auth.login"))
    return redirect(_home_for(g.user))


@bp.get("/menu")
def menu():
    if g.user is None:
        return redirect(url_for("auth.login"))
    return render_template("auth/menu.html")


@bp.get("/login")
def login():
    """Badge step. -> PIN step on a scanned badge."""
    if g.user is not None:
        return redirect(_home_for(g.user))
    refusal = (Refusal("session_expired") if session.pop("expired", False)
               else Refusal("signed_out") if session.pop("signed_out", False) else None)
    return render_template("auth/badge.html", refusal=refusal, next=_safe_next(request.args.get("next")))


@bp.post("/login")
def badge():
    """Badge scanned -> PIN step (whether the badge exists is not told here)."""
    code = (request.form.get("scan") or "").strip()
    nxt = _safe_next(request.form.get("next"))
    if not code:
        return render_template("auth/badge.html", refusal=Refusal("scan_unreadable"), next=nxt), 422
    return render_template("auth/pin.html", badge=code, next=nxt)


@bp.post("/login/pin")
def pin():
    """PIN typed -> the role's first screen; wrong badge or PIN -> badge step
    with `login_failed`."""
    from app.barcodes import read_scan
    code = read_scan(request.form.get("badge", "")).text
    refusal = None
    try:
        with database().transaction() as s:  # wrong PINs are counted
            user = access.check_login(s, code, request.form.get("pin", ""))
    except Refusal as locked:
        user, refusal = None, locked
    if user is None:
        refusal = refusal or Refusal("login_failed")
        current_app.logger.info("login refused for badge %r: %s", code[:64], refusal.key)
        return render_template("auth/badge.html", refusal=refusal,
                               next=_safe_next(request.form.get("next"))), refusal.status
    session.clear()
    session.permanent = True
    session["user_id"] = user.id
    session["login_at"] = time.time()
    session["session_version"] = user.session_version
    session["language"] = user.language
    return redirect(_safe_next(request.form.get("next")) or _home_for(user))


@bp.post("/logout")
def logout():
    """Ends this user's login everywhere: a copy of the cookie (another tab,
    a shared handheld's saved state) no longer works."""
    if g.user is not None:
        user_id = g.user.id
        database().run(lambda s: access.end_sessions(s, s.get(User, user_id)))
    language = session.get("language")
    session.clear()
    if language:
        session["language"] = language
    return redirect(url_for("auth.login"))


@bp.post("/language")
def language():
    """Switch the screens' language; a logged-in user keeps it on their profile."""
    chosen = request.form.get("language", "")
    if chosen in LANGUAGES:
        session["language"] = chosen
        if g.user is not None:
            with database().transaction() as s:
                s.get(User, g.user.id).language = chosen
    return redirect(_safe_next(request.form.get("next")) or url_for("auth.index"))
