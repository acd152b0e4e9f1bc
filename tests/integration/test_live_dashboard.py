"""The lead dashboard's websocket against a real server (werkzeug, threads):
who may connect, a commit reaching an open socket, and a reconnection that
replays exactly the exceptions it missed (both databases, in-process hub)."""
from __future__ import annotations

import re
import socket
import threading
import time

import pytest
import requests
import simple_websocket
import support
from sqlalchemy import select
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from app.access import create_user
from app.fulfilment import queues, redispatch
from app.models import Fulfilment, Node, User

USERS = [("L1", "李娜", "lead", "3333"), ("P1", "张伟", "picker", "1111"), ("K1", "Kim", "packer", "5555")]
BOUND = 3.0  # seconds a commit may take to reach a socket here (the promise is one)
PATIENCE = 10.0  # for anything else on a busy machine


@pytest.fixture
def floor(db):
    support.world(db, {"SH-PD": {"SKU-A": 50, "SKU-B": 50}, "SH-JD": {"SKU-A": 50, "SKU-B": 50}})
    with db.transaction() as s:
        node_id = s.scalar(select(Node.id).where(Node.code == "SH-PD"))
        # A cheap hash: these tests are about sockets, not PINs.
        s.add_all([User(code=code, name=name, role=role, node_id=node_id, language="en",
                        pin_hash=generate_password_hash(pin, "pbkdf2:sha256:1000"))
                   for code, name, role, pin in USERS])


@pytest.fixture
def server(app):
    """The app on a free loopback port, threaded, as `flask run` would serve it."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(5)


def session_cookie(host: str, badge: str, pin: str) -> str:
    http = requests.Session()
    answer = http.post(f"http://{host}/login/pin", data={"badge": badge, "pin": pin}, allow_redirects=False)
    assert answer.status_code == 302, answer.text
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


class Client(simple_websocket.Client):
    """simple_websocket's client takes only the handshake's answer from its
    first read: a message that came in the same read waits, unseen, until
    more data arrives. Hand it over at once."""

    def handshake(self):
        super().handshake()
        self.connected = self._handle_events()


def connect(host: str, cookie: str | None, after: int = 0, node: str | None = None) -> Client:
    query = f"after={after}" + (f"&node={node}" if node else "")
    return Client.connect(f"ws://{host}/lead/live?{query}", headers={"Cookie": cookie} if cookie else {})


def receive(ws: Client, timeout: float = PATIENCE) -> str:
    message = ws.receive(timeout=timeout)
    assert message is not None, f"nothing within {timeout} s"
    return message


def seq_of(message: str) -> int:
    return int(re.search(r'id="lead-seq" data-seq="(\d+)"', message).group(1))


def counts(message: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-stage="([a-z_]+)" data-count="(\d+)"', message)}


def exceptions(message: str) -> list[int]:
    return [int(s) for s in re.findall(r'<li id="exc-(\d+)"', message)]


def order(client, headers, external_id: str, sku: str = "SKU-A") -> str:
    answer = client.post("/api/v1/orders", json=support.order_body(external_id, [(sku, 1)]), headers=headers)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["fulfilments"][0]["id"]


def redispatch_by_hand(db, ref: str, reason: str) -> int:
    """A lead's re-dispatch (an exception on the dashboard); returns its seq."""
    with db.transaction() as s:
        f = s.scalar(select(Fulfilment).where(Fulfilment.ref == ref))
        redispatch.redispatch(s, f, None, reason, by="L1")
    with db.reading() as s:
        return queues.exceptions(s, f.node_id, upto=10**9)[-1].seq


# --- who may connect -------------------------------------------------------------------------

