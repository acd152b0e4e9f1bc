"""Fixtures shared by every test.

Each test runs against SQLite, and also against PostgreSQL when
LUYUE_TEST_POSTGRES_URL is set (CI sets it; a missing server then fails the
run rather than skipping). PostgreSQL tests get a private database per test
session, so parallel runs on one server never meet.
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app import create_app
from app.access import create_token
from app.db import normalise_url
from app.models import Base

POSTGRES_URL = os.environ.get("LUYUE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; dropped after."""
    if not POSTGRES_URL:
        pytest.fail("LUYUE_TEST_POSTGRES_URL is not set")
    admin_url = make_url(normalise_url(POSTGRES_URL))
    name = f"luyue_t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        # A test database need not survive a crash: commits skip the WAL flush.
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit TO off'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_engines: dict[str, object] = {}


def _truncate_postgres(url: str) -> None:
    # DELETE and a sequence restart, sent as one script: on tables this small,
    # many times faster than TRUNCATE, which makes new files for every table.
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        sequences = conn.execute(text("SELECT sequencename FROM pg_sequences "
                                      "WHERE schemaname = current_schema()")).scalars().all()
        conn.exec_driver_sql(
            "".join(f'DELETE FROM "{table.name}";' for table in reversed(Base.metadata.sorted_tables))
            + "".join(f'ALTER SEQUENCE "{sequence}" RESTART;' for sequence in sequences)
            + "INSERT INTO event_counter (id, last_seq) VALUES (1, 0)")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """An empty SQLite database with the schema, made once and copied per test."""
    path = tmp_path_factory.mktemp("template") / "luyue.db"
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    engine.dispose()
    return path


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> str:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")
        _truncate_postgres(url)
        return url
    shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp_path / "luyue.db")
    return f"sqlite:///{tmp_path / 'luyue.db'}"


@pytest.fixture
def app(database_url, tmp_path):
    app = create_app({"database_url": database_url, "secret_key": "test"})
    app.config.update(TESTING=True)
    app.instance_path = str(tmp_path / "instance")
    yield app
    # A live screen started this process's hub (on PostgreSQL a LISTEN
    # connection): each test's app stops its own.
    hub = app.extensions.get("luyue.live")
    if hub is not None:
        hub.stop()
    app.extensions["luyue.db"].dispose()


@pytest.fixture
def db(app):
    return app.extensions["luyue.db"]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def token_for(db):
    """token_for("shop", admin=False) -> a bearer token for that channel."""
    def make(channel: str = "shop", admin: bool = False) -> str:
        with db.transaction() as session:
            return create_token(session, channel, admin=admin)
    return make


@pytest.fixture
def admin_headers(token_for) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for('ops', admin=True)}"}


@pytest.fixture
def headers(token_for) -> dict[str, str]:
    """A sales channel's headers: channel 'shop'."""
    return {"Authorization": f"Bearer {token_for('shop')}"}


# --- a label printer on loopback, for the printing and pack-bench tests ----------------

class FakeZplPrinter:
    """A raw TCP 'printer' on 127.0.0.1 that records what it receives."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received: list[bytes] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.server.settimeout(10)
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
            self.received.append(b"".join(chunks))
        self._done.set()

    def wait(self, timeout: float = 5) -> bytes:
        assert self._done.wait(timeout), "the fake printer received nothing"
        return self.received[0]

    def close(self) -> None:
        self.server.close()
        self._thread.join(2)


@pytest.fixture
def zpl_printer() -> Iterator[FakeZplPrinter]:
    printer = FakeZplPrinter()
    yield printer
    printer.close()


@pytest.fixture
def closed_port() -> int:
    """A local port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
