"""Every answer carries the security headers (HTML screens, the API, static
files, errors, health), and no template keeps an inline script or style the
Content-Security-Policy would block."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.web.headers import CONTENT_SECURITY_POLICY

TEMPLATES = Path(__file__).parent.parent.parent / "templates"


def assert_protected(answer) -> None:
    csp = answer.headers.get("Content-Security-Policy", "")
    assert csp == CONTENT_SECURITY_POLICY
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self' 'wasm-unsafe-eval'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "same-origin"
    assert answer.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("path, status", [
    ("/login", 200),                        # a screen
    ("/pick", 302),                         # a redirect to the login
    ("/static/css/app.css", 200),           # a static file
    ("/static/js/rider.js", 200),
    ("/static/nothing.js", 404),
    ("/healthz", 200),
    ("/api/v1/events", 401),                # the API without a token
    ("/no-such-page", 404),                 # an error page
])
def test_every_answer_carries_the_security_headers(client, path, status):
    with client.get(path) as answer:
        assert answer.status_code == status
        assert_protected(answer)


def test_an_api_answer_with_a_token_carries_them(client, headers):
    answer = client.get("/api/v1/orders/NOPE", headers=headers)
    assert answer.status_code == 404 and answer.is_json
    assert_protected(answer)
    answer = client.get("/api/v1/events", headers=headers)
    assert answer.status_code == 200
    assert_protected(answer)


def test_a_logged_in_screen_and_a_refusal_carry_them(client, floor):
    from handhelds import login
    login(client, "P1", "1111")
    assert_protected(client.get("/pick"))
    refused = client.post("/lead/sign-out", data={"badge": "P2"})
    assert refused.status_code == 403
    assert_protected(refused)


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> block"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an inline event handler"),
    (re.compile(r"\shx-on[:-]", re.I), "hx-on (needs eval)"),
    (re.compile(r"""=\s*["']\s*(javascript|js):""", re.I), "javascript: or js: values"),
]


def test_no_template_has_inline_script_or_style():
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        source = path.read_text(encoding="utf-8")
        for pattern, what in INLINE:
            found += [f"{path.relative_to(TEMPLATES)}: {what}" for _ in pattern.finditer(source)]
    assert found == []
