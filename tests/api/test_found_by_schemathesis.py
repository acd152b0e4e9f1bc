"""Bugs schemathesis found (tests/api/test_schemathesis.py), each kept as a
plain example: they answered 500."""
from __future__ import annotations

import pytest

from support import error, node_body


@pytest.mark.parametrize("field", ["province", "city"])
def test_a_node_whose_province_or_city_is_too_long_for_its_column_is_422_naming_it(client, admin_headers, db,
                                                                                  field):
    r = client.put("/api/v1/nodes/SH-LONG", json=node_body(**{field: "市" * 101}), headers=admin_headers)
    assert field in error(r, 422, "invalid_request")["fields"]
    r = client.put("/api/v1/nodes/SH-LONG", json=node_body(**{field: "市" * 100}), headers=admin_headers)
    assert r.status_code == 201
