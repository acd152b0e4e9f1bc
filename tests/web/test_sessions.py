"""Logins end when they should, everywhere: logout, a new PIN, deactivation
and a lead's sign-out refuse every copy of the cookie; a cookie forged with
the old public default key opens nothing; cookies are HttpOnly, Lax, and
Secure over HTTPS."""
from __future__ import annotations

import time

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from handhelds import HX, login, refusal_of, text
from sqlalchemy import select

from app import access
from app.config import Settings
from app.models import User


def copy_of(app, client):
    """Another browser holding a copy of the client's session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def logged_in(client, path: str = "/pick") -> bool:
    return client.get(path).status_code == 200


def user(db, code: str) -> User:
    with db.reading() as s:
        return s.scalar(select(User).where(User.code == code))


def test_logout_ends_a_copy_of_the_cookie_taken_before(app, client, floor):
    login(client, "P1", "1111")
    thief = copy_of(app, client)
    assert logged_in(thief)
    client.post("/logout")
    assert not logged_in(client) and not logged_in(thief)
    answer = thief.get("/login")  # said once, in the language the device last used (P1's Chinese)
    assert refusal_of(answer) == "signed_out" and "请重新扫描工牌登录" in text(answer)
    assert refusal_of(thief.get("/login")) is None


def test_logging_in_again_after_logout_works_and_the_old_copy_stays_out(app, client, floor):
    login(client, "P1", "1111")
    thief = copy_of(app, client)
    client.post("/logout")
    login(client, "P1", "1111")
    assert logged_in(client) and not logged_in(thief)


def test_a_new_pin_ends_every_login_of_the_user(app, client, floor):
    login(client, "P2", "2222")
    other = app.test_client()
    login(other, "P1", "1111")
    with floor.db.transaction() as s:
        access.create_user(s, "P2", "Tom Wilson", "picker", "8642", "SH-PD", "en")
    swap = client.post("/pick/scan", data={"scan": "A-01-01-1"}, headers=HX)
    assert swap.headers["HX-Redirect"].startswith("/login")
    assert logged_in(other)  # someone else's login is not touched


def test_deactivation_ends_the_login_and_reactivation_does_not_bring_it_back(app, client, floor, runner):
    login(client, "P1", "1111")
    assert runner.invoke(args=["user", "deactivate", "P1"]).exit_code == 0
    thief = copy_of(app, client)
    assert not logged_in(thief)
    assert runner.invoke(args=["user", "activate", "P1"]).exit_code == 0
    assert not logged_in(client)
    login(client, "P1", "1111")
    assert logged_in(client)


def test_a_lead_signs_a_workers_device_out(app, client, floor):
    handheld = app.test_client()
    login(handheld, "P1", "1111")
    login(client, "L1", "3333")
    answer = client.post("/lead/sign-out", data={"badge": "P1"}, headers={**HX, "HX-Target": "lead-notice"})
    assert answer.status_code == 200 and "张伟" in text(answer)
    assert not logged_in(handheld)
    assert logged_in(client, "/lead")  # the lead stays in


def test_a_lead_cannot_sign_out_another_nodes_worker_or_an_unknown_badge(app, client, floor):
    elsewhere = app.test_client()
    login(elsewhere, "J1", "4444")  # SH-JD
    login(client, "L1", "3333")
    version = user(floor.db, "J1").session_version
    for badge in ("J1", "NOBODY"):
        answer = client.post("/lead/sign-out", data={"badge": badge}, headers={"Accept-Language": "en"})
        assert answer.status_code == 404 and refusal_of(answer) == "sign_out_unknown_worker"
    assert logged_in(elsewhere) and user(floor.db, "J1").session_version == version


def test_a_picker_may_not_sign_anyone_out(app, client, floor):
    handheld = app.test_client()
    login(handheld, "P2", "2222")
    login(client, "P1", "1111")
    assert client.post("/lead/sign-out", data={"badge": "P2"}).status_code == 403
    assert logged_in(handheld)


def test_a_cookie_forged_with_the_old_default_key_opens_nothing(app, client, floor):
    """The key a server uses when none is configured signs nothing a forger
    can reproduce (it was the public "dev-only-change-me")."""
    forger = Flask("forger")
    forger.secret_key = "dev-only-change-me"
    lead = user(floor.db, "L1")
    claims = {"user_id": lead.id, "login_at": time.time(), "session_version": lead.session_version,
              "language": "en"}
    forged = SecureCookieSessionInterface().get_signing_serializer(forger).dumps(claims)
    app.config["SECRET_KEY"] = Settings().secret_key
    client.set_cookie("session", forged)
    answer = client.get("/lead")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")


def session_cookie(answer) -> str:
    [cookie] = [v for v in answer.headers.getlist("Set-Cookie") if v.startswith("session=")]
    return cookie


def test_the_session_cookie_is_httponly_and_lax_and_not_secure_over_http(client, floor):
    cookie = session_cookie(client.post("/login/pin", data={"badge": "P1", "pin": "1111"}))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_the_session_cookie_is_secure_with_luyue_https(app, client, floor):
    app.config["SESSION_COOKIE_SECURE"] = True  # what LUYUE_HTTPS=1 sets
    cookie = session_cookie(client.post("/login/pin", data={"badge": "P1", "pin": "1111"}))
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_the_session_cookie_is_secure_over_https_from_a_trusted_proxy_only(database_url, tmp_path, floor):
    from app import create_app
    proxied = create_app({"database_url": database_url, "secret_key": "test", "trusted_proxies": 1})
    try:
        c = proxied.test_client()
        over_https = c.post("/login/pin", data={"badge": "P1", "pin": "1111"},
                            headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.0.0.9"})
        assert "Secure" in session_cookie(over_https)
    finally:
        proxied.extensions["luyue.db"].dispose()
    # Without a trusted proxy configured, a client's own header is not believed.
    direct = create_app({"database_url": database_url, "secret_key": "test"}).test_client()
    answer = direct.post("/login/pin", data={"badge": "P1", "pin": "1111"}, headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in session_cookie(answer)
    direct.application.extensions["luyue.db"].dispose()
