"""A channel's webhook URL cannot point the server at the network behind it:
loopback, private, link-local and other non-public addresses are refused
when registered and again at each connection, unless the operator allows
them (LUYUE_WEBHOOK_ALLOW_PRIVATE)."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from app import access, webhooks
from app.models import Webhook, WebhookDelivery
from support import Receiver, error, order_body


def count(db, model) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.1.2.3/hook",
                                 "http://192.168.0.7/hook", "http://169.254.169.254/latest/meta-data",
                                 "http://[::1]:9000/hook", "https://0.0.0.0/hook"])
def test_a_private_or_local_url_is_refused_and_nothing_is_written(floor, client, headers, url, caplog):
    refused = client.put("/api/v1/webhook", headers=headers, json={"url": url})
    error(refused, 422, "invalid_request")
    message = refused.get_json()["error"]["message"]
    assert "url: expected a public address" in message and "LUYUE_WEBHOOK_ALLOW_PRIVATE" in message
    assert count(floor, Webhook) == 0
    assert len([r for r in caplog.records if "invalid_request" in r.getMessage()]) == 1


@pytest.mark.parametrize("url", ["https://93.184.216.34/hook", "https://no-such-host.invalid/hook"])
def test_a_public_address_or_a_name_that_does_not_resolve_yet_is_taken(floor, client, headers, url):
    # (A name that does not resolve now is checked again at each connection.)
    assert client.put("/api/v1/webhook", headers=headers, json={"url": url}).status_code == 201


def test_the_operator_may_allow_private_addresses(floor, app, client, headers):
    app.config["LUYUE"].webhook_allow_private = True
    assert client.put("/api/v1/webhook", headers=headers, json={"url": "http://10.1.2.3/hook"}).status_code == 201


def test_a_name_that_resolves_to_a_private_address_by_sending_time_gets_nothing(floor, client, headers):
    """Registered while allowed (or while the name still pointed elsewhere),
    then sent by a server that does not allow it: each attempt is logged as
    refused and the receiver hears nothing."""
    receiver = Receiver()
    sender = None
    try:
        with floor.transaction() as s:
            webhooks.register(s, access.channel_named(s, "shop"), receiver.url, after=0, allow_private=True)
        assert client.post("/api/v1/orders", headers=headers,
                           json=order_body("P-1", [("SKU-A", 1)])).status_code == 201
        sender = webhooks.Sender(floor, timeout=1.0, backoff_base=5.0, poll=0.02).start()
        deadline = time.monotonic() + 10
        while count(floor, WebhookDelivery) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        if sender is not None:
            sender.stop(wait=3)
        receiver.stop()
    log = client.get("/api/v1/webhook/deliveries?limit=10", headers=headers).get_json()["deliveries"]
    assert log and "a private or local address" in log[-1]["error"]
    assert receiver.attempts == []


def test_post_refuses_a_private_address_unless_allowed():
    receiver = Receiver()
    try:
        refused = webhooks.post(receiver.url, b"{}", {}, timeout=1.0)
        allowed = webhooks.post(receiver.url, b"{}", {}, timeout=1.0, allow_private=True)
    finally:
        receiver.stop()
    assert not refused.ok and refused.status_code is None and "127.0.0.1 is a private or local address" in refused.error
    assert allowed.ok and len(receiver.attempts) == 1
