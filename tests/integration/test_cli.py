"""The `luyue` commands an operator runs: tokens, users, CSV imports, schema."""
from __future__ import annotations

from sqlalchemy import func, inspect, select
from werkzeug.security import check_password_hash

from app import create_app
from app.models import Barcode, BinStock, Location, Node, Sku, User
from support import check_invariants, node_body, snapshot, stock_of


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- tokens and users -------------------------------------------------------------------

def test_token_create_prints_the_token_alone_on_its_last_line_and_it_works(runner, client):
    result = runner.invoke(args=["token", "create", "--channel", "tmall"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("ly_") and " " not in token
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/events", headers=headers).status_code == 200
    assert client.put("/api/v1/nodes/N-1", json=node_body(), headers=headers).status_code == 403


def test_an_admin_token_may_change_master_data(runner, client):
    result = runner.invoke(args=["token", "create", "--channel", "ops", "--admin"])
    token = result.stdout.strip().splitlines()[-1]
    r = client.put("/api/v1/nodes/N-1", json=node_body(), headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201


def test_two_tokens_for_one_channel_see_the_same_orders(runner, client, db):
    first, second = (runner.invoke(args=["token", "create", "--channel", "jd"]).stdout.strip().splitlines()[-1]
                     for _ in range(2))
    assert first != second
    from support import world, order_body
    world(db, {"SH-PD": {"SKU-1": 5}})
    client.post("/api/v1/orders", json=order_body("JD-1", [("SKU-1", 1)]),
                headers={"Authorization": f"Bearer {first}"})
    assert client.get("/api/v1/orders/JD-1", headers={"Authorization": f"Bearer {second}"}).status_code == 200


def test_user_create_saves_a_user_with_a_hashed_pin(runner, db):
    from support import add_nodes, PLACES
    add_nodes(db, {"SH-PD": PLACES["SH-PD"]})
    result = runner.invoke(args=["user", "create", "--code", "P001", "--name", "李娜", "--role", "picker",
                                 "--node", "SH-PD", "--pin", "2468"])
    assert result.exit_code == 0, result.output
    with db.reading() as s:
        user = s.scalar(select(User).where(User.code == "P001"))
        assert (user.name, user.role.value, user.node.code, user.language) == ("李娜", "picker", "SH-PD", "zh")
        assert user.pin_hash != "2468" and check_password_hash(user.pin_hash, "2468")
    # Again: the same badge gets a new PIN and role, not a second user.
    runner.invoke(args=["user", "create", "--code", "P001", "--name", "李娜", "--role", "lead", "--pin", "13579"])
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 1
        user = s.scalar(select(User))
        assert user.role.value == "lead" and check_password_hash(user.pin_hash, "13579")


def test_user_create_refuses_a_bad_pin_or_an_unknown_node(runner, db):
    bad_pin = runner.invoke(args=["user", "create", "--code", "P2", "--name", "x", "--role", "packer", "--pin", "12"])
    assert bad_pin.exit_code != 0 and "PIN" in bad_pin.output
    no_node = runner.invoke(args=["user", "create", "--code", "P3", "--name", "x", "--role", "dock",
                                  "--pin", "1234", "--node", "NOWHERE"])
    assert no_node.exit_code != 0 and "NOWHERE" in no_node.output
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0


# --- CSV imports -------------------------------------------------------------------------

NODES = """code,name,kind,province,city,lat,lon,daily_capacity,same_city_radius_km,active
SZ-GY-01,苏州工业园区仓,warehouse,江苏省,苏州市,31.3150,120.7230,2000,0,true
SZ-GQ-S1,苏州观前街店,store,江苏省,苏州市,,,60,6,true
"""
SKUS = """sku,name,barcodes,weight_g,presale
SKU-0901,碧螺春 100g,6927735001017,150,false
SKU-0902,桂花糕 400g,6927735001185|6927735001253,430,
"""
STOCK = """node,location,sku,on_hand
SZ-GY-01,B-01-01-1,SKU-0901,120
SZ-GY-01,B-01-02-1,SKU-0902,80
SZ-GY-01,B-01-02-4,SKU-0902,40
SZ-GQ-S1,A-01-01-1,SKU-0901,6
"""


def imported(runner, what, path):
    result = runner.invoke(args=["import", what, path])
    return result.exit_code, result.output


def test_good_csv_files_import_nodes_skus_and_stock(runner, db, tmp_path):
    for what, text in (("nodes", NODES), ("skus", SKUS), ("stock", STOCK)):
        code, output = imported(runner, what, write(tmp_path, f"{what}.csv", text))
        assert code == 0, output
    with db.reading() as s:
        nodes = {n.code: n for n in s.scalars(select(Node))}
        assert nodes["SZ-GQ-S1"].kind.value == "store" and nodes["SZ-GQ-S1"].lat is None
        assert nodes["SZ-GY-01"].lat == 31.315 and nodes["SZ-GY-01"].daily_capacity == 2000
        assert sorted(s.scalars(select(Barcode.code).join(Sku).where(Sku.code == "SKU-0902"))) == [
            "6927735001185", "6927735001253"]
        assert s.scalar(select(func.count()).select_from(Location)) == 4
    assert stock_of(db, "SZ-GY-01", "SKU-0902") == (120, 0)
    assert stock_of(db, "SZ-GQ-S1", "SKU-0901") == (6, 0)
    check_invariants(db)


def test_the_example_csv_files_import(runner, db):
    from pathlib import Path
    examples = Path(__file__).resolve().parents[2] / "examples"
    for what in ("nodes", "skus", "stock"):
        code, output = imported(runner, what, str(examples / f"{what}.csv"))
        assert code == 0, output
    check_invariants(db)


def test_a_bad_node_row_names_its_row_and_imports_nothing(runner, db, tmp_path):
    bad = NODES + "NJ-JN-01,南京江宁仓,depot,江苏省,南京市,31.9,118.8,1500,0,true\n"
    before = snapshot(db)
    code, output = imported(runner, "nodes", write(tmp_path, "nodes.csv", bad))
    assert code != 0
    assert "row 4" in output and "kind" in output
    assert snapshot(db) == before


def test_a_bad_sku_row_names_its_row_and_imports_nothing(runner, db, tmp_path):
    bad = SKUS + "SKU-0903,月饼,6927735001322,480,false\n"  # wrong check digit
    before = snapshot(db)
    code, output = imported(runner, "skus", write(tmp_path, "skus.csv", bad))
    assert code != 0
    assert "row 4" in output and "barcodes" in output
    assert snapshot(db) == before


def test_a_sku_row_taking_another_skus_barcode_names_its_row(runner, db, tmp_path):
    bad = SKUS + "SKU-0903,月饼,6927735001017,480,false\n"
    code, output = imported(runner, "skus", write(tmp_path, "skus.csv", bad))
    assert code != 0 and "row 4" in output and "6927735001017" in output
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Sku)) == 0


def test_a_bad_stock_row_names_its_row_and_imports_nothing(runner, db, tmp_path):
    imported(runner, "nodes", write(tmp_path, "nodes.csv", NODES))
    imported(runner, "skus", write(tmp_path, "skus.csv", SKUS))
    before = snapshot(db)
    for bad_row, words in (("SZ-GQ-S1,A-01-02-1,SKU-0902,-5", ["row 6", "on_hand"]),
                           ("SZ-GQ-S1,A-01-02-1,SKU-9999,5", ["row 6", "SKU-9999"]),
                           ("NOWHERE,A-01-02-1,SKU-0902,5", ["row 6", "NOWHERE"])):
        code, output = imported(runner, "stock", write(tmp_path, "stock.csv", STOCK + bad_row + "\n"))
        assert code != 0
        assert all(word in output for word in words), output
        assert snapshot(db) == before
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(BinStock)) == 0


# --- schema --------------------------------------------------------------------------------

def test_db_upgrade_creates_the_schema_on_an_empty_database(empty_database_url, tmp_path):
    app = create_app({"database_url": empty_database_url, "secret_key": "test"})
    app.instance_path = str(tmp_path / "instance")
    try:
        runner = app.test_cli_runner()
        result = runner.invoke(args=["db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert "up to date" in result.output
        db = app.extensions["luyue.db"]
        with db.engine.connect() as conn:
            assert {"orders", "fulfilments", "reservations", "events", "alembic_version"} <= set(
                inspect(conn).get_table_names())
        assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
        token = runner.invoke(args=["token", "create", "--channel", "shop"]).stdout.strip().splitlines()[-1]
        assert app.test_client().get("/api/v1/events", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        app.extensions["luyue.db"].dispose()