def close_code(host: str, cookie: str | None) -> int | None:
    """The code the server closes a fresh socket with (None: it stayed open).
    Read with wsproto: a close that arrives with the handshake is still seen."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import CloseConnection, Request, TextMessage

    conn = WSConnection(ConnectionType.CLIENT)
    address, port = host.split(":")
    with socket.create_connection((address, int(port)), timeout=PATIENCE) as raw:
        raw.sendall(conn.send(Request(host=host, target="/lead/live?after=0",
                                      extra_headers=[(b"cookie", cookie.encode())] if cookie else [])))
        while data := raw.recv(65536):
            conn.receive_data(data)
            for event in conn.events():
                if isinstance(event, CloseConnection):
                    return event.code
                if isinstance(event, TextMessage):
                    return None
    return None


@pytest.mark.parametrize("badge, pin", [(None, None), ("P1", "1111"), ("K1", "5555")])
def test_the_socket_refuses_a_session_without_the_lead_role(server, floor, badge, pin):
    cookie = session_cookie(server, badge, pin) if badge else None
    assert close_code(server, cookie) == 1008  # policy violation: the page does not retry


def test_the_socket_takes_a_lead(server, floor):
    assert close_code(server, session_cookie(server, "L1", "3333")) is None


def test_a_lead_watches_their_node_an_admin_any(server, floor, db, client, headers):
    with db.transaction() as s:
        create_user(s, "A1", "Ada", "admin", "9999", "SH-PD", "en")
    order(client, headers, "O-1")  # reserved at SH-PD, the nearest
    lead = connect(server, session_cookie(server, "L1", "3333"), node="SH-JD")
    assert counts(receive(lead))["to_pick"] == 1  # their own node, whatever they ask
    lead.close()
    admin = connect(server, session_cookie(server, "A1", "9999"), node="SH-JD")
    assert counts(receive(admin))["to_pick"] == 0
    admin.close()


# --- live -------------------------------------------------------------------------------------

def test_a_commit_reaches_an_open_dashboard(server, floor, client, headers):
    ws = connect(server, session_cookie(server, "L1", "3333"))
    first = receive(ws)
    assert counts(first)["to_pick"] == 0
    start = time.monotonic()
    order(client, headers, "O-1")
    update = receive(ws)
    assert counts(update)["to_pick"] == 1 and seq_of(update) > seq_of(first)
    assert time.monotonic() - start < BOUND
    ws.close()


def test_a_reconnection_replays_exactly_the_exceptions_missed(server, floor, client, headers, db):
    refs = [order(client, headers, f"O-{i}") for i in range(4)]
    cookie = session_cookie(server, "L1", "3333")
    before = redispatch_by_hand(db, refs[0], "seen before the drop")

    ws = connect(server, cookie)
    first = receive(ws)
    assert exceptions(first) == [before]  # after=0: everything after seq 0
    last = seq_of(first)
    ws.close()

    missed = [redispatch_by_hand(db, ref, f"while away {i}") for i, ref in enumerate(refs[1:3])]
    order(client, headers, "O-quiet")  # not an exception: counted, not listed

    again = connect(server, cookie, after=last)
    replay = receive(again)
    assert sorted(exceptions(replay)) == missed
    assert counts(replay)["to_pick"] == 2  # O-3 and O-quiet; the rest moved to SH-JD
    again.close()

    # From before the first connection: the outbox is read again, still exactly.
    old = connect(server, cookie, after=before - 1)
    assert sorted(exceptions(receive(old))) == [before] + missed
    old.close()
    # Up to date: nothing replayed, counts whole.
    now = connect(server, cookie, after=seq_of(replay))
    fresh = receive(now)
    assert exceptions(fresh) == [] and counts(fresh) == counts(replay)
    now.close()


def test_an_open_socket_gets_each_exception_once(server, floor, client, headers, db):
    refs = [order(client, headers, f"O-{i}") for i in range(3)]
    ws = connect(server, session_cookie(server, "L1", "3333"), after=10**6)  # a seq from the future counts as now
    seen = exceptions(receive(ws))
    expected = []
    for i, ref in enumerate(refs):
        expected.append(redispatch_by_hand(db, ref, f"reason {i}"))
        deadline = time.monotonic() + PATIENCE
        while set(expected) - set(seen) and time.monotonic() < deadline:
            seen += exceptions(receive(ws))
    assert seen == expected
    ws.close()

