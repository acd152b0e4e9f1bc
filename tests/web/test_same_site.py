"""Screens' forms and live sockets only from luyue's own pages: a request a
browser says came from another site is refused, and changes nothing."""
from __future__ import annotations

from handhelds import login, text

from support import order_body

FOREIGN = {"Origin": "https://shop.example", "Accept-Language": "en"}
SOCKET = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
          "Sec-WebSocket-Version": "13"}


def test_a_login_posted_from_another_site_is_refused_and_logs_no_one_in(client, floor, caplog):
    refused = client.post("/login/pin", data={"badge": "P1", "pin": "1111"}, headers=FOREIGN)

    assert refused.status_code == 403
    assert "This came from another site (shop.example)" in text(refused)
    assert client.get("/pick").status_code == 302  # still to the login screen
    assert [r.getMessage() for r in caplog.records if "cross_site_request" in r.getMessage()] == [
        "refused POST /login/pin -> 403 cross_site_request: This came from another site (shop.example), "
        "not from luyue's own screens. Open luyue and do it there."]


def test_the_same_site_by_origin_or_referer_or_a_request_naming_neither_is_served(client, floor):
    assert client.post("/login/pin", data={"badge": "P1", "pin": "1111"},
                       headers={"Origin": "http://localhost"}).status_code == 302
    assert client.post("/logout", headers={"Referer": "http://localhost/pick"}).status_code == 302
    assert client.post("/login/pin", data={"badge": "P1", "pin": "1111"}).status_code == 302


def test_a_referer_from_another_site_is_refused_when_there_is_no_origin(client, floor):
    login(client, "P1", "1111")
    refused = client.post("/logout", headers={"Referer": "http://intranet.example/page", "Accept-Language": "en"})
    assert refused.status_code == 403
    assert "intranet.example" in text(refused)
    assert client.get("/pick").status_code == 200  # the logout did not happen


def test_the_message_is_in_the_workers_language(client, floor):
    login(client, "P1", "1111")  # 张伟 works in Chinese
    refused = client.post("/logout", headers={"Origin": "https://shop.example"})
    assert refused.status_code == 403
    assert "该请求来自其他网站（shop.example）" in text(refused)


def test_a_live_socket_opened_from_another_site_is_refused_before_it_opens(client, floor):
    login(client, "L1", "3333")
    refused = client.get("/lead/live", headers={**SOCKET, **FOREIGN})
    assert refused.status_code == 403
    assert "该请求来自其他网站（shop.example）" in text(refused)  # the lead works in Chinese


def test_a_trusted_origin_is_served(app, client, floor):
    app.config["LUYUE"].trusted_origins = "wms.example.com, floor.example.com:8443"
    answer = client.post("/login/pin", data={"badge": "P1", "pin": "1111"},
                         headers={"Origin": "https://floor.example.com:8443"})
    assert answer.status_code == 302


def test_the_api_takes_tokens_not_cookies_and_is_not_concerned(client, floor, headers):
    taken = client.post("/api/v1/orders", json=order_body("X-SITE-1", [("SKU-A", 1)]),
                        headers={**headers, **FOREIGN})
    assert taken.status_code == 201
