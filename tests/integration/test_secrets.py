"""The secret key: `luyue serve` will not sign logins with a missing, short
or published key; the demo makes one on its first run and keeps it. (A
cookie forged with the old public default: tests/web/test_sessions.py.)"""
from __future__ import annotations

import os
import stat

import pytest

from app import create_app, demo, secret_key, server
from app.config import Settings

STRONG = "x7Jq9V2mLk4Pz8Rt1Wc6Yb3Nf5Hd0Sg-AeUoIi_KjQ"  # 43 characters, varied


@pytest.fixture
def served(monkeypatch):
    """What `luyue serve` would have started (gunicorn itself is not run)."""
    started = []
    monkeypatch.setattr(server, "run_gunicorn", lambda *args: started.append(args))
    return started


def serve_with(key: str, database_url: str, tmp_path):
    app = create_app({"database_url": database_url, "secret_key": key})
    app.instance_path = str(tmp_path / "instance")
    try:
        return app.test_cli_runner().invoke(args=["serve", "--workers", "1"])
    finally:
        app.extensions["luyue.db"].dispose()


@pytest.mark.parametrize("key", ["", "dev-only-change-me", "short-key", "a" * 64, STRONG[:42]])
def test_serve_refuses_a_missing_short_published_or_regular_key_and_says_how_to_make_one(key, served, database_url,
                                                                                        tmp_path):
    result = serve_with(key, database_url, tmp_path)
    assert result.exit_code == 1, result.output
    assert "LUYUE_SECRET_KEY" in result.output and "secrets.token_urlsafe(32)" in result.output
    assert served == []


def test_serve_starts_with_32_random_bytes(served, database_url, tmp_path):
    result = serve_with(secret_key.new_key(), database_url, tmp_path)
    assert result.exit_code == 0, result.output
    assert len(served) == 1


def test_the_secret_key_has_no_default(monkeypatch, tmp_path):
    monkeypatch.delenv("LUYUE_SECRET_KEY", raising=False)
    assert Settings.from_env(tmp_path).secret_key == ""


def test_the_demo_makes_a_key_on_its_first_run_and_keeps_it(monkeypatch, tmp_path):
    monkeypatch.delenv("LUYUE_SECRET_KEY", raising=False)
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    keys = []
    for _ in range(2):
        app = create_app({"database_url": url})
        app.instance_path = str(tmp_path / "instance")
        assert app.config["SECRET_KEY"] == ""
        demo.use_demo_key(app, echo=lambda line: None)
        keys.append(app.config["SECRET_KEY"])
        app.extensions["luyue.db"].dispose()
    assert keys[0] == keys[1]
    secret_key.check(keys[0])  # strong enough for serve
    path = tmp_path / "instance" / secret_key.DEMO_KEY_FILE
    assert path.read_text().strip() == keys[0]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # Another machine's demo has a key of its own.
    other = tmp_path / "elsewhere"
    assert secret_key.demo_key(other) != keys[0]


def test_a_key_given_to_the_demo_is_used_and_nothing_is_written(tmp_path):
    app = create_app({"database_url": f"sqlite:///{tmp_path / 'demo.db'}", "secret_key": STRONG})
    app.instance_path = str(tmp_path / "instance")
    demo.use_demo_key(app, echo=lambda line: None)
    assert app.config["SECRET_KEY"] == STRONG
    assert not (tmp_path / "instance" / secret_key.DEMO_KEY_FILE).exists()
    app.extensions["luyue.db"].dispose()
