"""Webhooks: each channel's event feed pushed to a URL it registered.

Every event in the channel's feed is POSTed, one at a time and strictly in
`seq` order: event n+1 is not sent before event n was answered 2xx. The
body is exactly the feed item (`GET /api/v1/events`), as compact UTF-8 JSON;
headers:

    Content-Type: application/json
    X-Luyue-Seq: <seq>               (receivers deduplicate by it)
    X-Luyue-Event: <type>
    webhook-id: evt_<seq>            (Standard Webhooks: the same id on every retry)
    webhook-timestamp: <Unix seconds of this attempt>
    webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">
    X-Luyue-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the webhook's secret>

The Standard Webhooks headers let a receiver reject a replayed delivery
(its timestamp is old); their key is the secret's bytes, given to receivers
as `whsec_<base64>` (`signing_secret`). X-Luyue-Signature, over the body
alone, stays for one release for receivers written against it.

A failure (no answer within the timeout, a connection error, any status but
2xx, redirects included) is retried with exponential backoff: base * 2^(n-1)
seconds after the n-th failure, capped (LUYUE_WEBHOOK_BACKOFF_SECONDS, _MAX_
SECONDS); registering the URL again retries at once. Every attempt is logged
(`WebhookDelivery`: time, status code or error, duration), readable through
`GET /api/v1/webhook/deliveries`; the scheduler prunes the log after
`LOG_DAYS`. The feed stays the source of truth: a receiver that was down
catches up from its cursor (`Webhook.delivered_seq`), and one that missed
something can read the feed.

Sending runs in background threads in every server process (`start()`), off
the request path: a commit only sets a flag (`events.subscribers`) and
nothing a request does waits on a webhook. Across processes a webhook is
claimed with a lease (a conditional UPDATE on `lease_owner` /
`lease_until`), renewed after each event, so two processes never send the
same webhook's events at once; the cursor only moves under the lease.
Delivery is at least once: a process that dies between a 2xx and recording
it leaves the event to be sent again when its lease runs out. The lease is
short (one attempt's timeout and a margin), so after a crash another
process resumes within seconds.

A channel registers its own URL, so the server must not become its way into
the network behind it: a URL whose host is (or resolves to) a loopback,
private, link-local or otherwise non-public address is refused when it is
registered, and checked again at every connection (the name may resolve
elsewhere by then), unless the operator allows such addresses
(LUYUE_WEBHOOK_ALLOW_PRIVATE, e.g. for a receiver on the same network).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import os
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased
from standardwebhooks.webhooks import Webhook as StandardWebhook

from app.db import Database
from app.fulfilment import clock, events
from app.fulfilment.intake import invalid
from app.models import Channel, Event, Fulfilment, Order, Webhook, WebhookDelivery, utcnow

log = logging.getLogger(__name__)

USER_AGENT = "luyue-webhooks/1"
MAX_URL = 2000
LOG_DAYS = 14
# How much of an answer is read before the connection is closed.
MAX_ANSWER_BYTES = 64 * 1024


# --- the feed item, shared with GET /api/v1/events -----------------------------------

stamp = clock.stamp


def feed_items(session: Session, channel_id: int, after: int, limit: int) -> list[dict[str, Any]]:
    """The channel's events strictly after `after`, in seq order."""
    feed = aliased(Fulfilment)
    rows = session.execute(
        select(Event.seq, Event.at, Event.type, Order.external_id, feed.ref, Event.data)
        .outerjoin(Order, Order.id == Event.order_id).outerjoin(feed, feed.id == Event.fulfilment_id)
        .where(Event.channel_id == channel_id, Event.seq > after).order_by(Event.seq).limit(limit)).all()
    return [{"seq": seq, "at": stamp(at), "type": type_, "order": ext, "fulfilment": ref, "data": data}
            for seq, at, type_, ext, ref, data in rows]


def body_of(item: dict[str, Any]) -> bytes:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signing_secret(secret: str) -> str:
    """The secret as Standard Webhooks libraries take it."""
    return "whsec_" + base64.b64encode(secret.encode()).decode()


def signed_headers(secret: str, item: dict[str, Any], body: bytes, now: dt.datetime) -> dict[str, str]:
    """Every header of one attempt to deliver `item` (see the module's docstring)."""
    msg_id = f"evt_{item['seq']}"
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": StandardWebhook(secret.encode()).sign(msg_id, now, body.decode()),
            "X-Luyue-Signature": sign(secret, body), "X-Luyue-Seq": str(item["seq"]),
            "X-Luyue-Event": item["type"]}


# --- registration -----------------------------------------------------------------------

