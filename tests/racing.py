"""Requests at the same moment, for the race tests: threads released together
by a barrier, each running its work as the screens and the API do
(`db.run`: a transaction, again after a deadlock or a unique-key clash).
A work that needed a second attempt fails the test all the same: the lock
order is meant to make deadlocks impossible, and a scan id looked up after
the lock never clashes. What each thread returned, or the refusal it met,
comes back in order; any other error is raised.

Imported as `racing`, like `support`.
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from app.db import Database
from app.fulfilment.errors import Refusal


def released_together(n: int, work: Callable[[int], Any], timeout: float = 60, jitter: float = 0.0) -> list[Any]:
    """work(i) for i in range(n), in n threads that start at once. Each
    result is what work returned or the `Refusal` it raised. `jitter`: each
    thread starts up to that many seconds after the release, at random, so
    that a work with fewer steps before its lock does not always arrive
    first (both orders of arrival get tested; nothing waits on a condition)."""
    start = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            start.wait(timeout=timeout)
            if jitter:
                time.sleep(random.uniform(0, jitter))
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


def race(db: Database, *works: Callable[[Session], Any], jitter: float = 0.02) -> list[Any]:
    """Each work in a transaction of its own (db.run), all released together;
    each was decided at its first attempt."""
    attempts = [0] * len(works)

    def run(i: int) -> Any:
        def attempt(s: Session) -> Any:
            attempts[i] += 1
            return works[i](s)
        return db.run(attempt)
    results = released_together(len(works), run, jitter=jitter)
    assert attempts == [1] * len(works), f"attempts {attempts}: a deadlock or a clash was retried"
    return results


def key(outcome: Any) -> str:
    """A refusal's key, or what an accepted answer says (`what`, else repr)."""
    if isinstance(outcome, Refusal):
        return outcome.key
    if isinstance(outcome, str):
        return outcome
    return getattr(outcome, "what", repr(outcome))
