"""Distance from a node to a ship-to address.

Haversine when both have coordinates; otherwise the contract's fallback:
the same city, then the same province. Fallback distances are nominal, chosen
so that a known-near node still beats a far one measured exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

SAME_CITY_KM = 30.0
SAME_PROVINCE_KM = 300.0
ELSEWHERE_KM = 3000.0


@dataclass(frozen=True)
class Place:
    province: str
    city: str
    lat: float | None = None
    lon: float | None = None


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6371.0088
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def distance(a: Place, b: Place) -> tuple[float, str]:
    """(km, basis) where basis is coordinates, city, province or none."""
    if None not in (a.lat, a.lon, b.lat, b.lon):
        return haversine_km(a.lat, a.lon, b.lat, b.lon), "coordinates"
    if a.city and a.city == b.city and a.province == b.province:
        return SAME_CITY_KM, "city"
    if a.province and a.province == b.province:
        return SAME_PROVINCE_KM, "province"
    return ELSEWHERE_KM, "none"
