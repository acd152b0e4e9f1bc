"""GET /healthz: 200 with the newest seq while the database answers, 503 when
it does not; no token needed."""
from __future__ import annotations

from app import create_app, live


def test_a_process_that_reads_its_database_is_healthy_without_a_token(client, db):
    answer = client.get("/healthz")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body == {"status": "ok", "database": db.dialect, "last_seq": body["last_seq"]}
    assert isinstance(body["last_seq"], int)


def test_the_seq_moves_with_the_events(client, admin_headers):
    before = client.get("/healthz").get_json()["last_seq"]
    made = client.put("/api/v1/nodes/N-1", json={"name": "N", "kind": "warehouse", "province": "上海市",
                                                 "city": "上海市", "daily_capacity": 10, "same_city_radius_km": 0,
                                                 "active": True}, headers=admin_headers)
    assert made.status_code == 201
    assert client.get("/healthz").get_json()["last_seq"] == before + 1


def test_a_process_that_cannot_reach_its_database_says_so(tmp_path, closed_port, caplog):
    app = create_app({"database_url": f"postgresql://postgres@127.0.0.1:{closed_port}/nowhere", "secret_key": "t"})
    answer = app.test_client().get("/healthz")
    assert answer.status_code == 503
    assert answer.get_json() == {"status": "unavailable", "database": "unreachable"}
    assert any("health check: the database is unreachable" in r.getMessage() for r in caplog.records)
    app.extensions["luyue.db"].dispose()


def test_a_stopping_process_asks_for_no_more_traffic(client):
    live.stopping.set()  # what gunicorn's SIGTERM sets (app.server)
    try:
        answer = client.get("/healthz")
    finally:
        live.stopping.clear()
    assert answer.status_code == 503 and answer.get_json() == {"status": "stopping"}
    assert client.get("/healthz").status_code == 200
