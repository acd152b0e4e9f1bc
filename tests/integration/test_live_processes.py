"""Two `luyue serve` processes (gunicorn, gthread) on one PostgreSQL database:
a lead's dashboard socket on one process sees what commits through the
other, both ways, within a bound; then a stopping process tells its sockets
(a lead's dashboard, a picker's home) to reconnect (1012) and exits, instead
of holding them open until gunicorn's graceful timeout.

PostgreSQL only (several processes need it); CI sets LUYUE_TEST_POSTGRES_URL."""
from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
import simple_websocket
import support
from test_live_dashboard import Client
from werkzeug.security import generate_password_hash

from app.models import Node, User

POSTGRES_URL = os.environ.get("LUYUE_TEST_POSTGRES_URL")
pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not POSTGRES_URL, reason="several server processes need PostgreSQL"),
              pytest.mark.parametrize("database_url", ["postgres"], indirect=True)]
BOUND = 2.0   # seconds from the committed answer to the other process's socket (the promise is one)
PATIENCE = 10.0  # for a first message on a busy machine
# One key for both processes (serve refuses a weak one).
SECRET = secrets.token_urlsafe(32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def floor(db):
    support.world(db, {"SH-PD": {"SKU-A": 50}, "SH-JD": {"SKU-A": 50}})
    with db.transaction() as s:
        node = s.query(Node).filter_by(code="SH-PD").one()
        cheap = generate_password_hash("3333", "pbkdf2:sha256:1000")
        s.add_all([User(code=code, name=code, role=role, node_id=node.id, pin_hash=cheap, language="en")
                   for code, role in (("L1", "lead"), ("L2", "lead"), ("P1", "picker"))])


@pytest.fixture
def servers(database_url, floor, tmp_path):
    """Two `luyue serve` processes, one worker each, on free ports; their
    output in a log file each."""
    env = {**os.environ, "LUYUE_DATABASE_URL": database_url, "LUYUE_SECRET_KEY": SECRET,
           "LUYUE_WEBHOOK_POLL_SECONDS": "60"}
    ports = [free_port(), free_port()]
    logs = [open(tmp_path / f"serve-{port}.log", "wb") for port in ports]
    procs = [subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "1",
                               "--threads", "8"], env=env, stdout=log, stderr=subprocess.STDOUT)
             for port, log in zip(ports, logs)]
    try:
        deadline = time.monotonic() + 30
        for port, proc in zip(ports, procs):
            while True:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/login", timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                assert proc.poll() is None, (tmp_path / f"serve-{port}.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        yield [f"127.0.0.1:{port}" for port in ports], procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()


def login(host: str, badge: str) -> requests.Session:
    http = requests.Session()
    assert http.post(f"http://{host}/login/pin", data={"badge": badge, "pin": "3333"},
                     allow_redirects=False).status_code == 302
    return http


def live_screen(host: str, http: requests.Session, path: str = "/lead/live") -> Client:
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
    return Client.connect(f"ws://{host}{path}", headers={"Cookie": cookie})


def next_message(ws, test, start: float, bound: float = BOUND) -> tuple[str, float]:
    """The first message that passes `test`, and its time since `start`."""
    while True:
        left = bound - (time.monotonic() - start)
        assert left > 0, f"no such message within {bound} s"
        message = ws.receive(timeout=left)
        if message is not None and test(message):
            return message, time.monotonic() - start


def to_pick(message: str) -> int:
    return int(re.search(r'data-stage="to_pick" data-count="(\d+)"', message).group(1))


def test_two_leads_on_two_processes_see_each_others_commits(servers, token_for):
    (a, b), procs = servers
    lead_a, lead_b = login(a, "L1"), login(b, "L2")
    ws_a, ws_b = live_screen(a, lead_a), live_screen(b, lead_b)
    assert to_pick(ws_a.receive(timeout=PATIENCE)) == to_pick(ws_b.receive(timeout=PATIENCE)) == 0

    # An order taken by process B reaches the dashboard on process A (and B's own).
    headers = {"Authorization": f"Bearer {token_for('shop')}"}
    taken = requests.post(f"http://{b}/api/v1/orders", json=support.order_body("O-1", [("SKU-A", 2)]),
                          headers=headers)
    start = time.monotonic()  # the order is committed: B has answered
    assert taken.status_code == 201, taken.text
    ref = taken.json()["fulfilments"][0]["id"]
    _, delay_a = next_message(ws_a, lambda m: to_pick(m) == 1, start)
    next_message(ws_b, lambda m: to_pick(m) == 1, start)

    # A lead's re-dispatch on process A reaches B as an exception, counts moved.
    moved = lead_a.post(f"http://{a}/lead/f/{ref}/redispatch", data={"reason": "bin flooded"})
    start = time.monotonic()
    assert moved.status_code == 200, moved.text
    message, delay_b = next_message(ws_b, lambda m: 'data-type="fulfilment.redispatched"' in m, start)
    assert to_pick(message) == 0 and "bin flooded" in message
    print(f"answer on one process -> message on the other's socket: {delay_a * 1000:.0f} ms (B to A), "
          f"{delay_b * 1000:.0f} ms (A to B)")
    ws_b.close()

    # Process A is stopped (a deploy): its live screens are told to reconnect
    # (1012, service restart: the ws extension retries) at once, and it exits
    # well before gunicorn's graceful timeout (10 s) would kill it.
    ws_pick = live_screen(a, login(a, "P1"), "/pick/live")
    assert 'id="waiting"' in ws_pick.receive(timeout=PATIENCE)
    stopped = time.monotonic()
    procs[0].send_signal(signal.SIGTERM)
    for ws in (ws_a, ws_pick):
        deadline = stopped + 5
        with pytest.raises(simple_websocket.ConnectionClosed) as closed:
            while time.monotonic() < deadline:
                ws.receive(timeout=deadline - time.monotonic())
        assert closed.value.reason == 1012
    closing = time.monotonic() - stopped
    procs[0].wait(6)
    print(f"SIGTERM -> sockets closed {closing * 1000:.0f} ms, process gone {(time.monotonic() - stopped) * 1000:.0f} ms")
    assert procs[0].returncode == 0
