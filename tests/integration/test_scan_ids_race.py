"""Two pickers whose handhelds made the same scan id, scanning at the same
moment on PostgreSQL (threads released together, each in its own
transaction, many rounds): a scan id is its user's own, so both scans count;
neither is answered "already counted" nor ends in a database error."""
from __future__ import annotations

import os

import pytest
from test_races_pick import BARCODES, Floor, outcome, race

POSTGRES_URL = os.environ.get("LUYUE_TEST_POSTGRES_URL")
ROUNDS = 25

if POSTGRES_URL:
    @pytest.fixture
    def floor(db, client, headers) -> Floor:
        return Floor(db, client, headers)

    @pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
    def test_two_pickers_scans_under_one_id_at_once_both_count(floor):
        floor.order([("SKU-A", ROUNDS)])
        floor.order([("SKU-B", ROUNDS)])
        first, second = floor.claim("P00"), floor.claim("P01")
        floor.scans("P00", ["T-A", "A-01-01-1"])
        floor.scans("P01", ["T-B", "A-01-05-1"])
        for round_ in range(ROUNDS):
            shared = f"same-id-{round_:03d}"
            answers = race(lambda: floor.scan("P00", BARCODES["SKU-A"], shared),
                           lambda: floor.scan("P01", BARCODES["SKU-B"], shared))
            assert [outcome(a) for a in answers] == ["unit", "unit"], (round_, answers)
        assert floor.lines(first) == [("A-01-01-1", "SKU-A", ROUNDS, ROUNDS, "tote")]
        assert floor.lines(second) == [("A-01-05-1", "SKU-B", ROUNDS, ROUNDS, "tote")]
        floor.check()
