"""live.Shared: however many sockets of a node wake at once, the node's view
is computed once per new seq, and again only when it is older than max_age."""
from __future__ import annotations

import threading
import time

from app.live import Shared


class FakeHub:
    def __init__(self, seq: int = 0):
        self.last_seq = seq


def test_many_sockets_waking_at_once_compute_once_per_key_and_seq():
    hub, calls = FakeHub(5), []

    def compute(key, previous, seq):
        calls.append((key, seq, previous))
        time.sleep(0.05)  # long enough for every other socket to be waiting
        return f"{key}@{seq}"

    shared = Shared(hub, compute, max_age=60)
    seen: list[str] = []
    barrier = threading.Barrier(40)

    def socket(key: str) -> None:
        barrier.wait()
        seen.append(shared.get(key))

    threads = [threading.Thread(target=socket, args=("SH-PD" if i % 4 else "SH-JD",)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(calls) == [("SH-JD", 5, None), ("SH-PD", 5, None)]
    assert seen.count("SH-PD@5") == 30 and seen.count("SH-JD@5") == 10

    hub.last_seq = 7  # a commit: the next ask computes from the previous value
    assert shared.get("SH-PD") == "SH-PD@7" and calls[-1] == ("SH-PD", 7, "SH-PD@5")
    assert shared.get("SH-PD", 6) == "SH-PD@7" and len(calls) == 3


def test_a_value_older_than_max_age_is_made_again():
    hub, calls = FakeHub(1), []
    shared = Shared(hub, lambda key, previous, seq: calls.append(seq) or len(calls), max_age=0.05)
    assert shared.get("n") == 1 and shared.get("n") == 1
    time.sleep(0.06)
    assert shared.get("n") == 2


def test_a_seq_from_the_future_does_not_compute_every_time():
    hub, calls = FakeHub(3), []
    shared = Shared(hub, lambda key, previous, seq: calls.append(seq) or seq, max_age=60)
    assert shared.get("n", 99) == 3 and shared.get("n", 99) == 3 and calls == [3]
