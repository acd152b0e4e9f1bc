"""SLA numbers on a fixed data set, against values worked out by hand.

Business days are Asia/Shanghai (+08:00). Four fulfilments, their stage
events at fixed times:

SH-PD  F1 promised 25th 18:00, shipped 25th 16:00  -> on time
          reserved 09:00, picking 09:10, picked 09:30, packed 10:00, shipped 16:00, delivered 26th 10:00
       F2 promised 25th 12:00, shipped 25th 13:00  -> late
          reserved 07:00 and again 08:00 (the later counts), picking 08:20, picked 08:50, packed 09:50,
          shipped 13:00
       F3 no promise, shipped 25th 20:00           -> no_promise
          reserved 10:00, picking 10:05, picked 10:45, packed 11:35, shipped 20:00
SH-JD  F4 promised 26th 18:00, shipped 26th 00:30 (25th 16:30 UTC: the business day is the 26th) -> on time
          reserved 25th 21:00, picking 21:30, picked 22:00, packed 23:00, shipped 26th 00:30

SH-PD on the 25th, seconds per stage (p90 = x[k] + (x[k+1]-x[k]) * f, k+f = 0.9*(n-1) = 1.8):
  reserved  F1 600,   F2 1200,  F3 300    sorted 300, 600, 1200       median 600    p90 600+600*.8 = 1080
  picking   F1 1200,  F2 1800,  F3 2400   sorted 1200, 1800, 2400     median 1800   p90 1800+600*.8 = 2280
  picked    F1 1800,  F2 3600,  F3 3000   sorted 1800, 3000, 3600     median 3000   p90 3000+600*.8 = 3480
  packed    F1 21600, F2 11400, F3 30300  sorted 11400, 21600, 30300  median 21600  p90 21600+8700*.8 = 28560
SH-PD on the 26th: shipped stage F1 64800 (16:00 -> 10:00 next day), nothing shipped.
SH-JD on the 25th: reserved 1800, picking 1800, picked 3600 (each one value); nothing shipped.
SH-JD on the 26th: packed 5400; shipped 1, on time.
"""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from app import access
from app.fulfilment import events, sla
from app.models import Delivery, Event, EventCounter, Fulfilment, FulfilmentStatus, Node, Order
from support import PLACES, add_nodes, error

CST = dt.timezone(dt.timedelta(hours=8))
D25, D26 = dt.date(2026, 11, 25), dt.date(2026, 11, 26)


def t(day: int, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hh, mm, tzinfo=CST)


DATA = {
    "F1": ("SH-PD", t(25, 18), t(25, 16), [("reserved", t(25, 9)), ("picking", t(25, 9, 10)),
                                           ("picked", t(25, 9, 30)), ("packed", t(25, 10)),
                                           ("shipped", t(25, 16)), ("delivered", t(26, 10))]),
    "F2": ("SH-PD", t(25, 12), t(25, 13), [("reserved", t(25, 7)), ("reserved", t(25, 8)),
                                           ("picking", t(25, 8, 20)), ("picked", t(25, 8, 50)),
                                           ("packed", t(25, 9, 50)), ("shipped", t(25, 13))]),
    "F3": ("SH-PD", None, t(25, 20), [("reserved", t(25, 10)), ("picking", t(25, 10, 5)),
                                      ("picked", t(25, 10, 45)), ("packed", t(25, 11, 35)),
                                      ("shipped", t(25, 20))]),
    "F4": ("SH-JD", t(26, 18), t(26, 0, 30), [("reserved", t(25, 21)), ("picking", t(25, 21, 30)),
                                              ("picked", t(25, 22)), ("packed", t(25, 23)),
                                              ("shipped", t(26, 0, 30))]),
}


@pytest.fixture
def dataset(db):
    add_nodes(db, {"SH-PD": PLACES["SH-PD"], "SH-JD": PLACES["SH-JD"]})
    with db.transaction() as s:
        channel = access.channel_named(s, "shop")
        nodes = {n.code: n for n in s.scalars(select(Node))}
        seq = events.last_seq(s)
        for ref, (node, promised, shipped_at, stages) in DATA.items():
            order = Order(channel_id=channel.id, external_id=f"O-{ref}", payload={}, payload_sha256="0" * 64,
                          placed_at=t(25, 6), promised_by=promised, delivery=Delivery.express,
                          customer_name="王小明", customer_phone="13800000000", ship_to={})
            f = Fulfilment(ref=ref, node_id=nodes[node].id, delivery=Delivery.express, shipped_at=shipped_at,
                           status=FulfilmentStatus(stages[-1][0]))
            order.fulfilments.append(f)
            s.add(order)
            s.flush()
            for stage, at in stages:
                seq += 1
                s.add(Event(seq=seq, at=at, type=f"fulfilment.{stage}", channel_id=channel.id, order_id=order.id,
                            fulfilment_id=f.id, node_id=nodes[node].id, data={}))
        # Noise the report must ignore: a node event, another type, a stage ended outside the range.
        s.add(Event(seq=seq + 1, at=t(25, 12), type="pick.claimed", node_id=nodes["SH-PD"].id, data={}))
        s.execute(update(EventCounter).values(last_seq=seq + 1))
    return db


