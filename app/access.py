"""Who may do what: channel API tokens and floor users (badge + PIN)."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, event, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload
from werkzeug.security import check_password_hash, generate_password_hash

from app.fulfilment.errors import Refusal
from app.models import ApiToken, Channel, LoginThrottle, Node, RateWindow, Role, User, utcnow


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


def token_fingerprint(token: ApiToken) -> str:
    """What `token list` shows and `token revoke` takes besides the id: the
    start of the stored hash, so an operator holding a token can find its row
    (`printf %s TOKEN | sha256sum`) while the listing reveals no secret."""
    return token.token_sha256[:12]


def list_tokens(session: Session) -> list[ApiToken]:
    """Every token, revoked ones too (their rows are kept), oldest first."""
    return list(session.scalars(select(ApiToken).options(selectinload(ApiToken.channel)).order_by(ApiToken.id)))


def find_token(session: Session, ident: str) -> ApiToken:
    """The token with this id, or with this fingerprint (or a longer prefix
    of the hash); a refusal if none or more than one matches."""
    ident = ident.strip().lower()
    # An id is a small number; a longer run of digits can only be a fingerprint
    # (and would overflow PostgreSQL's integer).
    token = session.get(ApiToken, int(ident)) if ident.isdigit() and len(ident) < 10 else None
    if token is None and len(ident) >= 8 and all(c in "0123456789abcdef" for c in ident):
        found = session.scalars(select(ApiToken).where(ApiToken.token_sha256.startswith(ident)).limit(2)).all()
        token = found[0] if len(found) == 1 else None
    if token is None:
        raise Refusal("not_found", what=f"token {ident} (see `luyue token list`)")
    return token


def revoke_token(session: Session, ident: str) -> ApiToken:
    """Mark the token revoked; its row stays, so the listing keeps its history.
    Refused if unknown or already revoked. Once the transaction commits, every
    token cache in this process forgets it; other processes see it when their
    cached entry expires (TtlCache's ttl)."""
    token = find_token(session, ident)
    # Conditional, so two operators revoking at once cannot both succeed.
    done = session.execute(update(ApiToken).where(ApiToken.id == token.id, ApiToken.revoked_at.is_(None))
                           .values(revoked_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    if not done:
        session.refresh(token)
        raise Refusal("conflict", reason=f"Token {token.id} was already revoked "
                                         f"at {token.revoked_at:%Y-%m-%d %H:%M:%S}Z.")
    session.refresh(token)
    digest = token.token_sha256
    # Not before the commit: a request in between would load and cache the
    # still-valid row again.
    event.listen(session, "after_commit", lambda _s: forget_everywhere(digest), once=True)
    return token


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
    else:
        # A new PIN (or role, or node): whoever knew the old one is out.
        end_sessions(session, user)
    user.name, user.role, user.node, user.language = name, Role(role), node, language
    user.pin_hash = generate_password_hash(pin)
    user.failed_logins, user.locked_until = 0, None  # a new PIN lifts a lock
    session.flush()
    return user


# --- logins (sessions) -----------------------------------------------------------------
# A login's cookie carries the user's session_version at login; a request
# whose version is not the user's current one is logged out. Raising it ends
# every login of the user, on every device and in every worker process.

def end_sessions(session: Session, user: User) -> None:
    """End every login of the user (one conditional-free increment, so two
    at once both count and neither is lost)."""
    session.execute(update(User).where(User.id == user.id)
                    .values(session_version=User.session_version + 1).execution_options(synchronize_session=False))
    session.refresh(user, ["session_version"])


def set_active(session: Session, code: str, active: bool) -> User:
    """Deactivate (or reactivate) a user; deactivating ends their logins, so
    reactivating later does not bring an old cookie back."""
    user = session.scalar(select(User).where(User.code == code))
    if user is None:
        raise Refusal("not_found", what=f"user {code}")
    user.active = active
    end_sessions(session, user)
    return user


def sign_out_worker(session: Session, lead: User, code: str) -> User:
    """A lead ends a worker's logins: a handheld left logged in, a badge lent.
    Only a worker of the lead's own node (an admin: anyone); another node's
    badge is answered like an unknown one, so nothing is learnt about it."""
    code = (code or "").strip()[:64]
    user = session.scalar(select(User).where(User.code == code)) if code and "\x00" not in code else None
    if user is None or (lead.role != Role.admin and (user.node_id != lead.node_id or user.role == Role.admin)):
        raise Refusal("sign_out_unknown_worker", badge=code or "-",
                      node=lead.node.code if lead.node else "-")
    end_sessions(session, user)
    return user


# Wrong PINs in a row before a badge is locked, and for how long.
MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15
# Checked against when a badge is unknown, so it costs what a known one does.
_nobody: list[str] = []


def check_login(session: Session, code: str, pin: str) -> User | None:
    """The user if badge and PIN match; None if not. Wrong PINs are counted
    (the session must commit even then): the fifth in a row locks the badge
    for LOCK_MINUTES, refused with `login_locked` even with the right PIN.
    An unknown badge is counted and locked the same way (`LoginThrottle`)
    and answers exactly as a known one does, so lockouts tell nothing about
    which badges exist. The row is locked before it is read, so guesses sent
    at once are counted one after another."""
    now = dt.datetime.now(dt.timezone.utc)
    user = session.scalar(select(User).where(User.code == code, User.active.is_(True)).with_for_update())
    counter: User | LoginThrottle = user if user is not None else _throttle(session, f"badge:{code[:250]}")
    _refuse_if_locked(counter.locked_until, now)
    if user is not None and check_password_hash(user.pin_hash, pin):
        user.failed_logins, user.locked_until = 0, None
        return user
    if user is None:
        if not _nobody:
            _nobody.append(generate_password_hash("not a pin"))
        check_password_hash(_nobody[0], pin)
    failures = (counter.failed_logins if isinstance(counter, User) else counter.failures) + 1
    locked = now + dt.timedelta(minutes=LOCK_MINUTES) if failures >= MAX_FAILED_LOGINS else None
    if isinstance(counter, User):
        counter.failed_logins, counter.locked_until = (0 if locked else failures), locked
    else:
        counter.failures, counter.locked_until, counter.updated_at = (0 if locked else failures), locked, now
    return None


def _refuse_if_locked(until: dt.datetime | None, now: dt.datetime) -> None:
    if until is not None and until > now:
        raise Refusal("login_locked", minutes=max(1, int((until - now).total_seconds() // 60) + 1))


def _throttle(session: Session, key: str) -> LoginThrottle:
    """The throttle row of `key`, made when missing, locked."""
    insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(LoginThrottle)
    session.execute(insert.values(key=key, failures=0, updated_at=utcnow()).on_conflict_do_nothing(
        index_elements=["key"]))
    return session.scalars(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()
                           .execution_options(populate_existing=True)).one()


# Every TtlCache of this process, so a revocation reaches the API's token
# cache without this module importing the web layer.
_caches: weakref.WeakSet[TtlCache] = weakref.WeakSet()


def forget_everywhere(digest: str) -> None:
    """Drop the entry for the key whose sha256 is `digest` from every cache."""
    for cache in list(_caches):
        cache.forget(digest)


class TtlCache:
    """A small per-process cache of found look-ups that may be a few seconds stale.
    Keys are hashed so no secret is kept in memory longer than needed."""

    def __init__(self, ttl: float, size: int = 1024):
        self.ttl, self.size = ttl, size
        self._items: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        # Bumped by forget/clear: a load that began before them may have read
        # what they invalidate, so its result is returned but not kept.
        self._generation = 0
        _caches.add(self)

    def get(self, key: str, load: Callable[[str], Any]) -> Any:
        digest, now = _sha(key), time.monotonic()
        with self._lock:
            hit = self._items.get(digest)
            generation = self._generation
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load(key)
        if value is None:  # misses are not kept: a new token works at once
            return None
        with self._lock:
            if generation != self._generation:
                return value
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[digest] = (now + self.ttl, value)
        return value

    def forget(self, digest: str) -> None:
        """Drop the entry for the key whose sha256 is `digest`."""
        with self._lock:
            self._items.pop(digest, None)
            self._generation += 1

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._generation += 1


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
