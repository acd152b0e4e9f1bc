"""Wrong delivery codes typed on several phones at once all count: a burst
locks the code as typing them one by one does, and the right code sent
inside or after the burst delivers only while codes were still open."""
from __future__ import annotations

from app.fulfilment import ride
from app.models import ParcelDelivery, Parcel, ParcelStatus, User
from deliveries import code_of, packed
from racing import key, released_together
from sqlalchemy import select

KEY = "test"
BURST = 20
ROUNDS = 5


def picked_up(db, external_id: str) -> tuple[int, str]:
    [number] = packed(db, external_id, [("SKU-B", 1)], delivery="same_city")
    with db.transaction() as s:
        rider = s.scalar(select(User).where(User.code == "R001"))
        parcel, _ = ride.pickup(s, rider, number, scan_id=f"pickup-{external_id}")
        return parcel.id, number


def burst(db, parcel_id: int, codes: list[str], round_no: int) -> list[str]:
    def attempt(i: int) -> str:
        with db.transaction() as s:
            rider = s.scalar(select(User).where(User.code == "R001"))
            check = ride.try_code(s, rider, parcel_id, codes[i], KEY, scan_id=f"code-{round_no}-{parcel_id}-{i}")
            return "delivered" if check.delivered else "wrong"
    return [key(answer) for answer in released_together(len(codes), attempt)]


def test_a_burst_of_wrong_codes_locks_the_code_and_the_right_code_after_it_is_refused(floor):
    for n in range(ROUNDS):
        parcel_id, number = picked_up(floor, f"CB-{n}")
        right = code_of(floor, number)
        wrong = f"{(int(right) + 1) % 10000:04d}"
        answers = burst(floor, parcel_id, [wrong] * BURST, n)
        assert answers.count("wrong") == ride.MAX_CODE_FAILURES
        assert answers.count("delivery_code_locked") == BURST - ride.MAX_CODE_FAILURES
        assert burst(floor, parcel_id, [right], n + 100) == ["delivery_code_locked"]
        with floor.reading() as s:
            assert s.get(ParcelDelivery, parcel_id).code_failures == ride.MAX_CODE_FAILURES
            assert s.get(Parcel, parcel_id).status == ParcelStatus.shipped


def test_the_right_code_inside_a_burst_delivers_only_while_codes_are_open(floor):
    for n in range(ROUNDS):
        parcel_id, number = picked_up(floor, f"CR-{n}")
        right = code_of(floor, number)
        wrong = f"{(int(right) + 1) % 10000:04d}"
        answers = burst(floor, parcel_id, [wrong] * (BURST - 1) + [right], n)
        wrong_counted = answers.count("wrong")
        assert wrong_counted <= ride.MAX_CODE_FAILURES
        with floor.reading() as s:
            delivered = s.get(Parcel, parcel_id).status == ParcelStatus.delivered
            assert s.get(ParcelDelivery, parcel_id).code_failures == wrong_counted
        if answers[-1] == "delivered":
            assert delivered and wrong_counted < ride.MAX_CODE_FAILURES
        else:
            assert not delivered and answers[-1] in ("delivery_code_locked", "ride_delivered")
