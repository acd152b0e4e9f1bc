"""The API against the corpus: hostile values in every text and number field
of its JSON bodies, in its paths and queries, and bodies that are not JSON at
all. Each answered with the contract's error body (a 4xx), never a 5xx, at
most 1 s of CPU, nothing written."""
from __future__ import annotations

import copy
import json
import time
from urllib.parse import quote

import support
from hostile import attack, every_table
from corpus import CONTROLS, LINE_BREAKS, MAX_CPU_SECONDS, Field

# Values no JSON field takes: control characters, text far too long, the
# wrong type, numbers beyond any column.
BAD_TEXT = CONTROLS + ["A\x1dB", "x" * 5000, "9" * 100_000]
BAD_TYPE = [None, True, [], {}, [["deep"]], 1.5, -1, 2 ** 31, 2 ** 63, 10 ** 400, -(10 ** 400), 1e308, "", " "]
# For a number that may be left out (null is fine there).
BAD_NUMBER = [True, [], {}, "1", 1e308, 10 ** 400, -(10 ** 400), 91, -181]
BAD_TIME = ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00", "2026-13-40T25:61:00Z", "2026-11-24",
            "2026-11-24T10:00:00", "yesterday", "1" * 400]
BAD_CARRIER_TIME = BAD_TIME + ["0001-01-01T00:00:00Z", "1999-12-31T23:00:00Z"]


def _set(body, path, value):
    body = copy.deepcopy(body)
    target = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return body


def _get(body, dotted):
    for part in dotted.split("."):
        body = body[int(part)] if isinstance(body, list) else body[part]
    return body


def _json_cases(body, paths_and_values):
    for path, values in paths_and_values:
        for value in values:
            yield ".".join(map(str, path)), _set(body, path, value)


def _send(site, method, url, headers, failures, what, refuse=True, **kwargs):
    started = time.thread_time()
    answer = site.app.test_client().open(url, method=method, headers=headers, **kwargs)
    cpu = time.thread_time() - started
    if answer.status_code >= 500 or (refuse and not 400 <= answer.status_code < 500):
        failures.append(f"{what}: {answer.status_code} {answer.get_data(as_text=True)[:200]}")
    elif not refuse and answer.status_code < 400:
        pass  # text the limits pass, answered as what it is (nothing found, an empty report)
    elif answer.mimetype == "application/json" and "error" not in (answer.get_json() or {}):
        failures.append(f"{what}: no error body")
    elif answer.mimetype != "application/json":
        failures.append(f"{what}: answered {answer.mimetype}, not the contract's body")
    if cpu > MAX_CPU_SECONDS:
        failures.append(f"{what}: {cpu:.2f} s of CPU")


def _run(site, requests) -> int:
    failures, n = [], 0
    before = every_table(site.db)
    for method, url, headers, what, kwargs in requests:
        n += 1
        _send(site, method, url, headers, failures, what, **kwargs)
        if method != "GET" and every_table(site.db) != before:
            failures.append(f"{what}: wrote")
            before = every_table(site.db)
    assert not failures, f"{len(failures)} of {n} failed:\n" + "\n".join(failures[:60])
    return n


def test_hostile_values_in_an_order_body_are_refused_whole(site):
    body = support.order_body("HOSTILE-1", [("SKU-A", 1)])
    cases = _json_cases(body, [
        (("external_id",), BAD_TEXT + BAD_TYPE), (("customer", "name"), BAD_TEXT + BAD_TYPE[:6]),
        (("customer", "phone"), BAD_TEXT), (("ship_to", "line1"), BAD_TEXT), (("ship_to", "city"), BAD_TEXT),
        (("ship_to", "lat"), BAD_NUMBER), (("lines", 0, "sku"), BAD_TEXT + BAD_TYPE[:6]),
        (("lines", 0, "quantity"), BAD_TYPE + ["1", "１"]), (("placed_at",), BAD_TIME),
        (("promised_by",), BAD_TIME), (("delivery",), BAD_TEXT + ["drone"]),
    ])
    assert _run(site, [("POST", "/api/v1/orders", site.headers, f"orders {p}={json.dumps(_get(b, p))[:60]}", {"json": b})
                       for p, b in cases]) > 150


def test_bodies_that_are_not_json_are_refused(site):
    raw = [b"", b"null", b"[]", b"NaN", b"1e999999", b"\xff\xfe\x00", b"{" * 100_000, b"[" * 50_000 + b"]" * 50_000,
           b'{"a":' * 5000, b'{"external_id": "\x00"}', "１".encode() * 10, b"9" * 5000, b'"' + b"x" * 500_000 + b'"']
    requests = []
    for url, headers, method in (("/api/v1/orders", site.headers, "POST"),
                                 ("/api/v1/carrier-events", site.carrier_headers, "POST"),
                                 ("/api/v1/webhook", site.headers, "PUT"),
                                 ("/api/v1/skus/SKU-Z", site.admin_headers, "PUT"),
                                 ("/api/v1/nodes/SH-PD/stock", site.admin_headers, "PUT")):
        for body in raw:
            requests.append((method, url, {**headers, "Content-Type": "application/json"}, f"{url} {body[:20]!r}",
                             {"data": body}))
    assert _run(site, requests) > 60


