"""Every route of the app against every role, a user of another node and a
logged-out visitor, from the one table below (what each route is for,
written here independently of the app's own table): a route the table
does not name fails the walk, so a new route must say who may open it.

Screens: a role not allowed is refused (403), a visitor is sent to the login
screen, an allowed role is let through to the view. The API answers 401
without a token, whatever floor login the browser holds. Live sockets,
through a real server: a refused session is closed with 1008.
"""
from __future__ import annotations

import socket
import threading

import pytest
import requests
from handhelds import login, refusal_of, text
from werkzeug.serving import make_server

from app.access import create_user
from app.web import authorisation

EARLY = "2026-11-25T12:00:00+08:00"

ANYONE, API = "anyone", "api"
PICK = ("picker", "lead")
PACK = ("packer", "lead")
PARCEL = ("packer", "dock", "lead")
DOCK = ("dock", "lead")
RIDE = ("rider",)
LEAD = ("lead",)

# endpoint -> (who may open it, a path to try; {ref}: a fulfilment of SH-PD)
ROUTES: dict[str, tuple[str | tuple[str, ...], str]] = {
    "static": (ANYONE, "/static/manifest.webmanifest"),
    "health.healthz": (ANYONE, "/healthz"),
    "auth.index": (ANYONE, "/"), "auth.menu": (ANYONE, "/menu"), "auth.login": (ANYONE, "/login"),
    "auth.badge": (ANYONE, "/login"), "auth.pin": (ANYONE, "/login/pin"), "auth.logout": (ANYONE, "/logout"),
    "auth.language": (ANYONE, "/language"),
    "api.submit_order": (API, "/api/v1/orders"), "api.get_order": (API, "/api/v1/orders/O-1"),
    "api.cancel_order": (API, "/api/v1/orders/O-1/cancel"),
    "api.confirm_receipt": (API, "/api/v1/orders/O-1/receipt"),
    "api.authorise_return": (API, "/api/v1/orders/O-1/returns"), "api.event_feed": (API, "/api/v1/events"),
    "api.carrier_events": (API, "/api/v1/carrier-events"), "api.put_node": (API, "/api/v1/nodes/X"),
    "api.put_sku": (API, "/api/v1/skus/X"), "api.put_stock": (API, "/api/v1/nodes/X/stock"),
    "api.get_webhook": (API, "/api/v1/webhook"), "api.put_webhook": (API, "/api/v1/webhook"),
    "api.delete_webhook": (API, "/api/v1/webhook"), "api.webhook_deliveries": (API, "/api/v1/webhook/deliveries"),
    "api.sla_report": (API, "/api/v1/reports/sla"), "api.sla_csv": (API, "/api/v1/reports/sla.csv"),
    "api.list_nodes": (API, "/api/v1/nodes"), "api.get_node": (API, "/api/v1/nodes/X"),
    "api.list_skus": (API, "/api/v1/skus"), "api.get_sku": (API, "/api/v1/skus/X"),
    "api.get_stock": (API, "/api/v1/nodes/X/stock"),
    "openapi.served": (ANYONE, "/api/v1/openapi.json"),
    "pick.home": (PICK, "/pick"), "pick.work": (PICK, "/pick/work"), "pick.claim": (PICK, "/pick/claim"),
    "pick.scan": (PICK, "/pick/scan"), "pick.keypad": (PICK, "/pick/quantity"),
    "pick.enter_quantity": (PICK, "/pick/quantity"), "pick.short_confirm": (PICK, "/pick/short"),
    "pick.short": (PICK, "/pick/short"), "pick.done": (PICK, "/pick/done/PL-NOPE"),
    "pick.live": (PICK, "/pick/live"), "pick.lists": (LEAD, "/pick/lists"),
    "pick.release": (LEAD, "/pick/lists/PL-NOPE/release"),
    "count.home": (PICK, "/count"), "count.scan_bin": (PICK, "/count/scan"), "count.bin": (PICK, "/count/b/A-01-01-1"),
    "count.scan_product": (PICK, "/count/b/A-01-01-1/product"),
    "count.tally": (PICK, "/count/b/A-01-01-1/s/SKU-A"), "count.scan_unit": (PICK, "/count/b/A-01-01-1/s/SKU-A/unit"),
    "count.confirm": (PICK, "/count/b/A-01-01-1/s/SKU-A/confirm"),
    "pack.home": (PACK, "/pack"), "pack.start": (PACK, "/pack/start"), "pack.bench": (PACK, "/pack/f/{ref}"),
    "pack.scan": (PACK, "/pack/f/{ref}/scan"), "pack.weigh": (PACK, "/pack/f/{ref}/weight"),
    "pack.close": (PACK, "/pack/f/{ref}/close"), "pack.choose_printer": (PACK, "/pack/printer"),
    "pack.labels_pdf": (PACK, "/pack/labels.pdf"), "pack.parcel": (PARCEL, "/pack/parcels/NOPE"),
    "pack.reprint": (PARCEL, "/pack/parcels/NOPE/print"), "pack.label_pdf": (PARCEL, "/pack/parcels/NOPE/label.pdf"),
    "pack.slip_pdf": (PARCEL, "/pack/parcels/NOPE/slip.pdf"),
    "ship.home": (DOCK, "/ship"), "ship.open_handover": (DOCK, "/ship/open"), "ship.handover": (DOCK, "/ship/h/H-NOPE"),
    "ship.scan": (DOCK, "/ship/h/H-NOPE/scan"), "ship.confirm": (DOCK, "/ship/h/H-NOPE/close"),
    "ship.close": (DOCK, "/ship/h/H-NOPE/close"), "ship.manifest": (DOCK, "/ship/h/H-NOPE/manifest.pdf"),
    "ship.labels": (DOCK, "/ship/h/H-NOPE/labels.pdf"),
    "ship.returns.home": (DOCK, "/ship/returns"), "ship.returns.scan": (DOCK, "/ship/returns/scan"),
    "ship.returns.parcel": (DOCK, "/ship/returns/p/NOPE"), "ship.returns.scan_bin": (DOCK, "/ship/returns/p/NOPE/bin"),
    "ship.returns.receive": (DOCK, "/ship/returns/p/NOPE/receive"),
    "ship.returns.customer_return": (DOCK, "/ship/returns/r/R-NOPE"),
    "ship.returns.scan_unit": (DOCK, "/ship/returns/r/R-NOPE/scan"),
    "ship.returns.unit": (DOCK, "/ship/returns/r/R-NOPE/u/SKU-A"),
    "ship.returns.count_unit": (DOCK, "/ship/returns/r/R-NOPE/u/SKU-A/sellable"),
    "ship.returns.close": (DOCK, "/ship/returns/r/R-NOPE/close"),
    "ride.home": (RIDE, "/ride/"), "ride.pickup": (RIDE, "/ride/pickup"), "ride.drop": (RIDE, "/ride/drops/999"),
    "ride.deliver_with_code": (RIDE, "/ride/drops/999/code"), "ride.deliver_with_photo": (RIDE, "/ride/drops/999/photo"),
    "ride.failed_attempt": (RIDE, "/ride/drops/999/failed"), "ride.locked": (LEAD, "/ride/locked"),
    "ride.lead_action": (LEAD, "/ride/locked/999/unlock"), "ride.proof_photo": (LEAD, "/ride/proofs/999"),
    "lead.dashboard": (LEAD, "/lead"), "lead.live": (LEAD, "/lead/live"), "lead.find": (LEAD, "/lead/find?q={ref}"),
    "lead.fulfilment": (LEAD, "/lead/f/{ref}"), "lead.redispatch_by_hand": (LEAD, "/lead/f/{ref}/redispatch"),
    "lead.place_hold": (LEAD, "/lead/f/{ref}/hold"), "lead.release_hold": (LEAD, "/lead/f/{ref}/release-hold"),
    "lead.authorise_return": (LEAD, "/lead/f/{ref}/return"), "lead.returns_page": (LEAD, "/lead/returns"),
    "lead.release_list": (LEAD, "/lead/lists/PL-NOPE/release"), "lead.counts": (LEAD, "/lead/counts"),
    "lead.sign_out_worker": (LEAD, "/lead/sign-out"),
    "lead.decide_count": (LEAD, "/lead/counts/999/approve"), "lead.request_count": (LEAD, "/lead/counts/request"),
    "reports.sla_page": (LEAD, "/reports/sla"), "reports.sla_csv": (LEAD, "/reports/sla.csv"),
}

