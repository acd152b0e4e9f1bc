"""A real `luyue serve` (gunicorn) against requests it cannot read: an
over-long URL, too many or too long headers, a request line that is not
HTTP. Each answered with the contract's JSON error body, not gunicorn's HTML
page; and the login that cost 54 s of CPU is refused at once."""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time

import pytest
import requests

from app.server import LIMIT_REQUEST_FIELD_SIZE, LIMIT_REQUEST_FIELDS, LIMIT_REQUEST_LINE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(database_url, db, tmp_path):
    port = free_port()
    env = {**os.environ, "LUYUE_DATABASE_URL": database_url, "LUYUE_SECRET_KEY": secrets.token_urlsafe(32),
           "LUYUE_WEBHOOK_POLL_SECONDS": "60"}
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "1",
                             "--threads", "4"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/login", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


UNREADABLE = [
    ("an over-long URL", b"GET /login?x=" + b"a" * (LIMIT_REQUEST_LINE + 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
     414, "uri_too_long"),
    ("too many headers", b"GET /login HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-%d: 1\r\n" % i for i in range(LIMIT_REQUEST_FIELDS + 5)) + b"\r\n", 431, "headers_too_large"),
    ("an over-long header", b"GET /login HTTP/1.1\r\nHost: x\r\nCookie: " + b"c" * (LIMIT_REQUEST_FIELD_SIZE + 10)
     + b"\r\n\r\n", 431, "headers_too_large"),
    ("a request line that is not HTTP", b"\x00\x01\x02 nonsense\r\n\r\n", 400, "bad_request"),
    ("a header name with a space", b"GET /login HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400, "bad_request"),
    ("a NUL in a header", b"GET /login HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400, "bad_request"),
    ("an unknown HTTP version", b"GET /login HTTP/9.9\r\nHost: x\r\n\r\n", 400, "bad_request"),
]


def test_requests_gunicorn_cannot_read_get_the_contracts_error_body(server):
    for name, request, status, code in UNREADABLE:
        got, headers, body = raw(server, request)
        assert got == status, (name, got, body[:200])
        assert headers.get("Content-Type") == "application/json", (name, headers)
        error = json.loads(body)["error"]
        assert error["code"] == code and error["message"] and error["details"] == {}, (name, error)


def test_a_600000_digit_badge_is_refused_at_once_by_the_server(server):
    started = time.monotonic()
    answer = requests.post(f"http://127.0.0.1:{server}/login/pin", data={"badge": "7" * 600_000, "pin": "1111"},
                           timeout=10)
    assert answer.status_code == 413
    assert time.monotonic() - started < 1.0
    answer = requests.post(f"http://127.0.0.1:{server}/login/pin", data={"badge": "7" * 5000, "pin": "1111"},
                           timeout=10)
    assert answer.status_code == 422
    assert "工牌长度为 5000 个字符" in answer.text
