"""Who may open which screen: one table, route endpoint -> who, checked
before every request (`install`).

    ANYONE   no login needed: logging in, the language, health, static files
    API      the API: a bearer token, checked by the API itself (`app.web.api`);
             a floor login opens none of it
    roles    a logged-in floor user of one of these roles, at a node; admins
             always pass

Not logged in: the login screen (htmx follows HX-Redirect). A route without
an entry here is refused to everyone, and the route-by-role test fails.
Live sockets are checked by their view (`socket_refusal`), which closes a
refused one with 1008 so the page does not retry.

What a user may see once in is their node's data (`app.fulfilment.scope`).
"""
from __future__ import annotations

from flask import Flask, g, redirect, request, url_for

from app.fulfilment.errors import Refusal
from app.models import Role, User

ANYONE = "anyone"
API = "api"

PICKING = (Role.picker, Role.lead)
COUNTING = (Role.picker, Role.lead)
PACKING = (Role.packer, Role.lead)
# A parcel's page and its PDFs: the dock reprints a torn label too.
PARCELS = (Role.packer, Role.dock, Role.lead)
DOCK = (Role.dock, Role.lead)
RIDING = (Role.rider,)
LEADING = (Role.lead,)

RULES: dict[str, str | tuple[Role, ...]] = {
    "static": ANYONE,
    "health.healthz": ANYONE,
    # logging in and out
    "auth.index": ANYONE, "auth.menu": ANYONE, "auth.login": ANYONE, "auth.badge": ANYONE,
    "auth.pin": ANYONE, "auth.logout": ANYONE, "auth.language": ANYONE,
    # the API (its token rules: channel, admin, carrier)
    **{f"api.{name}": API for name in (
        "submit_order", "get_order", "cancel_order", "confirm_receipt", "authorise_return", "event_feed",
        "carrier_events", "put_node", "put_sku", "put_stock", "get_webhook", "put_webhook", "delete_webhook",
        "webhook_deliveries", "sla_report", "sla_csv", "list_nodes", "get_node", "list_skus", "get_sku",
        "get_stock")},
    # the API's own contract, for anyone writing against it
    "openapi.served": ANYONE,
    # picking
    "pick.home": PICKING, "pick.work": PICKING, "pick.claim": PICKING, "pick.scan": PICKING,
    "pick.keypad": PICKING, "pick.enter_quantity": PICKING, "pick.short_confirm": PICKING,
    "pick.short": PICKING, "pick.done": PICKING, "pick.live": PICKING,
    "pick.lists": LEADING, "pick.release": LEADING,
    # counting
    "count.home": COUNTING, "count.scan_bin": COUNTING, "count.bin": COUNTING, "count.scan_product": COUNTING,
    "count.tally": COUNTING, "count.scan_unit": COUNTING, "count.confirm": COUNTING,
    # packing
    "pack.home": PACKING, "pack.start": PACKING, "pack.bench": PACKING, "pack.scan": PACKING,
    "pack.weigh": PACKING, "pack.close": PACKING, "pack.choose_printer": PACKING, "pack.labels_pdf": PACKING,
    "pack.parcel": PARCELS, "pack.reprint": PARCELS, "pack.label_pdf": PARCELS, "pack.slip_pdf": PARCELS,
    # the dock: outbound and returns
    "ship.home": DOCK, "ship.open_handover": DOCK, "ship.handover": DOCK, "ship.scan": DOCK,
    "ship.confirm": DOCK, "ship.close": DOCK, "ship.manifest": DOCK, "ship.labels": DOCK,
    "ship.returns.home": DOCK, "ship.returns.scan": DOCK, "ship.returns.parcel": DOCK,
    "ship.returns.scan_bin": DOCK, "ship.returns.receive": DOCK, "ship.returns.customer_return": DOCK,
    "ship.returns.scan_unit": DOCK, "ship.returns.unit": DOCK, "ship.returns.count_unit": DOCK,
    "ship.returns.close": DOCK,
    # same-city riders; their leads
    "ride.home": RIDING, "ride.pickup": RIDING, "ride.drop": RIDING, "ride.deliver_with_code": RIDING,
    "ride.deliver_with_photo": RIDING, "ride.failed_attempt": RIDING,
    "ride.locked": LEADING, "ride.lead_action": LEADING, "ride.proof_photo": LEADING,
    # the shift lead
    "lead.dashboard": LEADING, "lead.live": LEADING, "lead.find": LEADING, "lead.fulfilment": LEADING,
    "lead.redispatch_by_hand": LEADING, "lead.place_hold": LEADING, "lead.release_hold": LEADING,
    "lead.authorise_return": LEADING, "lead.returns_page": LEADING, "lead.release_list": LEADING,
    "lead.counts": LEADING, "lead.decide_count": LEADING, "lead.request_count": LEADING,
    "lead.sign_out_worker": LEADING,
    "reports.sla_page": LEADING, "reports.sla_csv": LEADING,
}


def refusal(user: User | None, endpoint: str | None) -> Refusal | None:
    """Why `user` may not open `endpoint` (None: they may). Not logged in:
    `unauthorized` (screens send the login screen instead)."""
    rule = RULES.get(endpoint or "")
    if rule is None:
        return Refusal("forbidden", needed="admin")  # a route nobody gave a rule: nobody
    if rule in (ANYONE, API):
        return None
    if user is None:
        return Refusal("unauthorized")
    if user.role not in rule and user.role != Role.admin:
        return Refusal("forbidden", needed=" / ".join(r.value for r in rule))
    if user.node_id is None:
        return Refusal("no_node")
    return None


def socket_refusal() -> Refusal | None:
    """For a live socket's view: why this session may not open it."""
    return refusal(g.get("user"), request.endpoint)


def _guard():
    if request.endpoint is None:
        return None  # no route: the 404 or 405 answers
    if request.url_rule is not None and request.url_rule.websocket:
        return None  # the socket's view asks socket_refusal() and closes with 1008
    refused = refusal(g.get("user"), request.endpoint)
    if refused is None:
        return None
    if refused.key == "unauthorized":
        target = url_for("auth.login", next=request.path if request.method == "GET" else None)
        if getattr(request, "htmx", False):
            return "", 200, {"HX-Redirect": target}
        return redirect(target)
    raise refused


def install(app: Flask) -> None:
    """Check every request against RULES, after the user is loaded (so call
    this after the auth blueprint is registered)."""
    app.before_request(_guard)
