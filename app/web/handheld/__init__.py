"""Handheld screens: one scenario per module (pick; pack, ship, ride later).

Shared by every scenario: a screen is a template whose `screen` block is the
`<main id="screen">` element; htmx requests get that block alone (swapped in
place, 422 included, so refusals show where the picker looks), other
requests the whole page. Scans carry a client-made id (`scan_id`).
"""
from __future__ import annotations

import re
import uuid
from typing import Any

from flask import current_app, g, render_template, request
from jinja2_fragments.flask import render_block
from sqlalchemy.orm import Session

from app.fulfilment.errors import Refusal
from app.models import Node, User

_SCAN_ID = re.compile(r"^[A-Za-z0-9_.:-]{8,64}$")


def render_screen(template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any):
    context.setdefault("refusal", None)
    context.setdefault("notice", None)
    if getattr(request, "htmx", False) and not request.htmx.boosted:
        body = render_block(template, "screen", **context)
    else:
        body = render_template(template, **context)
    return body, status, headers or {}


def refusal_text(refusal: Refusal) -> str:
    return refusal.message(g.get("language") or "zh")


def scan_id() -> str:
    """The id the handheld made for this scan. Without one (no JavaScript) a
    fresh one: that scan cannot be recognised when retried, but still counts."""
    raw = (request.form.get("scan_id") or "").strip()
    if _SCAN_ID.match(raw):
        return raw
    if raw:
        current_app.logger.info("scan id %r not usable; made a new one", raw[:80])
    return "srv-" + uuid.uuid4().hex


def new_scan_id() -> str:
    """Rendered into scan forms, so even a browser without JavaScript sends an
    id that a resubmission of the same form repeats."""
    return "page-" + uuid.uuid4().hex


def current_user(session: Session) -> User:
    """The logged-in worker, in this session."""
    return session.get(User, g.user.id)


def current_node(session: Session) -> Node:
    """The node the logged-in worker works at, in this session."""
    return session.get(Node, g.user.node_id)


def screen_status(refusal: Refusal | None) -> int:
    """A refusal is shown in place (htmx swaps 422 like a success)."""
    return 422 if refusal is not None else 200


def log_refusal(refusal: Refusal) -> None:
    """The one log line of a refusal that a screen shows itself."""
    current_app.logger.info("refused %s %s -> %s: %s", request.method, request.path, refusal.key,
                            refusal.message("en")[:300])


def refused_outside_scan(refusal: Refusal, home, *, refusal_screen: bool = False):
    """A refusal that is not a scan's (a role, a node, something not found):
    the refusal screen when there is no home to show it on, else the home."""
    if refusal_screen or g.user is None or g.user.node_id is None or refusal.key in ("forbidden", "no_node"):
        return render_screen("handheld/refused.html", refusal.status, refusal=refusal)
    return home(refusal=refusal)
