"""Webhooks against a real HTTP receiver on 127.0.0.1 (http.server in a
thread): every event of the channel's feed arrives once, in seq order,
signed, after retries; a hanging receiver slows no request; two senders
(as two server processes would) never send the same event twice."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import pytest

from app import webhooks
from support import Receiver, error, order_body

SECRET = "s3cret-for-tests-0123456789"
# A hanging receiver hangs this long (released when the test ends); a request
# that waited on it would take at least that, one that does not finishes well
# within BOUND even on a busy shared machine.
HANG, BOUND = 10.0, 2.5


@pytest.fixture(autouse=True)
def receivers_on_loopback(app) -> None:
    """The receivers here listen on 127.0.0.1: allowed, as an operator
    allows a receiver inside the network (test_webhook_addresses.py has the
    default)."""
    app.config["LUYUE"].webhook_allow_private = True


@pytest.fixture
def receivers(senders) -> Iterator[list[Receiver]]:
    # After the senders: released and closed first, so no sender waits on a hanging answer.
    made: list[Receiver] = []
    yield made
    for r in made:
        r.stop()


@pytest.fixture
def senders() -> Iterator[list[webhooks.Sender]]:
    made: list[webhooks.Sender] = []
    yield made
    for s in made:
        s.stop(wait=3)


def sender(db, senders, **options) -> webhooks.Sender:
    options = {"timeout": 1.0, "backoff_base": 0.02, "backoff_cap": 0.1, "poll": 0.02, "allow_private": True,
               **options}
    s = webhooks.Sender(db, **options).start()
    senders.append(s)
    return s


def register(client, headers, url: str, **extra):
    answer = client.put("/api/v1/webhook", headers=headers, json={"url": url, "secret": SECRET, **extra})
    assert answer.status_code in (200, 201), answer.get_data(as_text=True)
    return answer.get_json()


def feed(client, headers) -> list[dict]:
    return client.get("/api/v1/events?limit=1000", headers=headers).get_json()["events"]


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def make_orders(client, headers, *external_ids: str) -> None:
    for external_id in external_ids:
        assert client.post("/api/v1/orders", headers=headers,
                           json=order_body(external_id, [("SKU-A", 1)])).status_code == 201


def test_every_event_arrives_once_in_order_signed_after_failed_attempts(floor, client, headers, token_for,
                                                                       receivers, senders):
    receiver = Receiver(plan=lambda n: 503 if n <= 3 else 200)
    receivers.append(receiver)
    register(client, headers, receiver.url)
    sender(floor, senders)
    make_orders(client, headers, "W-1", "W-2")
    assert client.post("/api/v1/orders/W-2/cancel", headers=headers).status_code == 200
    other = {"Authorization": f"Bearer {token_for('market')}"}
    make_orders(client, other, "M-1")  # another channel's events never go to this webhook

    expected = feed(client, headers)
    assert len(expected) >= 6
    wait_for(lambda: len(receiver.accepted()) >= len(expected))
    time.sleep(0.1)  # nothing more comes
    accepted = receiver.accepted()
    assert [json.loads(body) for _h, body in accepted] == expected  # once each, in seq order, as in the feed
    for h, body in accepted:
        assert h["X-Luyue-Signature"] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert int(h["X-Luyue-Seq"]) == json.loads(body)["seq"]
        assert h["Content-Type"] == "application/json"
    # The first event was tried four times: three 503s, then accepted.
    first = expected[0]["seq"]
    assert [int(h["X-Luyue-Seq"]) for _s, h, _b in receiver.attempts[:4]] == [first] * 4

    log = client.get("/api/v1/webhook/deliveries?limit=1000", headers=headers).get_json()["deliveries"]
    oldest = list(reversed(log))
    assert [(a["seq"], a["attempt"], a["ok"], a["status_code"]) for a in oldest[:4]] == [
        (first, 1, False, 503), (first, 2, False, 503), (first, 3, False, 503), (first, 4, True, 200)]
    assert all(a["duration_ms"] >= 0 and a["at"] for a in log)
    assert [a["seq"] for a in oldest if a["ok"]] == [e["seq"] for e in expected]
    state = client.get("/api/v1/webhook", headers=headers).get_json()
    assert state["delivered_seq"] == expected[-1]["seq"] and state["pending"] == 0 and state["failures"] == 0
    assert "secret" not in state and state["secret_hint"] == "…" + SECRET[-4:]


def test_a_hanging_receiver_slows_no_request(floor, client, headers, receivers, senders):
    receiver = Receiver(plan=lambda n: ("hang", HANG))
    receivers.append(receiver)
    register(client, headers, receiver.url)
    sender(floor, senders, timeout=2 * HANG)
    make_orders(client, headers, "W-3")
    wait_for(lambda: len(receiver.attempts) >= 1)  # the sender is now stuck in a POST for HANG seconds

    for request in (lambda: make_orders(client, headers, "W-4"),
                    lambda: client.post("/api/v1/orders/W-4/cancel", headers=headers),
                    lambda: client.get("/api/v1/events", headers=headers),
                    lambda: client.get("/api/v1/webhook/deliveries", headers=headers)):
        started = time.monotonic()
        request()
        assert time.monotonic() - started < BOUND
    assert len(receiver.attempts) == 1  # strictly in order: nothing else sent while the first hangs


def test_a_receiver_that_times_out_is_retried_and_the_order_holds(floor, client, headers, receivers, senders):
    receiver = Receiver(plan=lambda n: ("hang", 5.0) if n == 1 else 200)
    receivers.append(receiver)
    register(client, headers, receiver.url)
    sender(floor, senders, timeout=0.2)
    make_orders(client, headers, "W-5")
    expected = feed(client, headers)
    wait_for(lambda: len(receiver.accepted()) >= len(expected))
    assert [json.loads(b)["seq"] for _h, b in receiver.accepted()] == [e["seq"] for e in expected]
    log = client.get("/api/v1/webhook/deliveries?limit=1000", headers=headers).get_json()["deliveries"]
    assert "timed out" in log[-1]["error"] and log[-1]["status_code"] is None


def test_two_senders_as_two_processes_never_send_an_event_twice(floor, client, headers, receivers, senders):
    receiver = Receiver(plan=lambda n: 500 if n % 4 == 0 else 200)
    receivers.append(receiver)
    register(client, headers, receiver.url)
    sender(floor, senders, owner="process-a")
    sender(floor, senders, owner="process-b")
    make_orders(client, headers, "W-6", "W-7", "W-8")
    expected = feed(client, headers)
    wait_for(lambda: len(receiver.accepted()) >= len(expected))
    time.sleep(0.1)
    assert [json.loads(b)["seq"] for _h, b in receiver.accepted()] == [e["seq"] for e in expected]


def test_every_delivery_is_signed_to_the_standard_webhooks_spec_and_a_replay_is_rejected(
        floor, client, headers, receivers, senders):
    from standardwebhooks.webhooks import Webhook as StandardWebhook, WebhookVerificationError
    receiver = Receiver()
    receivers.append(receiver)
    signing_secret = register(client, headers, receiver.url)["signing_secret"]
    assert signing_secret.startswith("whsec_")
    sender(floor, senders)
    make_orders(client, headers, "W-SW")
    expected = feed(client, headers)
    wait_for(lambda: len(receiver.accepted()) >= len(expected))
    verifier = StandardWebhook(signing_secret)
    accepted = [({k.lower(): v for k, v in h.items()}, body) for h, body in receiver.accepted()]
    for (h, body), event in zip(accepted, expected):
        assert verifier.verify(body, h) == event
        assert h["webhook-id"] == f"evt_{event['seq']}"
    h, body = accepted[0]
    # The timestamp is signed: a replay stamped anew fails, and one kept as it was is too old after 5 minutes.
    with pytest.raises(WebhookVerificationError):
        verifier.verify(body, {**h, "webhook-timestamp": str(int(time.time()) + 1)})
    old = str(int(h["webhook-timestamp"]) - 301)
    replay = {**h, "webhook-timestamp": old,
              "webhook-signature": verifier.sign(h["webhook-id"], dt.datetime.fromtimestamp(int(old), dt.timezone.utc),
                                                 body.decode())}
    with pytest.raises(WebhookVerificationError, match="too old"):
        verifier.verify(body, replay)


def test_after_a_sender_dies_holding_its_lease_another_resumes_within_seconds(floor, client, headers, receivers,
                                                                             senders):
    receiver = Receiver()
    receivers.append(receiver)
    register(client, headers, receiver.url)
    make_orders(client, headers, "W-DEAD")
    dead = webhooks.Sender(floor, timeout=1.0, owner="process-that-died")
    [webhook_id] = dead.due()
    assert dead._claim(webhook_id)  # claimed, then the process was killed: never released
    started = time.monotonic()
    sender(floor, senders, timeout=1.0, owner="process-alive")
    wait_for(lambda: len(receiver.accepted()) >= len(feed(client, headers)), timeout=30)
    assert time.monotonic() - started < 1.0 + webhooks.LEASE_MARGIN_SECONDS + 2


def test_registering_checks_the_url_and_secret_and_starts_from_now(floor, client, headers, receivers, senders):
    error(client.get("/api/v1/webhook", headers=headers), 404, "not_found")
    assert error(client.put("/api/v1/webhook", headers=headers, json={"url": "ftp://x"}), 422,
                 "invalid_request")["fields"] == ["url"]
    assert error(client.put("/api/v1/webhook", headers=headers, json={"url": "https://x.example", "secret": "short"}),
                 422, "invalid_request")["fields"] == ["secret"]
    make_orders(client, headers, "W-9")  # before the webhook: not sent unless asked for
    receiver = Receiver()
    receivers.append(receiver)
    made = client.put("/api/v1/webhook", headers=headers, json={"url": receiver.url})
    assert made.status_code == 201
    generated = made.get_json()["secret"]
    assert len(generated) >= 16 and made.get_json()["delivered_seq"] == feed(client, headers)[-1]["seq"]
    again = client.put("/api/v1/webhook", headers=headers, json={"url": receiver.url, "after": 0})
    assert again.status_code == 200 and again.get_json()["secret"] == generated  # kept
    assert again.get_json()["pending"] == len(feed(client, headers))
    sender(floor, senders)
    wait_for(lambda: len(receiver.accepted()) == len(feed(client, headers)))  # the whole feed, replayed
    assert client.delete("/api/v1/webhook", headers=headers).get_json() == {"deleted": True}
    error(client.delete("/api/v1/webhook", headers=headers), 404, "not_found")
    error(client.get("/api/v1/webhook/deliveries", headers=headers), 404, "not_found")


def test_the_cli_sets_shows_and_removes_a_webhook(floor, runner, headers):
    assert runner.invoke(args=["webhook", "set", "--channel", "nobody", "--url", "https://x.example"]).exit_code != 0
    made = runner.invoke(args=["webhook", "set", "--channel", "shop", "--url", "https://hooks.example/luyue",
                               "--secret", SECRET])
    assert made.exit_code == 0, made.output
    assert made.stdout.strip().splitlines()[-1] == SECRET
    shown = runner.invoke(args=["webhook", "show", "--channel", "shop"])
    assert "url: https://hooks.example/luyue" in shown.output and "pending: 0" in shown.output
    assert "removed" in runner.invoke(args=["webhook", "remove", "--channel", "shop"]).output


def test_backoff_doubles_and_is_capped_and_a_redirect_is_not_success(receivers):
    assert [webhooks.backoff(n, 2, 60) for n in (1, 2, 3, 4, 5, 6, 7)] == [2, 4, 8, 16, 32, 60, 60]
    receiver = Receiver(plan=lambda n: 302)
    receivers.append(receiver)
    answer = webhooks.post(receiver.url, b"{}", {}, timeout=1, allow_private=True)
    assert not answer.ok and answer.status_code == 302
    refused = webhooks.post("http://127.0.0.1:9/closed", b"{}", {}, timeout=1, allow_private=True)
    assert not refused.ok and refused.status_code is None and refused.error


def test_a_burst_of_commits_costs_a_few_rounds_not_one_each(db, senders, monkeypatch):
    s = webhooks.Sender(db, poll=60.0)
    rounds = []
    monkeypatch.setattr(s, "send_due", lambda: rounds.append(time.monotonic()) or 0)
    s.start()
    senders.append(s)
    started = time.monotonic()
    while time.monotonic() - started < 0.5:  # 100 commits in half a second
        s.wake()
        time.sleep(0.005)
    time.sleep(webhooks.ROUND_GAP_SECONDS * 2)  # the last wake's round
    assert 1 <= len(rounds) <= 0.5 / webhooks.ROUND_GAP_SECONDS + 2
    assert all(b - a >= webhooks.ROUND_GAP_SECONDS * 0.9 for a, b in zip(rounds, rounds[1:]))
    assert rounds[-1] > started + 0.4  # commits late in the burst are looked at too
