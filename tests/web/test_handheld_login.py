"""Logging in on the handheld: badge, then PIN; a shift long; one's own node;
the screens' language from the profile."""
from __future__ import annotations

import json
import time

from handhelds import HX, login, refusal_of, text
from sqlalchemy import select

from app.access import create_user
from app.models import User


def test_login_takes_a_badge_then_a_pin_and_opens_the_pick_screen(client, floor):
    badge = client.get("/login", headers={"Accept-Language": "en"})
    assert badge.status_code == 200
    assert 'inputmode="none"' in badge.get_data(as_text=True)
    assert "Scan your badge" in text(badge)

    pin = client.post("/login", data={"scan": "]C0P1"})
    assert pin.status_code == 200 and 'name="pin"' in pin.get_data(as_text=True)

    home = client.post("/login/pin", data={"badge": "]C0P1", "pin": "1111"})
    assert home.status_code == 302 and home.headers["Location"] == "/pick"
    screen = client.get("/pick")
    assert "张伟" in text(screen) and "SH-PD" in text(screen)


def test_a_wrong_pin_is_refused_with_the_catalogue_message(client, floor):
    answer = client.post("/login/pin", data={"badge": "P2", "pin": "9999"}, headers={"Accept-Language": "en"})
    assert answer.status_code == 401
    assert refusal_of(answer) == "login_failed"
    assert "Badge or PIN not recognised" in text(answer)
    assert client.get("/pick").status_code == 302


def test_five_wrong_pins_lock_the_badge_until_a_new_pin_is_set(client, floor, db):
    for _ in range(4):
        assert refusal_of(client.post("/login/pin", data={"badge": "P2", "pin": "9999"})) == "login_failed"
    # The right PIN still works before the fifth mistake, and starts the count again.
    assert client.post("/login/pin", data={"badge": "P2", "pin": "2222"}).status_code == 302
    client.post("/logout")
    for _ in range(5):
        client.post("/login/pin", data={"badge": "P2", "pin": "9999"})
    locked = client.post("/login/pin", data={"badge": "P2", "pin": "2222"}, headers={"Accept-Language": "en"})
    assert locked.status_code == 429 and refusal_of(locked) == "login_locked"
    assert "locked for 15 more minutes" in text(locked)
    assert client.get("/pick").status_code == 302
    with db.transaction() as s:
        user = s.scalar(select(User).where(User.code == "P2"))
        create_user(s, "P2", user.name, user.role.value, "2468", user.node.code, user.language)
    assert client.post("/login/pin", data={"badge": "P2", "pin": "2468"}).status_code == 302


def test_screens_need_a_login_and_htmx_is_sent_to_it(client, floor):
    page = client.get("/pick/work")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    swap = client.post("/pick/scan", data={"scan": "A-01-01-1"}, headers=HX)
    assert swap.headers["HX-Redirect"].startswith("/login")


def test_the_login_ends_after_a_shift(client, floor, app):
    login(client, "P1", "1111")
    assert client.get("/pick").status_code == 200
    hours = app.config["LUYUE"].session_hours
    with client.session_transaction() as session:
        session["login_at"] = time.time() - hours * 3600 - 60
    expired = client.get("/pick")
    assert expired.status_code == 302
    again = client.get(expired.headers["Location"])
    assert refusal_of(again) == "session_expired"
    assert app.permanent_session_lifetime.total_seconds() == hours * 3600


def test_a_role_without_picking_is_refused(client, floor):
    login(client, "K1", "5555")
    answer = client.get("/pick", headers={"Accept-Language": "en"})
    assert answer.status_code == 403
    assert refusal_of(answer) == "forbidden"


def test_only_a_lead_sees_the_lists_in_progress(client, floor):
    login(client, "P1", "1111")
    assert client.get("/pick/lists").status_code == 403


def test_a_user_without_a_node_is_refused(client, floor, db):
    from app.access import create_user
    with db.transaction() as s:
        create_user(s, "N1", "No Node", "picker", "1234", None, "en")
    login(client, "N1", "1234")
    answer = client.get("/pick")
    assert answer.status_code == 403 and refusal_of(answer) == "no_node"


def test_the_language_switch_is_stored_on_the_profile(app, floor, db):
    first = app.test_client()
    login(first, "P1", "1111")
    assert "拣货" in text(first.get("/pick"))
    assert 'aria-label="Switch to English"' in first.get("/pick").get_data(as_text=True)

    switched = first.post("/language", data={"language": "en", "next": "/pick"})
    assert switched.status_code == 302 and switched.headers["Location"] == "/pick"
    assert "Pick a batch" in text(first.get("/pick"))
    with db.reading() as s:
        assert s.scalar(select(User.language).where(User.code == "P1")) == "en"

    # Another device, the same picker: English, from the profile.
    second = app.test_client()
    login(second, "P1", "1111")
    assert "Pick a batch" in text(second.get("/pick"))


def test_the_language_before_login_follows_the_browser_then_the_choice(client, floor):
    assert "请扫描工牌" in text(client.get("/login", headers={"Accept-Language": "zh-CN"}))
    assert "Scan your badge" in text(client.get("/login", headers={"Accept-Language": "en-GB"}))
    client.post("/language", data={"language": "en"})
    assert "Scan your badge" in text(client.get("/login", headers={"Accept-Language": "zh-CN"}))


def test_the_scan_field_is_named_scan_in_each_language(client, floor):
    english = client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    chinese = client.get("/login", headers={"Accept-Language": "zh"}).get_data(as_text=True)
    assert '<label class="scan-label" for="scan">Scan</label>' in english
    assert '<label class="scan-label" for="scan">扫描</label>' in chinese


def test_the_app_can_be_installed_and_its_browser_code_is_local(client, floor):
    with client.get("/static/manifest.webmanifest") as answer:
        manifest = json.loads(answer.get_data())
    assert manifest["display"] == "standalone"
    for icon in manifest["icons"]:
        with client.get(icon["src"]) as png:
            assert png.status_code == 200 and png.data[:8] == b"\x89PNG\r\n\x1a\n"
    page = client.get("/login").get_data(as_text=True)
    assert "//" not in "".join(line for line in page.splitlines() if "<script src" in line).replace("://", "")
    assert '"code": "4..", "swap": true' in page  # refusals (422) swap in place
    for asset in ("vendor/htmx-2.0.11.min.js", "vendor/htmx-ext-ws-2.0.4.js", "js/scan.js",
                  "vendor/barcode-detector-3.2.2.ponyfill.js", "vendor/zxing_reader-3.1.3.wasm"):
        with client.get(f"/static/{asset}") as answer:
            assert answer.status_code == 200, asset
