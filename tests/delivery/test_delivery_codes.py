"""Same-city delivery codes come from each parcel's own random value: the
server's key with the tracking number printed on the label (all a forger had
when the key was a public default) does not give the code; the sales
platform still reads it in the order document to send to the customer."""
from __future__ import annotations

import hashlib
import hmac

from deliveries import code_of, packed
from sqlalchemy import select, update

from app.models import Parcel

KEY = "test"  # the test app's secret key


def from_key_and_label(number: str) -> str:
    """How codes were made before: an HMAC of the tracking number alone."""
    digest = hmac.new(KEY.encode(), number.encode(), hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 10000:04d}"


def parcels_codes(floor, client, headers, n: int = 8) -> dict[str, str]:
    packed(floor, "S-CODES", [("SKU-B", n)], delivery="same_city", parcels=n)
    doc = client.get("/api/v1/orders/S-CODES", headers=headers).get_json()
    return {p["tracking_number"]: p["delivery_code"] for f in doc["fulfilments"] for p in f["parcels"]}


def test_the_key_and_the_label_do_not_give_the_delivery_code(floor, client, headers):
    codes = parcels_codes(floor, client, headers)
    assert len(codes) == 8 and all(len(c) == 4 and c.isdigit() for c in codes.values())
    # A forger's guess matches one code in 10,000 by chance; 8 at once never.
    assert sum(code == from_key_and_label(number) for number, code in codes.items()) < 8
    with floor.reading() as s:
        seeds = s.scalars(select(Parcel.delivery_code_seed).where(Parcel.tracking_number.in_(codes))).all()
    assert len(set(seeds)) == 8 and all(len(seed) == 32 for seed in seeds)


def test_the_order_document_gives_the_code_the_rider_is_asked_for(floor, client, headers):
    codes = parcels_codes(floor, client, headers, n=2)
    for number, code in codes.items():
        assert code == code_of(floor, number)


def test_the_code_follows_the_parcels_random_value_not_the_label_alone(floor, client, headers):
    codes = parcels_codes(floor, client, headers, n=3)
    with floor.transaction() as s:
        s.execute(update(Parcel).where(Parcel.tracking_number.in_(codes)).values(delivery_code_seed="0" * 32))
    after = parcels_codes_again(client, headers)
    # Same key, same labels, another random value: (almost surely) other codes.
    assert sum(after[number] != code for number, code in codes.items()) >= 2


def parcels_codes_again(client, headers) -> dict[str, str]:
    doc = client.get("/api/v1/orders/S-CODES", headers=headers).get_json()
    return {p["tracking_number"]: p["delivery_code"] for f in doc["fulfilments"] for p in f["parcels"]}
