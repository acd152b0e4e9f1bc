"""A scan id is the picker's own: the right scan sent under an id another
picker already used is counted, not answered "already counted"."""
from __future__ import annotations

from handhelds import Handheld, login, pick_through, scans_recorded, step_of

EARLY, LATE = "2026-11-25T12:00:00+08:00", "2026-11-25T18:00:00+08:00"


def test_a_pickers_right_scan_under_someone_elses_id_counts(app, floor):
    first, second = app.test_client(), app.test_client()
    floor.order(first, "O-EARLY", [("SKU-A", 1)], EARLY)   # bin A-01-01-1
    floor.order(first, "O-LATE", [("SKU-B", 1)], LATE)     # bin A-01-05-1
    login(first, "P1", "1111")
    login(second, "P2", "2222")
    one, two = Handheld(first), Handheld(second)
    one.claim(1)
    pick_through(one, ["T-1"])
    two.claim(1)
    pick_through(two, ["T-2"])
    shared = "handheld-0001-same"
    assert step_of(one.scan("A-01-01-1", scan_id=shared)) == "product"
    before = scans_recorded(floor.db)

    answer = two.scan("A-01-05-1", scan_id=shared)
    assert answer.status_code == 200 and step_of(answer) == "product"
    assert scans_recorded(floor.db) == before + 1
    # P2's own retry of it is recognised: counted once.
    again = two.scan("A-01-05-1", scan_id=shared)
    assert step_of(again) == "product" and scans_recorded(floor.db) == before + 1