# badge, role, node, PIN: one of each role at SH-PD, and two at SH-JD.
PEOPLE = [("P1", "picker", "SH-PD", "1111"), ("K1", "packer", "SH-PD", "5555"), ("D1", "dock", "SH-PD", "6666"),
          ("R1", "rider", "SH-PD", "7777"), ("L1", "lead", "SH-PD", "3333"), ("A1", "admin", "SH-PD", "9999"),
          ("J1", "picker", "SH-JD", "4444"), ("JL", "lead", "SH-JD", "8888")]


def _routes(app) -> dict[str, tuple[set[str], bool]]:
    """endpoint -> (its methods, whether it is a live socket), from the url_map."""
    found: dict[str, tuple[set[str], bool]] = {}
    for rule in app.url_map.iter_rules():
        methods = set(rule.methods or ()) - {"HEAD", "OPTIONS"}
        known = found.get(rule.endpoint, (set(), rule.websocket))
        found[rule.endpoint] = (known[0] | methods, rule.websocket)
    return found


def _may(who: str | tuple[str, ...], role: str) -> bool:
    return role == "admin" or role in who


@pytest.fixture
def people(floor, db):
    with db.transaction() as s:
        for badge, role, node, pin in PEOPLE:
            create_user(s, badge, badge, role, pin, node, "en")


