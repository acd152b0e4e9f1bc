"""With LUYUE_RATE_LIMIT_PER_MINUTE set, a channel over its limit gets the
contract's 429 `rate_limited` with Retry-After; other channels go on."""
from __future__ import annotations

from sqlalchemy import func, select
from support import error

from app import access
from app.models import RateWindow


def test_a_channel_over_its_limit_is_told_to_wait_and_others_are_not(app, client, headers, token_for):
    app.config["LUYUE"].rate_limit_per_minute = 3
    for _ in range(3):
        assert client.get("/api/v1/events", headers=headers).status_code == 200
    over = client.get("/api/v1/events", headers=headers)
    details = error(over, 429, "rate_limited")
    assert 1 <= details["retry_after_seconds"] <= 60 and details["limit_per_minute"] == 3
    assert over.headers["Retry-After"] == str(details["retry_after_seconds"])
    other = {"Authorization": f"Bearer {token_for('market')}"}
    assert client.get("/api/v1/events", headers=other).status_code == 200


def test_without_a_limit_nothing_is_counted(app, client, headers, db):
    assert app.config["LUYUE"].rate_limit_per_minute == 0
    for _ in range(5):
        assert client.get("/api/v1/events", headers=headers).status_code == 200
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(RateWindow)) == 0


def test_a_new_minute_starts_a_new_count_and_old_minutes_are_pruned(db, token_for):
    token_for("shop")
    with db.transaction() as s:
        channel = access.channel_named(s, "shop")
        assert access.count_request(s, channel.id, 2, now=600.0) is None
        assert access.count_request(s, channel.id, 2, now=610.0) is None
        assert access.count_request(s, channel.id, 2, now=650.0) == 10  # 10 s to the next minute
        assert access.count_request(s, channel.id, 2, now=661.0) is None  # minute 11
        assert access.prune_rate_windows(s, now=725.0) == 1  # minute 10 is over; 11 may still be counted
