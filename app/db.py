"""Engine and sessions.

SQLite: WAL, foreign keys, and BEGIN IMMEDIATE so a write transaction takes the
write lock up front instead of failing on upgrade from a stale read snapshot.
PostgreSQL: psycopg 3, READ COMMITTED; the conditional updates re-check their
WHERE after waiting on a row lock, which is what keeps stock from overselling.
"""
from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use psycopg 3 for them."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def make_engine(url: str, echo: bool = False, immediate: bool = True) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine, immediate)
        return engine
    return create_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _configure_sqlite(engine: Engine, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_sqlite(session_or_engine) -> bool:
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return bind.dialect.name == "sqlite"


# PostgreSQL answers a lost race with one of these; the work is run again.
_RETRY_SQLSTATES = {"40001", "40P01", "23505"}
RETRIES = 5


def _retryable(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) in _RETRY_SQLSTATES


class Database:
    """One per app: the engines and session factories.

    On SQLite, read-only work gets its own engine that begins plainly, so
    readers never queue for the write lock that BEGIN IMMEDIATE takes."""

    def __init__(self, url: str, echo: bool = False):
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, echo=echo)
        self.read_engine = (make_engine(self.url, echo=echo, immediate=False)
                            if self.engine.dialect.name == "sqlite" else self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)
        # SQLite has one writer: threads queue here, in order, rather than in
        # SQLite's busy handler, which sleeps and lets late comers overtake.
        self._write_turn = threading.RLock() if self.engine.dialect.name == "sqlite" else contextlib.nullcontext()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on error."""
        with self._write_turn, self.sessions() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        with self.read_sessions() as session, session.begin():
            yield session

    def run(self, work: Callable[[Session], T]) -> T:
        """Run `work` in a transaction, again if it lost a race (deadlock,
        serialization failure, a unique key taken meanwhile)."""
        for attempt in range(RETRIES):
            try:
                with self.transaction() as session:
                    return work(session)
            except DBAPIError as e:
                if attempt == RETRIES - 1 or not _retryable(e):
                    raise
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
