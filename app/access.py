"""Who may do what: channel API tokens and floor users (badge + PIN)."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.fulfilment.errors import Refusal
from app.models import ApiToken, Channel, Node, RateWindow, Role, User


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def channel_named(session: Session, name: str) -> Channel:
    channel = session.scalar(select(Channel).where(Channel.name == name))
    if channel is None:
        channel = Channel(name=name)
        session.add(channel)
        session.flush()
    return channel


def create_token(session: Session, channel_name: str, admin: bool = False) -> str:
    """A new token for the channel (created if new). Only its hash is stored."""
    token = "ly_" + secrets.token_urlsafe(32)
    session.add(ApiToken(channel=channel_named(session, channel_name), token_sha256=_sha(token), admin=admin))
    session.flush()
    return token


def token_owner(session: Session, token: str) -> tuple[Channel, bool] | None:
    """The channel of a channel token (None for a carrier's token)."""
    row = session.execute(
        select(Channel, ApiToken.admin).join(ApiToken, ApiToken.channel_id == Channel.id)
        .where(ApiToken.token_sha256 == _sha(token), ApiToken.revoked_at.is_(None))
    ).first()
    return (row[0], row[1]) if row else None


def create_carrier_token(session: Session, carrier_code: str) -> str:
    """A token for a carrier: it may post tracking updates for its own
    parcels (POST /api/v1/carrier-events) and call nothing else."""
    from app.fulfilment.carriers import CARRIERS
    if carrier_code not in CARRIERS:
        raise Refusal("not_found", what=f"carrier {carrier_code} (known: {', '.join(sorted(CARRIERS))})")
    token = "lyc_" + secrets.token_urlsafe(32)
    session.add(ApiToken(carrier=carrier_code, token_sha256=_sha(token)))
    session.flush()
    return token


def token_carrier(session: Session, token: str) -> str | None:
    """The carrier code of a carrier token, else None."""
    return session.scalar(select(ApiToken.carrier).where(
        ApiToken.token_sha256 == _sha(token), ApiToken.revoked_at.is_(None), ApiToken.carrier.is_not(None)))


def create_user(session: Session, code: str, name: str, role: str, pin: str, node_code: str | None = None,
                language: str = "zh") -> User:
    if not pin.isdigit() or not 4 <= len(pin) <= 12:
        raise ValueError("a PIN is 4 to 12 digits")
    node = None
    if node_code:
        node = session.scalar(select(Node).where(Node.code == node_code))
        if node is None:
            raise Refusal("not_found", what=f"node {node_code}")
    user = session.scalar(select(User).where(User.code == code))
    if user is None:
        user = User(code=code)
        session.add(user)
    user.name, user.role, user.node, user.language = name, Role(role), node, language
    user.pin_hash = generate_password_hash(pin)
    user.failed_logins, user.locked_until = 0, None  # a new PIN lifts a lock
    session.flush()
    return user


# Wrong PINs in a row before a badge is locked, and for how long.
MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15


def check_login(session: Session, code: str, pin: str) -> User | None:
    """The user if badge and PIN match; None if not. Wrong PINs are counted
    (the session must commit even then): the fifth in a row locks the badge
    for LOCK_MINUTES, refused with `login_locked` even with the right PIN."""
    user = session.scalar(select(User).where(User.code == code, User.active.is_(True)))
    if user is None:
        return None
    now = dt.datetime.now(dt.timezone.utc)
    if user.locked_until is not None and user.locked_until > now:
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        raise Refusal("login_locked", minutes=minutes)
    if not check_password_hash(user.pin_hash, pin):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.failed_logins, user.locked_until = 0, now + dt.timedelta(minutes=LOCK_MINUTES)
        return None
    user.failed_logins, user.locked_until = 0, None
    return user


class TtlCache:
    """A small per-process cache of found look-ups that may be a few seconds stale.
    Keys are hashed so no secret is kept in memory longer than needed."""

    def __init__(self, ttl: float, size: int = 1024):
        self.ttl, self.size = ttl, size
        self._items: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[str], Any]) -> Any:
        digest, now = _sha(key), time.monotonic()
        with self._lock:
            hit = self._items.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load(key)
        if value is None:  # misses are not kept: a new token works at once
            return None
        with self._lock:
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[digest] = (now + self.ttl, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def count_request(session: Session, channel_id: int, limit: int, now: float | None = None) -> int | None:
    """Count one API request of the channel in this minute. Returns the
    seconds to wait when it is over `limit`, else None. One upsert: the
    window's row is locked only until this short transaction commits."""
    now = time.time() if now is None else now
    minute = int(now // 60)
    insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(RateWindow)
    stmt = insert.values(channel_id=channel_id, minute=minute, requests=1)
    stmt = stmt.on_conflict_do_update(index_elements=["channel_id", "minute"],
                                      set_={"requests": RateWindow.requests + 1}).returning(RateWindow.requests)
    requests = session.execute(stmt).scalar_one()
    return None if requests <= limit else max(1, 60 - int(now % 60))


def prune_rate_windows(session: Session, now: float | None = None) -> int:
    """Forget minutes that are over."""
    now = time.time() if now is None else now
    return session.execute(delete(RateWindow).where(RateWindow.minute < int(now // 60) - 1)).rowcount or 0
