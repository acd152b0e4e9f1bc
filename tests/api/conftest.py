"""Master data most API tests start from: two nodes, a few SKUs."""
from __future__ import annotations

import pytest

from support import world

SKUS = ["SKU-0001", "SKU-0002", "SKU-0042"]


@pytest.fixture
def stocked(db):
    """SH-PD (near the customer) and HZ-XS (Hangzhou) with stock; returns db."""
    world(db, {"SH-PD": {"SKU-0001": 10, "SKU-0002": 5}, "HZ-XS": {"SKU-0001": 3, "SKU-0042": 4}})
    return db


@pytest.fixture
def other_headers(token_for) -> dict[str, str]:
    """Another sales channel's headers."""
    return {"Authorization": f"Bearer {token_for('market')}"}
