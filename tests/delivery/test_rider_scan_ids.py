"""A scan id is the rider's own: another rider's earlier id, sent again, is
this rider's new action on this parcel, never the other's answer."""
from __future__ import annotations

from sqlalchemy import select
from deliveries import code_of
from test_rider import HX, Phone, banner, login, parcel_id, phone, same_city  # noqa: F401 (a fixture)

from app.models import ParcelDelivery, ScanRecord, TrackingStatus


def test_a_rider_replaying_another_riders_scan_id_is_not_told_delivered(floor, app):
    first, second = app.test_client(), app.test_client()
    login(first, "R001")
    login(second, "R002")
    mine, theirs = same_city(floor, "S-ID1"), same_city(floor, "S-ID2")
    assert Phone(first).pickup(mine).status_code == 200
    assert Phone(second).pickup(theirs).status_code == 200
    shared = "phone-scan-0001"
    delivered = Phone(first).code(parcel_id(floor, mine), code_of(floor, mine), scan_id=shared)
    assert delivered.status_code == 200 and mine in banner(delivered)

    # R002 sends R001's id with a wrong code for their own parcel: refused and counted.
    other = parcel_id(floor, theirs)
    wrong = "0000" if code_of(floor, theirs) != "0000" else "1111"
    answer = Phone(second).code(other, wrong, scan_id=shared)
    assert answer.status_code == 422 and 'data-refusal="delivery_code_wrong"' in answer.get_data(as_text=True)
    with floor.reading() as s:
        delivery = s.get(ParcelDelivery, other)
        assert delivery.status == TrackingStatus.out_for_delivery and delivery.code_failures == 1

        owners = s.scalars(select(ScanRecord.user_id).where(ScanRecord.scan_id == shared)).all()
        assert len(owners) == 2 and len(set(owners)) == 2  # one scan of each rider


def test_a_riders_own_retry_is_still_recognised(floor, phone):
    number = same_city(floor, "S-ID3")
    phone.pickup(number)
    pid = parcel_id(floor, number)
    sid = "phone-retry-0001"
    assert phone.code(pid, code_of(floor, number), scan_id=sid).status_code == 200
    again = phone.client.post(f"/ride/drops/{pid}/code", data={"code": "9999", "scan_id": sid}, headers=HX)
    assert again.status_code == 200 and number in banner(again)  # the first answer, not a wrong code
    with floor.reading() as s:
        assert s.get(ParcelDelivery, pid).code_failures == 0