@pytest.fixture
def early(client, floor, people) -> str:
    return floor.order(client, "O-EARLY", [("SKU-A", 1)], EARLY)


def test_every_route_has_exactly_one_rule_here_and_in_the_app(app):
    routes = set(_routes(app))
    assert routes - set(ROUTES) == set(), "routes without a rule in this test's table"
    assert set(ROUTES) - routes == set(), "rules for routes the app no longer has"
    assert set(authorisation.RULES) == routes, "the app's table and its url_map differ"
    for endpoint, (who, _path) in ROUTES.items():
        rule = authorisation.RULES[endpoint]
        assert (rule if isinstance(rule, str) else tuple(r.value for r in rule)) == who, endpoint


def _answer(client, method: str, path: str):
    return client.open(path, method=method, data={} if method != "GET" else None)


def _walk(app, who_is: str | None, role: str | None, ref: str) -> list[str]:
    """Every screen route and method for one identity; returns what went wrong."""
    client = app.test_client()
    if who_is is not None:
        login(client, who_is, dict((b, p) for b, _r, _n, p in PEOPLE)[who_is])
    wrong = []
    for endpoint, (methods, websocket) in sorted(_routes(app).items()):
        who, path = ROUTES[endpoint]
        if websocket or endpoint == "auth.logout":  # sockets below; logging out would end the walk
            continue
        for method in sorted(methods):
            answer = _answer(client, method, path.format(ref=ref))
            status, where, refusal = answer.status_code, answer.headers.get("Location", ""), refusal_of(answer)
            answer.close()
            said = f"{who_is or 'visitor'} {method} {path} -> {status} {where}"
            if status >= 500:
                wrong.append(said)
            elif who == ANYONE:
                if status == 403:
                    wrong.append(said)
            elif who == API:
                if status != 401:  # a floor login is no token
                    wrong.append(said)
            elif role is None:
                if status != 302 or not where.startswith("/login"):
                    wrong.append(said)
            elif _may(who, role):
                if status == 403 or where.startswith("/login"):
                    wrong.append(said)
            elif status != 403 or refusal not in ("forbidden", None):
                wrong.append(said)
    return wrong


@pytest.mark.parametrize("badge", [None] + [badge for badge, *_ in PEOPLE])
def test_every_screen_route_answers_each_role_as_the_table_says(app, early, badge):
    role = next((r for b, r, _n, _p in PEOPLE if b == badge), None)
    assert _walk(app, badge, role, early) == []


