"""The server's secret key: refused when weak, generated for the demo.

The key signs the session cookies, so whoever knows it can log in as anyone.
`luyue serve` refuses to start without a strong one; the demo makes one on
its first run and keeps it in the instance folder (mode 0600)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

# 32 random bytes written as URL-safe base64 are 43 characters.
MIN_KEY_CHARS = 43
# Keys that were public once (an old default, examples): never accepted.
KNOWN_KEYS = frozenset({"dev-only-change-me", "change-me", "secret", "test", "e2e", "screens"})
DEMO_KEY_FILE = "secret_key"

HOW_TO_MAKE_ONE = ('make one with:  export LUYUE_SECRET_KEY="$(python3 -c '
                   "'import secrets; print(secrets.token_urlsafe(32))')\"")


class WeakSecretKey(Exception):
    """The configured key may not sign sessions; the message says what to do."""


def new_key() -> str:
    return secrets.token_urlsafe(32)


def check(key: str) -> None:
    """Refuse a missing, short, well-known or repetitive key."""
    if not key:
        raise WeakSecretKey(f"LUYUE_SECRET_KEY is not set: it signs every login, so the server will not start "
                            f"without one of at least 32 random bytes; {HOW_TO_MAKE_ONE}")
    if key in KNOWN_KEYS:
        raise WeakSecretKey(f"LUYUE_SECRET_KEY is a published example, and anyone could sign logins with it; "
                            f"{HOW_TO_MAKE_ONE}")
    # A key of a few repeated characters is long but guessable.
    if len(key) < MIN_KEY_CHARS or len(set(key)) < 16:
        raise WeakSecretKey(f"LUYUE_SECRET_KEY is too short or too regular ({len(key)} characters): it must be "
                            f"at least 32 random bytes ({MIN_KEY_CHARS} characters of base64); {HOW_TO_MAKE_ONE}")


def demo_key(instance_path: Path) -> str:
    """The demo's key: read from instance/secret_key, made there on first run."""
    path = Path(instance_path) / DEMO_KEY_FILE
    if path.exists():
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = new_key()
    # Created readable by its owner only; never replaced once written.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key + "\n")
    return key