def _check_url(url: Any, allow_private: bool) -> str:
    if not isinstance(url, str) or not url.strip():
        raise invalid([("url", "expected an http or https URL")])
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_URL:
        raise invalid([("url", f"expected an http or https URL of at most {MAX_URL} characters")])
    if not allow_private:
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            blocked = _non_public(parts.hostname, port)
        except (OSError, ValueError):  # not resolvable now: checked again at each connection
            blocked = None
        if blocked is not None:
            raise invalid([("url", f"expected a public address; {parts.hostname} is {blocked}, a private or local "
                                   "address (the operator may allow these: LUYUE_WEBHOOK_ALLOW_PRIVATE)")])
    return url


class AddressNotAllowed(OSError):
    """A webhook's host resolved to a private or local address."""


def _non_public(host: str, port: int) -> str | None:
    """The first address `host` resolves to that is not public, or None."""
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if not address.is_global:
            return str(address)
    return None


def _public_connection(address: tuple[str, int], timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,
                       source_address: Any = None, **kwargs: Any) -> socket.socket:
    """socket.create_connection, to a public address only: the name is
    resolved once here and the checked address is the one connected to."""
    host, port = address
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if not ip.is_global:
            named = f"{host} resolves to {ip}," if host != str(ip) else f"{ip} is"
            raise AddressNotAllowed(f"{named} a private or local address")
    return socket.create_connection(infos[0][4][:2], timeout, source_address)


class _PublicHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _public_connection


class _PublicHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _public_connection


class _PublicHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_PublicHTTPConnection, req)


class _PublicHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_PublicHTTPSConnection, req, context=self._context)


def _check_secret(secret: Any) -> str | None:
    if secret is None:
        return None
    if not isinstance(secret, str) or not 16 <= len(secret) <= 200:
        raise invalid([("secret", "expected a string of 16 to 200 characters")])
    return secret


def webhook_of(session: Session, channel_id: int) -> Webhook | None:
    return session.scalar(select(Webhook).where(Webhook.channel_id == channel_id))


def register(session: Session, channel: Channel, url: Any, secret: Any = None, after: Any = None, *,
             allow_private: bool = False) -> tuple[Webhook, bool]:
    """Create or replace the channel's webhook. A new one starts after the
    channel's latest event (or after `after`, e.g. 0 to replay the feed);
    replacing keeps the cursor unless `after` is given, and retries at once.
    Without a secret, a new webhook gets a generated one. A URL on a private
    or local address is refused unless `allow_private` (see the module doc)."""
    url = _check_url(url, allow_private)
    secret = _check_secret(secret)
    if after is not None and (not isinstance(after, int) or isinstance(after, bool) or after < 0):
        raise invalid([("after", "expected a seq (an integer, 0 or more)")])
    now = utcnow()
    w = webhook_of(session, channel.id)
    created = w is None
    if created:
        latest = session.scalar(select(Event.seq).where(Event.channel_id == channel.id)
                                .order_by(Event.seq.desc()).limit(1)) or 0
        w = Webhook(channel_id=channel.id, url=url, secret=secret or "whsec_" + secrets.token_urlsafe(24),
                    delivered_seq=latest if after is None else after, created_at=now)
        session.add(w)
    else:
        w.url = url
        if secret is not None:
            w.secret = secret
        if after is not None:
            w.delivered_seq = after
    w.failures, w.next_attempt_at, w.last_error, w.updated_at = 0, None, None, now
    session.flush()
    return w, created


def unregister(session: Session, channel: Channel) -> bool:
    w = webhook_of(session, channel.id)
    if w is None:
        return False
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == w.id))
    session.delete(w)
    return True


def document(session: Session, w: Webhook, with_secret: bool = False) -> dict[str, Any]:
    pending = session.scalar(select(func.count()).select_from(Event).where(
        Event.channel_id == w.channel_id, Event.seq > w.delivered_seq))
    doc: dict[str, Any] = {
        "url": w.url,
        "delivered_seq": w.delivered_seq,
        "pending": pending,
        "failures": w.failures,
        "next_attempt_at": stamp(w.next_attempt_at) if w.failures else None,
        "last_error": w.last_error,
        "created_at": stamp(w.created_at),
        "updated_at": stamp(w.updated_at),
        "secret_hint": "…" + w.secret[-4:],
    }
    if with_secret:
        doc["secret"] = w.secret
        doc["signing_secret"] = signing_secret(w.secret)
    return doc


def delivery_log(session: Session, w: Webhook, limit: int = 100, before: int | None = None
                 ) -> list[dict[str, Any]]:
    """Attempts, newest first; `before`: an attempt id, for the next page."""
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == w.id)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    return [{"id": d.id, "seq": d.seq, "type": d.event_type, "attempt": d.attempt, "at": stamp(d.at),
             "ok": d.ok, "status_code": d.status_code, "error": d.error, "duration_ms": d.duration_ms}
            for d in session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit))]


