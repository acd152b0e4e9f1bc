"""Engine and sessions.

SQLite: WAL, foreign keys, and BEGIN IMMEDIATE so a write transaction takes the
write lock up front instead of failing on upgrade from a stale read snapshot.
PostgreSQL: psycopg 3, READ COMMITTED; the conditional updates re-check their
WHERE after waiting on a row lock, which is what keeps stock from overselling.
Every wait on PostgreSQL is bounded (`Timeouts`), so a database that is down
or hung costs a request seconds, not a hang.
"""
from __future__ import annotations

import contextlib
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app.outage import OutageLog

T = TypeVar("T")


@dataclass(frozen=True)
class Timeouts:
    """How long PostgreSQL may take, in seconds: to open a connection, to run
    one statement, to free a connection of the pool."""
    connect: float = 3.0
    statement: float = 5.0
    pool: float = 3.0

    @property
    def answer(self) -> float:
        """How long the client waits for any answer before it gives the
        connection up. The server cancels a slow statement itself a second
        earlier; this fires only when the server does not answer at all (a
        frozen host keeps acknowledging TCP, so keepalives never notice)."""
        return self.statement + 1.0

    def libpq(self) -> dict[str, Any]:
        """Connection parameters: libpq's connect timeout (whole seconds, at
        least 2), the server's statement timeout, and TCP keepalives and a
        user timeout that drop a connection whose peer vanished from the
        network (a pulled cable sends no reset)."""
        return {
            "connect_timeout": max(2, math.ceil(self.connect)),
            "options": f"-c statement_timeout={max(1, round(self.statement * 1000))}",
            "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3, "keepalives_count": 3,
            "tcp_user_timeout": max(1, round(self.answer * 1000)),
        }


def _bounded_connection(answer_seconds: float) -> type:
    """A psycopg connection class whose every wait for the server (a
    statement, a fetch, a commit, a rollback, a ping) ends after
    `answer_seconds`: the connection is then closed, being mid-conversation,
    and the caller gets an OperationalError that the pool treats as a
    disconnect."""
    import psycopg

    # Connection.wait(timeout=) and the error it raises: psycopg 3.3 (pyproject).
    no_answer = getattr(psycopg.errors, "_WaitTimeout", None)
    if no_answer is None:
        raise RuntimeError(f"psycopg {psycopg.__version__} cannot bound a wait; luyue needs psycopg 3.3 or later")

    class BoundedConnection(psycopg.Connection):
        def wait(self, gen, *args, **kwargs):
            timeout = kwargs.get("timeout")
            kwargs["timeout"] = answer_seconds if timeout is None else min(timeout, answer_seconds)
            try:
                return super().wait(gen, *args, **kwargs)
            except no_answer:
                if timeout is not None and timeout <= answer_seconds:
                    raise  # the caller's own, shorter limit (notifies)
                self.pgconn.finish()
                raise psycopg.OperationalError(
                    f"the database did not answer within {answer_seconds:g} s; connection closed") from None

    return BoundedConnection


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use psycopg 3 for them."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def make_engine(url: str, echo: bool = False, immediate: bool = True, timeouts: Timeouts | None = None) -> Engine:
    """An engine; on PostgreSQL bounded by `timeouts` (none: migrations may
    run as long as they need)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine, immediate)
        return engine
    if timeouts is None:
        return create_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True)
    # pool_pre_ping: a connection the database dropped (a restart) is found
    # and replaced at checkout, so the server recovers by itself.
    engine = create_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True,
                           pool_timeout=timeouts.pool, connect_args=timeouts.libpq())
    connection_class = _bounded_connection(timeouts.answer)

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect, _record, cargs, cparams):
        return connection_class.connect(*cargs, **cparams)

    return engine


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

    def __init__(self, url: str, echo: bool = False, timeouts: Timeouts = Timeouts()):
        self.url = normalise_url(url)
        self.timeouts = timeouts
        self.engine = make_engine(self.url, echo=echo, timeouts=timeouts)
        self.read_engine = (make_engine(self.url, echo=echo, immediate=False)
                            if self.engine.dialect.name == "sqlite" else self.engine)
        # A database that is down is said in the log now and then, not per request.
        self.outages = OutageLog()
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
