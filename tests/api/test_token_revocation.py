"""`luyue token list` and `luyue token revoke`: tokens are listed without their
secrets, and a revoked token gets the contract's 401 from the next request on."""
from __future__ import annotations

import hashlib
import threading

from sqlalchemy import select

from app.access import TtlCache
from app.models import ApiToken
from app.web.api import TOKEN_TTL
from support import error, refused

EVENTS = "/api/v1/events"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create(runner, *args: str) -> str:
    result = runner.invoke(args=["token", "create", *args])
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def listed(runner) -> dict[str, list[str]]:
    """`token list` as {id: the line's words}."""
    result = runner.invoke(args=["token", "list"])
    assert result.exit_code == 0, result.output
    return {line.split()[0]: line.split() for line in result.stdout.strip().splitlines()}


def row_of(db, token: str) -> ApiToken:
    with db.reading() as s:
        return s.scalar(select(ApiToken).where(ApiToken.token_sha256 == hashlib.sha256(token.encode()).hexdigest()))


def test_token_list_shows_every_token_once_without_its_secret(runner, db):
    tokens = [create(runner, "--channel", "tmall"), create(runner, "--channel", "ops", "--admin"),
              create(runner, "--carrier", "ly-express")]
    result = runner.invoke(args=["token", "list"])
    assert result.exit_code == 0, result.output
    for token in tokens:
        assert token not in result.output and token[3:20] not in result.output
    lines = listed(runner)
    rows = [row_of(db, token) for token in tokens]
    assert sorted(lines) == sorted(str(row.id) for row in rows)
    tmall, ops, carrier = (lines[str(row.id)] for row in rows)
    assert tmall[1] == rows[0].token_sha256[:12]
    assert tmall[2:5] == ["channel", "tmall", "-"] and tmall[-1] == "active"
    assert ops[2:5] == ["channel", "ops", "admin"]
    assert carrier[2:5] == ["carrier", "ly-express", "-"]
    assert tmall[5] == f"{rows[0].created_at:%Y-%m-%d}"


def test_a_revoked_token_gets_the_contracts_401_at_once_while_another_still_works(runner, client, db, caplog):
    revoked, kept = create(runner, "--channel", "tmall"), create(runner, "--channel", "tmall")
    # Both are used first, so the API's token cache holds them.
    assert client.get(EVENTS, headers=bearer(revoked)).status_code == 200
    assert client.get(EVENTS, headers=bearer(kept)).status_code == 200
    token_id = row_of(db, revoked).id

    result = runner.invoke(args=["token", "revoke", str(token_id)])
    assert result.exit_code == 0, result.output
    assert f"revoked token {token_id}" in result.stdout and revoked not in result.output

    with refused(db, caplog):
        r = client.get(EVENTS, headers=bearer(revoked))
    error(r, 401, "unauthorized")
    assert r.get_json() == client.get(EVENTS, headers=bearer("ly_never-issued")).get_json()
    assert client.get(EVENTS, headers=bearer(kept)).status_code == 200
    # The row is kept, marked, and listed as revoked.
    assert row_of(db, revoked).revoked_at is not None
    assert listed(runner)[str(token_id)][-3] == "revoked"
    assert listed(runner)[str(row_of(db, kept).id)][-1] == "active"


def test_a_carrier_token_may_be_revoked_by_its_fingerprint(runner, client, db):
    token = create(runner, "--carrier", "ly-express")
    error(client.get(EVENTS, headers=bearer(token)), 403, "forbidden")  # known, but not a channel's
    fingerprint = hashlib.sha256(token.encode()).hexdigest()[:12]
    result = runner.invoke(args=["token", "revoke", fingerprint])
    assert result.exit_code == 0, result.output
    error(client.get(EVENTS, headers=bearer(token)), 401, "unauthorized")


def test_revoking_twice_or_an_unknown_token_is_an_error_and_writes_nothing(runner, db):
    token = create(runner, "--channel", "tmall")
    token_id = row_of(db, token).id
    assert runner.invoke(args=["token", "revoke", str(token_id)]).exit_code == 0
    revoked_at = row_of(db, token).revoked_at

    again = runner.invoke(args=["token", "revoke", str(token_id)])
    assert again.exit_code != 0
    assert "already revoked" in again.output
    assert row_of(db, token).revoked_at == revoked_at

    for unknown in (str(token_id + 100), "0123456789ab", "12345678901234", "tmall"):
        before = listed(runner)
        result = runner.invoke(args=["token", "revoke", unknown])
        assert result.exit_code != 0, unknown
        assert "No such token" in result.output
        assert listed(runner) == before


def test_revoke_help_says_running_servers_notice_within_the_cache_ttl(runner):
    result = runner.invoke(args=["token", "revoke", "--help"])
    assert f"within {TOKEN_TTL:g} s" in " ".join(result.output.split())


def test_a_look_up_begun_before_a_revocation_is_not_cached():
    cache, loading, release = TtlCache(60), threading.Event(), threading.Event()

    def slow_load(key: str) -> str:
        loading.set()
        release.wait(5)
        return "still valid when read"

    worker = threading.Thread(target=cache.get, args=("ly_token", slow_load))
    worker.start()
    assert loading.wait(5)
    cache.forget(hashlib.sha256(b"ly_token").hexdigest())  # the revocation commits meanwhile
    release.set()
    worker.join(5)
    assert cache.get("ly_token", lambda key: None) is None