def prune_log(session: Session, now: dt.datetime | None = None) -> int:
    cutoff = (now or utcnow()) - dt.timedelta(days=LOG_DAYS)
    return session.execute(delete(WebhookDelivery).where(WebhookDelivery.at < cutoff)
                           .execution_options(synchronize_session=False)).rowcount or 0


# --- sending ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a 3xx is an answer, not a 2xx
        return None


_opener = urllib.request.build_opener(_NoRedirects)
_public_opener = urllib.request.build_opener(_NoRedirects, _PublicHTTPHandler, _PublicHTTPSHandler)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float, allow_private: bool = False) -> Answer:
    """One POST with a short timeout; never raises. Only to public addresses
    unless `allow_private`."""
    started = time.monotonic()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": USER_AGENT,
                                              **headers})
    status: int | None = None
    error: str | None = None
    try:
        with (_opener if allow_private else _public_opener).open(request, timeout=timeout) as answer:
            status = answer.status
            answer.read(MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as e:
        status, error = e.code, f"HTTP {e.code} {e.reason}"[:500]
        e.close()
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        error = (f"timed out after {timeout:g} s" if isinstance(reason, (socket.timeout, TimeoutError))
                 else f"{type(reason).__name__}: {reason}")[:500]
    except Exception as e:  # noqa: BLE001 - a sender thread must survive any answer
        error = f"{type(e).__name__}: {e}"[:500]
    ms = int((time.monotonic() - started) * 1000)
    ok = status is not None and 200 <= status < 300 and error is None
    return Answer(ok, status, error, ms)


def backoff(failures: int, base: float, cap: float) -> float:
    """Seconds before the next attempt after `failures` failures in a row."""
    return min(cap, base * 2 ** max(0, failures - 1))


# Rounds of looking for due webhooks are at least this far apart (seconds);
# an event waits at most this much longer to be sent.
ROUND_GAP_SECONDS = 0.1
# How long a lease outlasts one attempt's timeout (see Sender.lease).
LEASE_MARGIN_SECONDS = 2.0


class Sender:
    """This process's webhook sender: a loop that wakes on commits (and every
    `poll` seconds, for other processes' commits), claims due webhooks, and
    drains each in its own thread, at most `senders` at a time."""

    def __init__(self, db: Database, *, timeout: float = 5.0, backoff_base: float = 2.0,
                 backoff_cap: float = 600.0, poll: float = 1.0, senders: int = 4, owner: str | None = None,
                 allow_private: bool = False):
        self.db = db
        self.allow_private = allow_private
        self.timeout, self.backoff_base, self.backoff_cap, self.poll = timeout, backoff_base, backoff_cap, poll
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # One attempt's timeout and a margin to record it: renewed after each
        # event, so only a dead process's lease runs out.
        self.lease = dt.timedelta(seconds=timeout + LEASE_MARGIN_SECONDS)
        self._slots = threading.BoundedSemaphore(max(1, senders))
        self._busy: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @classmethod
    def for_app(cls, app) -> "Sender":
        s = app.config["LUYUE"]
        return cls(app.extensions["luyue.db"], timeout=s.webhook_timeout_seconds,
                   backoff_base=s.webhook_backoff_seconds, backoff_cap=s.webhook_backoff_max_seconds,
                   poll=s.webhook_poll_seconds, senders=s.webhook_senders, allow_private=s.webhook_allow_private)

    # -- lifecycle

    def wake(self, _first: int = 0, _last: int = 0) -> None:
        self._wake.set()  # called after every commit with events: must not block

    def start(self) -> "Sender":
        events.subscribers.append(self.wake)
        loop = threading.Thread(target=self._loop, name="luyue-webhooks", daemon=True)
        self._threads.append(loop)
        loop.start()
        return self

    def stop(self, wait: float = 0.0) -> None:
        self._stop.set()
        self._wake.set()
        if self.wake in events.subscribers:
            events.subscribers.remove(self.wake)
        deadline = time.monotonic() + wait
        for t in list(self._threads):
            t.join(max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.send_due()
            except Exception as e:  # the database went away: the next round tries again
                self.db.outages.failed(log, "webhook round", e)
            # Commits during the gap are looked at together after it: a busy
            # intake costs a few rounds a second, not one per commit.
            self._stop.wait(ROUND_GAP_SECONDS)

    # -- claiming

    def due(self, now: dt.datetime | None = None) -> list[int]:
        """Webhooks with an event to send, not waiting out a backoff, not leased."""
        now = now or utcnow()
        with self.db.reading() as s:
            return list(s.scalars(select(Webhook.id).where(
                or_(Webhook.next_attempt_at.is_(None), Webhook.next_attempt_at <= now),
                or_(Webhook.lease_until.is_(None), Webhook.lease_until < now),
                exists().where(Event.channel_id == Webhook.channel_id, Event.seq > Webhook.delivered_seq))
                .order_by(Webhook.next_attempt_at.is_not(None), Webhook.next_attempt_at, Webhook.id)))

    def _claim(self, webhook_id: int) -> bool:
        now = utcnow()
        with self.db.transaction() as s:
            won = s.execute(update(Webhook).where(
                Webhook.id == webhook_id, or_(Webhook.lease_until.is_(None), Webhook.lease_until < now))
                .values(lease_owner=self.owner, lease_until=now + self.lease)
                .execution_options(synchronize_session=False)).rowcount
        return won == 1

    def send_due(self) -> int:
        """Start draining every due webhook a slot is free for; returns how many."""
        started = 0
        for webhook_id in self.due():
            with self._lock:
                if webhook_id in self._busy:
                    continue
            if not self._slots.acquire(blocking=False):
                break
            if not self._claim(webhook_id):
                self._slots.release()
                continue
            with self._lock:
                self._busy.add(webhook_id)
            t = threading.Thread(target=self._drain, args=(webhook_id,), name=f"luyue-webhook-{webhook_id}",
                                 daemon=True)
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
            t.start()
            started += 1
        return started

    # -- sending one webhook's backlog, in order

    def _drain(self, webhook_id: int) -> None:
        try:
            while not self._stop.is_set():
                with self.db.reading() as s:
                    w = s.get(Webhook, webhook_id)
                    if w is None or w.lease_owner != self.owner:
                        return
                    items = feed_items(s, w.channel_id, w.delivered_seq, 1)
                    url, secret, cursor, failures = w.url, w.secret, w.delivered_seq, w.failures
                if not items:
                    return
                item = items[0]
                body = body_of(item)
                answer = post(url, body, signed_headers(secret, item, body, utcnow()), self.timeout,
                              self.allow_private)
                if not self._record(webhook_id, item, cursor, failures, answer):
                    return
        except Exception as e:
            self.db.outages.failed(log, f"webhook {webhook_id}: sending", e)
        finally:
            self._release(webhook_id)
            with self._lock:
                self._busy.discard(webhook_id)
            self._slots.release()
            self._wake.set()  # events may have come in since the last look

    def _record(self, webhook_id: int, item: dict[str, Any], cursor: int, failures: int, answer: Answer) -> bool:
        """Log the attempt and move the cursor (2xx) or set the backoff.
        Returns True to go on with the next event."""
        now = utcnow()
        with self.db.transaction() as s:
            mine = (Webhook.id == webhook_id, Webhook.lease_owner == self.owner, Webhook.delivered_seq == cursor)
            if answer.ok:
                values: dict[str, Any] = {"delivered_seq": item["seq"], "failures": 0, "next_attempt_at": None,
                                          "last_error": None, "lease_until": now + self.lease}
            else:
                values = {"failures": failures + 1, "last_error": answer.error or f"HTTP {answer.status_code}",
                          "next_attempt_at": now + dt.timedelta(
                              seconds=backoff(failures + 1, self.backoff_base, self.backoff_cap))}
            moved = s.execute(update(Webhook).where(*mine).values(**values)
                              .execution_options(synchronize_session=False)).rowcount
            if not moved:  # the lease ran out, or the webhook was removed meanwhile
                return False
            s.add(WebhookDelivery(webhook_id=webhook_id, seq=item["seq"], event_type=item["type"],
                                  attempt=failures + 1, at=now, duration_ms=answer.duration_ms,
                                  status_code=answer.status_code, error=answer.error, ok=answer.ok))
        if not answer.ok:
            log.info("webhook %s: event %s failed (%s); retry in %.1f s", webhook_id, item["seq"],
                     answer.error or answer.status_code, backoff(failures + 1, self.backoff_base, self.backoff_cap))
        return answer.ok

    def _release(self, webhook_id: int) -> None:
        try:
            with self.db.transaction() as s:
                s.execute(update(Webhook).where(Webhook.id == webhook_id, Webhook.lease_owner == self.owner)
                          .values(lease_owner=None, lease_until=None).execution_options(synchronize_session=False))
        except Exception as e:  # the lease runs out by itself
            self.db.outages.failed(log, f"webhook {webhook_id}: releasing the lease", e)


def start(app) -> Sender:
    """Start this process's sender (server.load, the demo)."""
    return Sender.for_app(app).start()
