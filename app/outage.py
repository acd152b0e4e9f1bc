"""The database is down or hung: how to tell that from a bug, and how to say
it in the log without a traceback per request.

An outage is answered 503 `unavailable` (app.web.errors) and retried by the
client; a bug stays a 500 with its traceback.
"""
from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLSTATE classes that say the database, not the statement, failed:
# connection exception, insufficient resources (too many connections),
# operator intervention (shutdown, starting up, statement timeout), system error.
_OUTAGE_CLASSES = ("08", "53", "57", "58")
# SQLite's own: another process holds the file, or the file is not there.
_SQLITE_OUTAGES = ("database is locked", "unable to open database file", "disk i/o error")


def is_outage(error: BaseException) -> bool:
    """True when `error` means the database cannot be reached or did not
    answer in time; False for anything that would fail again the same way."""
    if isinstance(error, PoolTimeout):
        return True  # every connection of the pool is stuck waiting
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        error = error.orig
    import psycopg
    import sqlite3
    if isinstance(error, sqlite3.OperationalError):
        return str(error).lower().startswith(_SQLITE_OUTAGES)
    if isinstance(error, psycopg.Error):
        state = error.sqlstate
        if state is None:  # said by the client: refused, closed, timed out
            return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))
        return state[:2] in _OUTAGE_CLASSES
    return False


def kind(error: BaseException) -> str:
    """The type of failure, for grouping log lines: the driver's error class
    and SQLSTATE, e.g. 'ConnectionTimeout', 'AdminShutdown 57P01'."""
    orig = error.orig if isinstance(error, DBAPIError) else error
    state = getattr(orig, "sqlstate", None)
    return type(orig).__name__ + (f" {state}" if state else "")


class OutageLog:
    """One log line per type of failure per `every` seconds, saying how many
    more there were meanwhile: an outage under load would otherwise write a
    traceback per request."""

    def __init__(self, every: float = 10.0):
        self.every = every
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._since: dict[str, int] = {}

    def report(self, logger: logging.Logger, where: str, error: BaseException) -> bool:
        """Log `error` met at `where` unless its type was logged less than
        `every` seconds ago. Returns whether a line was written."""
        key = kind(error)
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -self.every) < self.every:
                self._since[key] = self._since.get(key, 0) + 1
                return False
            self._last[key] = now
            more = self._since.pop(key, 0)
        summary = " ".join(str(error.orig if isinstance(error, DBAPIError) else error).split())[:200]
        logger.warning("%s: the database is unreachable (%s): %s%s", where, key, summary,
                       f" [{more} more since the last line]" if more else "")
        return True

    def failed(self, logger: logging.Logger, where: str, error: BaseException) -> None:
        """Background work failed and tries again later: an outage is said
        now and then, anything else with its traceback."""
        if is_outage(error):
            self.report(logger, where, error)
        else:
            logger.error("%s failed", where, exc_info=error)