def test_a_carrier_event_dated_year_1_or_with_hostile_text_is_refused(site):
    body = {"events": [{"tracking_number": "LY0001", "status": "delivered", "at": "2026-11-24T10:00:00+08:00"}]}
    cases = _json_cases(body, [(("events", 0, "at"), BAD_CARRIER_TIME), (("events", 0, "tracking_number"), BAD_TEXT),
                               (("events", 0, "description"), BAD_TEXT[:-1] + ["x" * 501]),
                               (("events", 0, "status"), BAD_TEXT + BAD_TYPE[:4])])
    assert _run(site, [("POST", "/api/v1/carrier-events", site.carrier_headers, f"carrier-events {p}", {"json": b})
                       for p, b in cases]) > 40


def test_master_data_with_control_characters_is_refused_and_a_barcode_never_keeps_gs(site):
    sku = {"name": "商品", "barcodes": ["6901234000019"]}
    node = support.node_body()
    stock = {"items": [{"location": "A-09-01-1", "sku": "SKU-A", "on_hand": 1}]}
    requests = []
    for p, b in _json_cases(sku, [(("barcodes", 0), BAD_TEXT + ["]C1" + "\x1d" + "6901234000019", "69012340\x1d00019",
                                                             "A\u200bB", "6901234000019\x1d"]),
                                  (("name",), BAD_TEXT + BAD_TYPE[:5]), (("weight_g",), BAD_TYPE[5:])]):
        requests.append(("PUT", "/api/v1/skus/SKU-Z", site.admin_headers, f"skus {p}", {"json": b}))
    for p, b in _json_cases(node, [(("name",), BAD_TEXT), (("daily_capacity",), BAD_TYPE),
                                   (("lat",), BAD_NUMBER)]):
        requests.append(("PUT", "/api/v1/nodes/SH-NEW", site.admin_headers, f"nodes {p}", {"json": b}))
    for p, b in _json_cases(stock, [(("items", 0, "location"), BAD_TEXT), (("items", 0, "sku"), BAD_TEXT),
                                    (("items", 0, "on_hand"), BAD_TYPE)]):
        requests.append(("PUT", "/api/v1/nodes/SH-PD/stock", site.admin_headers, f"stock {p}", {"json": b}))
    assert _run(site, requests) > 80


def test_hostile_paths_and_queries_of_the_api_are_refused(site):
    requests = []
    for value in CONTROLS + LINE_BREAKS + ["x" * 300, "9" * 100_000]:
        q = quote(value, safe="")
        requests += [
            ("GET", f"/api/v1/orders/{q}", site.headers, f"orders/{value[:20]!r}", {}),
            ("POST", f"/api/v1/orders/{q}/cancel", site.headers, f"cancel {value[:20]!r}", {}),
            ("GET", "/api/v1/events", site.headers, f"events after={value[:20]!r}", {"query_string": {"after": value}}),
            ("GET", "/api/v1/reports/sla.csv", site.admin_headers, f"sla.csv node={value[:20]!r}",
             {"query_string": {"node": value}}),
            ("GET", "/api/v1/reports/sla", site.admin_headers, f"sla from={value[:20]!r}",
             {"query_string": {"from": value}}),
        ]
    # Text the limits pass: answered as what it is, never a 5xx.
    for value in ("-1", "9" * 20, "1e9", "１", "2147483648", "9223372036854775808", "../../etc", "ＳＨ－ＰＤ"):
        requests += [
            ("GET", "/api/v1/events", site.headers, f"events after={value}",
             {"query_string": {"after": value}, "refuse": False}),
            ("GET", f"/api/v1/orders/{quote(value, safe='')}", site.headers, f"orders/{value}", {"refuse": False}),
            ("GET", "/api/v1/reports/sla.csv", site.admin_headers, f"sla.csv node={value}",
             {"query_string": {"node": value}, "refuse": False}),
        ]
    assert _run(site, requests) > 80


def test_the_api_refuses_hostile_input_with_the_contract_body_not_a_page(site):
    answer = site.app.test_client().get("/api/v1/orders/A%00B", headers=site.headers)
    assert answer.status_code in (404, 422)
    assert answer.get_json()["error"]["code"] in ("not_found", "invalid_request")


def test_a_lead_screen_query_with_a_line_break_never_reaches_a_header(site):
    answer = site.client("L1").get("/reports/sla.csv", query_string={"node": "SH-PD\r\nSet-Cookie: a=b"})
    assert answer.status_code == 422
    assert not any("a=b" in value for _, value in answer.headers.items())
    answer = site.client("L1").get("/reports/sla.csv", query_string={"node": "SH-PD"})
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"].endswith('-SH-PD.csv"')


__all__ = ["Field", "attack"]
