"""Requests at the same moment, for the race tests: threads released together
by a barrier, each in its own transaction (`db.transaction()`, no retries:
a deadlock or a clash on a unique key fails the test, since the lock order is
meant to make them impossible). What each thread returned, or the refusal it
met, comes back in order; any other error is raised.

Imported as `racing` (tests/integration is on sys.path for its conftest).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from app.db import Database
from app.fulfilment.errors import Refusal


def released_together(n: int, work: Callable[[int], Any], timeout: float = 60) -> list[Any]:
    """work(i) for i in range(n), in n threads that start at once. Each
    result is what work returned or the `Refusal` it raised."""
    start = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            start.wait(timeout=timeout)
            results[i] = work(i)
        except Refusal as refusal:
            results[i] = refusal
        except BaseException as e:  # noqa: BLE001 - raised below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout * 2)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


def race(db: Database, *works: Callable[[Session], Any]) -> list[Any]:
    """Each work in a transaction of its own, all released together."""
    def run(i: int) -> Any:
        with db.transaction() as s:
            return works[i](s)
    return released_together(len(works), run)


def key(outcome: Any) -> str:
    """A refusal's key, or what an accepted answer says (`what`, else repr)."""
    if isinstance(outcome, Refusal):
        return outcome.key
    return getattr(outcome, "what", repr(outcome))
