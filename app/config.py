"""Settings from the environment (LUYUE_*), with overrides for tests."""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path


def _default_database_url(instance_path: Path) -> str:
    return f"sqlite:///{instance_path / 'luyue.db'}"


@dataclass
class Settings:
    database_url: str = ""
    # Signs the session cookies: at least 32 random bytes (app.secrets).
    # Empty by default: `luyue serve` refuses to start without one, and the
    # demo keeps a generated one in instance/.
    secret_key: str = ""
    # Served over HTTPS (a TLS proxy in front): cookies are sent only over
    # HTTPS. Without it, a request is HTTPS if X-Forwarded-Proto says so and
    # comes through one of `trusted_proxies` proxies (0: none is believed).
    https: bool = False
    trusted_proxies: int = 0
    # Business day for node capacity and SLA reports.
    timezone: str = "Asia/Shanghai"
    # A shift: how long a handheld login lasts.
    session_hours: float = 10.0
    gs1_company_prefix: str = "6901234"
    # Shipping labels: the size opened in the browser (100x150 or 76x130), and
    # the label printers a pack bench may choose, LUYUE_PRINTERS=
    # "pack-1=zpl://10.0.0.21:9100;office=cups://HP_M404" (see printing.printers).
    label_size: str = "100x150"
    printers: str = ""
    sql_echo: bool = False
    # Hosts (host[:port], comma-separated) besides the request's own that the
    # screens' forms and live sockets may come from: a proxy that rewrites Host.
    trusted_origins: str = ""
    # API requests a sales channel may make per minute (0: no limit).
    rate_limit_per_minute: int = 0
    # Delivery and receipt: a delivered fulfilment completes by itself this
    # many days later; one awaiting stock this many hours is cancelled.
    auto_complete_days: float = 7.0
    awaiting_stock_cancel_hours: float = 72.0
    # Same-city delivery codes are an HMAC of the tracking number and the
    # parcel's own random value with this key (the secret key when empty);
    # a photo proof may be this large.
    delivery_code_secret: str = ""
    proof_photo_max_bytes: int = 6 * 1024 * 1024
    # Webhooks: per-request timeout, backoff base and cap (doubling per
    # failure), how often each process looks for work, parallel senders.
    webhook_timeout_seconds: float = 5.0
    webhook_backoff_seconds: float = 2.0
    webhook_backoff_max_seconds: float = 600.0
    webhook_poll_seconds: float = 1.0
    webhook_senders: int = 4
    # Webhooks may go to loopback, private and link-local addresses (a
    # receiver inside the same network); off, so a channel's URL cannot reach
    # what sits behind the server.
    webhook_allow_private: bool = False
    # The database's time limits (PostgreSQL), so a database that is down or
    # hung costs a request seconds and a 503, not a hang: opening a
    # connection (libpq counts whole seconds, at least 2), one statement (the
    # server cancels it; the client gives up one second later if the server
    # does not answer at all), waiting for a free connection of the pool.
    db_connect_timeout_seconds: float = 3.0
    db_statement_timeout_seconds: float = 5.0
    db_pool_timeout_seconds: float = 3.0
    # What a 503 `unavailable` tells clients to wait before retrying, and how
    # long GET /healthz waits for the database before it answers 503.
    unavailable_retry_after_seconds: int = 5
    health_timeout_seconds: float = 1.5

    # Cycle counts on the handheld: a count off the books by more than this
    # many units (either way) waits for a lead to approve it or order a
    # recount; within it, it is applied at once. 0: every variance to a lead.
    count_variance_units: int = 2

    @classmethod
    def from_env(cls, instance_path: Path, **overrides) -> "Settings":
        values: dict = {}
        for f in fields(cls):
            raw = os.environ.get(f"LUYUE_{f.name.upper()}")
            if raw is None:
                continue
            if f.type in ("bool", bool):
                values[f.name] = raw.lower() in ("1", "true", "yes", "on")
            elif f.type in ("float", float):
                values[f.name] = float(raw)
            elif f.type in ("int", int):
                values[f.name] = int(raw)
            else:
                values[f.name] = raw
        values.update(overrides)
        settings = cls(**values)
        if not settings.database_url:
            settings.database_url = _default_database_url(instance_path)
        return settings