# --- a user of another node ------------------------------------------------------------------

def test_a_lead_of_another_node_finds_nothing_of_this_node(app, early, floor):
    other = app.test_client()
    login(other, "JL", "8888")
    for path in (f"/lead/f/{early}", f"/lead/find?q={early}", "/lead/find?q=O-EARLY"):
        answer = other.get(path)
        assert answer.status_code == 404 and refusal_of(answer) == "not_found", path
        assert "SKU-A" not in text(answer) and "SH-PD" not in text(answer)  # nothing of it shown
    for action, form in (("hold", {"reason": "x"}), ("redispatch", {"reason": "x"}), ("release-hold", {})):
        answer = other.post(f"/lead/f/{early}/{action}", data=form)
        assert answer.status_code == 404 and refusal_of(answer) == "not_found"
    assert floor.status(early) == "reserved"
    # Their own pages show their own node, whatever node the address names.
    for path in ("/lead?node=SH-PD", "/lead/counts?node=SH-PD", "/lead/returns?node=SH-PD"):
        page = other.get(path)
        assert page.status_code == 200 and "SH-JD" in text(page) and early not in text(page), path
    assert other.get("/reports/sla?node=SH-PD").status_code == 404
    assert other.get("/reports/sla.csv?node=SH-PD").status_code == 404
    csv = other.get("/reports/sla.csv")
    assert csv.status_code == 200 and "SH-JD" in csv.headers["Content-Disposition"]
    assert not [row for row in csv.get_data(as_text=True).splitlines()[1:] if ",SH-JD," not in row]

    # The lead of this node and an admin see it.
    for badge, pin in (("L1", "3333"), ("A1", "9999")):
        mine = app.test_client()
        login(mine, badge, pin)
        assert mine.get(f"/lead/f/{early}").status_code == 200
        assert mine.get("/lead/find?q=O-EARLY").headers["Location"].endswith(f"/lead/f/{early}")


def test_a_worker_of_another_node_cannot_pack_this_nodes_fulfilment(app, early, floor, db):
    with db.transaction() as s:
        create_user(s, "JK", "JK", "packer", "1212", "SH-JD", "en")
    other = app.test_client()
    login(other, "JK", "1212")
    answer = other.get(f"/pack/f/{early}")
    assert refusal_of(answer) is not None and answer.status_code in (404, 422)


# --- live sockets, through a real server -------------------------------------------------------

@pytest.fixture
def server(app):
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(5)


def _close_code(host: str, path: str, cookie: str | None) -> int | None:
    """The code the server closes a fresh socket with (None: it sent a message)."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import CloseConnection, Request, TextMessage

    conn = WSConnection(ConnectionType.CLIENT)
    address, port = host.split(":")
    with socket.create_connection((address, int(port)), timeout=10) as raw:
        raw.sendall(conn.send(Request(host=host, target=path,
                                      extra_headers=[(b"cookie", cookie.encode())] if cookie else [])))
        while data := raw.recv(65536):
            conn.receive_data(data)
            for event in conn.events():
                if isinstance(event, CloseConnection):
                    return event.code
                if isinstance(event, TextMessage):
                    return None
    return None


def test_every_live_socket_takes_the_roles_of_the_table_and_closes_on_the_rest(app, server, people):
    sockets = {endpoint for endpoint, (_m, websocket) in _routes(app).items() if websocket}
    assert sockets == {"pick.live", "lead.live"}
    for badge in [None] + [b for b, *_ in PEOPLE]:
        cookie, role = None, None
        if badge is not None:
            http = requests.Session()
            pin = dict((b, p) for b, _r, _n, p in PEOPLE)[badge]
            assert http.post(f"http://{server}/login/pin", data={"badge": badge, "pin": pin},
                             allow_redirects=False).status_code == 302
            cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
            role = next(r for b, r, _n, _p in PEOPLE if b == badge)
        for endpoint in sorted(sockets):
            who, path = ROUTES[endpoint]
            code = _close_code(server, path + "?after=0", cookie)
            expected = None if role is not None and _may(who, role) else 1008
            assert code == expected, (badge, endpoint, code)
