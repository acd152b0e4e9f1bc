"""One order intake issues a fixed number of SQL statements, however many
lines the order has and however many nodes hold its stock (no N+1)."""
from __future__ import annotations

import contextlib

from sqlalchemy import event

from support import add_nodes, add_skus, check_invariants, count, order_body

# Statements for one POST /api/v1/orders, from the token check to the order
# document, once the per-process token and node caches are warm: recorded
# here so the number cannot grow unnoticed.
MOST_STATEMENTS = {"sqlite": 18, "postgresql": 18}


@contextlib.contextmanager
def counting(db):
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    engines = {db.engine, db.read_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def intake_statements(client, headers, db, external_id, lines) -> tuple[int, dict]:
    # A first order warms the token and node caches, as any running server has.
    warm = client.post("/api/v1/orders", json=order_body(f"WARM-{external_id}", [lines[0]]), headers=headers)
    assert warm.status_code == 201
    with counting(db) as statements:
        r = client.post("/api/v1/orders", json=order_body(external_id, lines), headers=headers)
    assert r.status_code == 201
    return len(statements), r.get_json()


def test_an_intake_issues_the_same_statements_for_1_line_at_2_nodes_and_60_lines_at_50_nodes(client, headers, db):
    def place(i: int) -> dict:
        return {"province": "上海市", "city": "上海市", "lat": 31.0 + i / 100, "lon": 121.5}

    skus = [f"SKU-{j:03d}" for j in range(60)]
    add_skus(db, skus)
    add_nodes(db, {"N-00": place(0), "N-01": place(1)})
    count(db, "N-00", {"SKU-000": 50})
    count(db, "N-01", {"SKU-000": 50})
    small, small_doc = intake_statements(client, headers, db, "SMALL", [("SKU-000", 2)])

    add_nodes(db, {f"N-{i:02d}": place(i) for i in range(2, 50)})
    # Each node holds 7 of the 60 SKUs, in a ring: the big order needs 9 nodes.
    for i in range(50):
        count(db, f"N-{i:02d}", {skus[(i * 7 + k) % 60]: 50 for k in range(7)})
    big, big_doc = intake_statements(client, headers, db, "BIG", [(sku, 1 + i % 3) for i, sku in enumerate(skus)])

    assert len(small_doc["fulfilments"]) == 1
    assert len(big_doc["fulfilments"]) >= 9
    assert sum(line["quantity"] for f in big_doc["fulfilments"] for line in f["lines"]) == 120
    assert big == small
    assert small <= MOST_STATEMENTS[db.dialect]
    check_invariants(db)


def test_a_retried_order_costs_no_more_statements_than_a_new_one(client, headers, db):
    add_nodes(db, {"N-1": {"province": "上海市", "city": "上海市"}})
    add_skus(db, ["SKU-1"])
    count(db, "N-1", {"SKU-1": 5})
    new, _ = intake_statements(client, headers, db, "R-1", [("SKU-1", 1)])
    with counting(db) as statements:
        r = client.post("/api/v1/orders", json=order_body("R-1", [("SKU-1", 1)]), headers=headers)
    assert r.status_code == 200
    assert len(statements) < new