def stages(row: sla.Row) -> dict[str, tuple[int, float | None, float | None]]:
    return {name: (st.count, st.median_s, st.p90_s) for name, st in row.stages.items() if st.count}


def test_shipped_on_time_late_and_stage_times_per_node_and_business_day(dataset):
    with dataset.reading() as s:
        rows = sla.report(s, D25, D26)
    assert [(r.day, r.node) for r in rows] == [(D25, "SH-JD"), (D25, "SH-PD"), (D26, "SH-JD"), (D26, "SH-PD")]
    jd25, pd25, jd26, pd26 = rows

    assert (pd25.shipped, pd25.on_time, pd25.late, pd25.no_promise, pd25.on_time_rate) == (3, 1, 1, 1, 0.5)
    assert stages(pd25) == {"reserved": (3, 600, 1080), "picking": (3, 1800, 2280),
                            "picked": (3, 3000, 3480), "packed": (3, 21600, 28560)}
    assert (pd26.shipped, pd26.on_time_rate) == (0, None)
    assert stages(pd26) == {"shipped": (1, 64800, 64800)}

    assert (jd25.shipped, stages(jd25)) == (0, {"reserved": (1, 1800, 1800), "picking": (1, 1800, 1800),
                                                "picked": (1, 3600, 3600)})
    assert (jd26.shipped, jd26.on_time, jd26.late, jd26.on_time_rate) == (1, 1, 0, 1.0)
    assert stages(jd26) == {"packed": (1, 5400, 5400)}


def test_a_range_and_a_node_filter_leave_the_rest_out(dataset):
    with dataset.reading() as s:
        only_25 = sla.report(s, D25, D25, nodes=["SH-PD"])
        whole = sla.report(s, D25, D26, by_day=False)
    assert [(r.day, r.node) for r in only_25] == [(D25, "SH-PD")]
    # The delivery on the 26th is outside: no shipped stage on the 25th.
    assert "shipped" not in stages(only_25[0])
    jd, pd = whole
    assert (jd.day, jd.node, jd.shipped, jd.on_time) == (None, "SH-JD", 1, 1)
    assert (pd.shipped, pd.on_time, pd.late, pd.no_promise) == (3, 1, 1, 1)
    assert stages(pd)["shipped"] == (1, 64800, 64800) and stages(pd)["reserved"] == (3, 600, 1080)


def test_percentiles_interpolate_between_closest_ranks():
    assert sla.percentile([5], 0.9) == 5
    assert sla.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == pytest.approx(9.1)
    assert sla.percentile([10, 20], 0.5) == 15
    with pytest.raises(ValueError):
        sla.percentile([], 0.9)


def test_the_csv_export_has_a_header_and_a_line_per_node_and_day(dataset):
    with dataset.reading() as s:
        lines = sla.csv_rows(sla.report(s, D25, D26))
    assert lines[0][:7] == ["day", "node", "shipped", "on_time", "late", "no_promise", "on_time_pct"]
    assert lines[0][7:10] == ["reserved_count", "reserved_median_s", "reserved_p90_s"]
    assert len(lines[0]) == 7 + 3 * 5
    assert lines[2] == ["2026-11-25", "SH-PD", "3", "1", "1", "1", "50.0",
                        "3", "600.0", "1080.0", "3", "1800.0", "2280.0", "3", "3000.0", "3480.0",
                        "3", "21600.0", "28560.0", "0", "", ""]
    assert lines[4][:7] == ["2026-11-26", "SH-PD", "0", "0", "0", "0", ""]


def test_the_report_endpoints_answer_json_and_csv_to_an_admin_only(dataset, client, admin_headers, headers):
    answer = client.get("/api/v1/reports/sla?from=2026-11-25&to=2026-11-26&node=SH-PD", headers=admin_headers)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["stages"] == ["reserved", "picking", "picked", "packed", "shipped"]
    assert [(r["day"], r["node"]) for r in body["rows"]] == [("2026-11-25", "SH-PD"), ("2026-11-26", "SH-PD")]
    assert body["rows"][0]["stages"]["packed"] == {"count": 3, "median_s": 21600, "p90_s": 28560}
    csv = client.get("/api/v1/reports/sla.csv?from=2026-11-25&to=2026-11-26", headers=admin_headers)
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert "sla-2026-11-25-2026-11-26.csv" in csv.headers["Content-Disposition"]
    text = csv.get_data(as_text=True).splitlines()
    assert len(text) == 5 and text[2].startswith("2026-11-25,SH-PD,3,1,1,1,50.0,3,600.0,1080.0")
    error(client.get("/api/v1/reports/sla", headers=headers), 403, "forbidden")
    assert error(client.get("/api/v1/reports/sla?from=25-11-2026", headers=admin_headers), 422,
                 "invalid_request")["fields"] == ["from"]
    assert error(client.get("/api/v1/reports/sla?from=2026-11-26&to=2026-11-25", headers=admin_headers), 422,
                 "invalid_request")["fields"] == ["to"]


def test_the_report_page_draws_the_charts_for_a_lead_and_exports_csv(dataset, client):
    from werkzeug.security import generate_password_hash

    from app.models import Role, User
    with dataset.transaction() as s:
        node = s.scalar(select(Node).where(Node.code == "SH-PD"))
        for code, role in (("L9", Role.lead), ("P9", Role.picker)):
            s.add(User(code=code, name=code, role=role, node_id=node.id, language="en",
                       pin_hash=generate_password_hash("1234", "pbkdf2:sha256:1000")))
    assert client.post("/login/pin", data={"badge": "P9", "pin": "1234"}).status_code == 302
    assert client.get("/reports/sla").status_code == 403
    client.post("/logout")
    assert client.post("/login/pin", data={"badge": "L9", "pin": "1234"}).status_code == 302

    page = client.get("/reports/sla?from=2026-11-25&to=2026-11-26")  # the lead's node by default
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count("<svg") == 2 and 'class="on_time"' in html and 'class="late"' in html
    assert 'data-kpi="shipped">3<' in html and 'data-kpi="on_time_rate">50.0 %<' in html
    assert "10 min / 18 min" in html  # reserved: median 600 s, p90 1080 s
    assert html.count("<tr class=") == 2  # SH-PD on the 25th and the 26th
    # No node named: still the lead's own node only; another node's report is refused.
    mine = client.get("/reports/sla?from=2026-11-25&to=2026-11-26&node=").get_data(as_text=True)
    assert 'data-kpi="shipped">3<' in mine and mine.count("<tr class=") == 2 and "All nodes" not in mine
    assert client.get("/reports/sla?from=2026-11-25&to=2026-11-26&node=SH-JD").status_code == 404
    bad = client.get("/reports/sla?from=2026-11-26&to=2026-11-01")
    assert bad.status_code == 422 and 'data-refusal="invalid_request"' in bad.get_data(as_text=True)

    csv = client.get("/reports/sla.csv?from=2026-11-25&to=2026-11-26")
    assert csv.mimetype == "text/csv" and "SH-PD" in csv.headers["Content-Disposition"]
    assert {line.split(",")[1] for line in csv.get_data(as_text=True).splitlines()[1:]} == {"SH-PD"}
    assert client.get("/reports/sla.csv?from=2026-11-25&to=2026-11-26&node=SH-JD").status_code == 404

    # An admin sees every node, together or one by one.
    with dataset.transaction() as s:
        s.add(User(code="A9", name="A9", role=Role.admin, node_id=node.id, language="en",
                   pin_hash=generate_password_hash("1234", "pbkdf2:sha256:1000")))
    client.post("/logout")
    assert client.post("/login/pin", data={"badge": "A9", "pin": "1234"}).status_code == 302
    everyone = client.get("/reports/sla?from=2026-11-25&to=2026-11-26&node=").get_data(as_text=True)
    assert 'data-kpi="shipped">4<' in everyone and everyone.count("<tr class=") == 4
    csv = client.get("/reports/sla.csv?from=2026-11-25&to=2026-11-26&node=SH-JD")
    assert csv.mimetype == "text/csv" and "SH-JD" in csv.headers["Content-Disposition"]
    assert [line.split(",")[:3] for line in csv.get_data(as_text=True).splitlines()[1:]] == [
        ["2026-11-25", "SH-JD", "0"], ["2026-11-26", "SH-JD", "1"]]
