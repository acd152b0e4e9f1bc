#!/usr/bin/env python
"""Intake benchmark: orders per second through POST /api/v1/orders.

    python bench/intake.py                       # SQLite and PostgreSQL, 20 s each, writes docs/benchmarks.md
    python bench/intake.py --seconds 5 --no-write  # a quick check

What one run does, per backend (SQLite, then PostgreSQL):

1. Creates a fresh database (`app.schema.upgrade`), loads 50 nodes (Shanghai,
   Hangzhou, 15 other cities, with coordinates) through `masterdata.put_node`,
   and 10,000 SKUs plus bins and stock by bulk inserts that keep the
   invariants (Stock.on_hand = sum of BinStock, reserved 0).
2. Starts the production server (`luyue serve`, gunicorn) on 127.0.0.1 and a
   free port, waits until it answers, and drives it with `--clients`
   keep-alive HTTP connections (`http.client`, bodies pre-built) spread over
   `--client-procs` processes: a warm-up, then `--seconds` measured.
   On PostgreSQL each worker count in `--pg-workers` is tried in turn on the
   same database; the best is the headline figure.
3. Verifies: no stock row oversold (reserved <= on_hand), reserved = sum of
   open reservations, on_hand = sum of the bins, orders created = 201s,
   no order left awaiting stock, events gap-free, capacity booked = fulfilments.
4. Measures the floor: the same conditional stock updates
   (`UPDATE stock SET reserved = reserved + q WHERE id = ? AND on_hand - reserved >= q`)
   for the same orders' lines, one committed transaction per order, from as many
   connections as there are clients, through the bare DB-API driver. It runs
   after the checks: the units it reserves have no reservation rows.
5. Prints the figures and appends them, with the machine and the command, to
   docs/benchmarks.md.

Everything targets 127.0.0.1 and is bounded in time. The PostgreSQL database
(`--pg-url`, default luyue_bench on 127.0.0.1) is dropped at the end unless
--keep is given.
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import math
import multiprocessing as mp
import os
import platform
import random
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/luyue_bench"
REPORT = ROOT / "docs" / "benchmarks.md"
EID = "@@EID@@"

# --- the data set --------------------------------------------------------------------------------------------------

N_SKUS = 10_000
N_CATEGORIES = 20            # 500 SKUs each; a node stocks whole categories
WAREHOUSE_CATEGORIES = 6     # contiguous (cyclic) run of categories per warehouse
STORE_CATEGORIES = 2
WAREHOUSE_UNITS = 5_000      # per SKU and node; far more than a run can take
STORE_UNITS = 500
SKUS_PER_BIN = 20
SPLIT_SHARE = 0.15           # orders whose lines no single node holds
LINE_WEIGHTS = {1: 35, 2: 25, 3: 20, 4: 12, 5: 8}   # lines per order; mean 2.33

SHANGHAI = [("浦东新区", 31.2214, 121.5447), ("闵行区", 31.1127, 121.3817), ("嘉定区", 31.3838, 121.2503),
            ("松江区", 31.0322, 121.2277), ("宝山区", 31.4045, 121.4894), ("徐汇区", 31.1884, 121.4365)]
HANGZHOU = [("西湖区", 30.2595, 120.1300), ("余杭区", 30.4210, 120.3004), ("萧山区", 30.1838, 120.2645),
            ("滨江区", 30.2083, 120.2119), ("上城区", 30.2425, 120.1693)]
OTHER = [("江苏省", "南京市", 32.0603, 118.7969), ("江苏省", "苏州市", 31.2990, 120.5853),
         ("浙江省", "宁波市", 29.8683, 121.5440), ("安徽省", "合肥市", 31.8206, 117.2272),
         ("北京市", "北京市", 39.9042, 116.4074), ("广东省", "广州市", 23.1291, 113.2644),
         ("广东省", "深圳市", 22.5431, 114.0579), ("四川省", "成都市", 30.5728, 104.0668),
         ("湖北省", "武汉市", 30.5928, 114.3055), ("山东省", "济南市", 36.6512, 117.1201),
         ("福建省", "厦门市", 24.4798, 118.0894), ("陕西省", "西安市", 34.3416, 108.9398),
         ("天津市", "天津市", 39.3434, 117.3616), ("湖南省", "长沙市", 28.2282, 112.9388),
         ("河南省", "郑州市", 34.7466, 113.6254)]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗"
GIVEN = ["小明", "丽", "伟", "芳", "娜", "秀英", "敏", "静", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟"]


@dataclass
class NodeSpec:
    code: str
    name: str
    kind: str
    province: str
    city: str
    lat: float
    lon: float
    categories: list[int]
    radius_km: float = 0.0


def node_specs(rng: random.Random) -> list[NodeSpec]:
    """50 nodes: Shanghai 4 warehouses + 8 stores, Hangzhou 3 + 5, one warehouse
    and one store in each of 15 other cities. Warehouse categories are a
    cyclic run of 6, store categories a run of 2: categories 6 or more apart
    never share a node, which is how split orders are made."""
    def run(start: int, n: int) -> list[int]:
        return [(start + i) % N_CATEGORIES for i in range(n)]

    def jitter(x: float) -> float:
        return round(x + rng.uniform(-0.03, 0.03), 5)

    nodes: list[NodeSpec] = []
    for i, start in enumerate((0, 5, 10, 15)):
        d, lat, lon = SHANGHAI[i]
        nodes.append(NodeSpec(f"SH-WH-{i + 1:02d}", f"上海{d}仓", "warehouse", "上海市", "上海市",
                              jitter(lat), jitter(lon), run(start, WAREHOUSE_CATEGORIES)))
    for i in range(8):
        d, lat, lon = SHANGHAI[i % len(SHANGHAI)]
        nodes.append(NodeSpec(f"SH-ST-{i + 1:02d}", f"上海{d}门店{i + 1}", "store", "上海市", "上海市",
                              jitter(lat), jitter(lon), run(i * 5 // 2, STORE_CATEGORIES), radius_km=8))
    for i, start in enumerate((2, 9, 16)):
        d, lat, lon = HANGZHOU[i]
        nodes.append(NodeSpec(f"HZ-WH-{i + 1:02d}", f"杭州{d}仓", "warehouse", "浙江省", "杭州市",
                              jitter(lat), jitter(lon), run(start, WAREHOUSE_CATEGORIES)))
    for i in range(5):
        d, lat, lon = HANGZHOU[i]
        nodes.append(NodeSpec(f"HZ-ST-{i + 1:02d}", f"杭州{d}门店", "store", "浙江省", "杭州市",
                              jitter(lat), jitter(lon), run(i * 4, STORE_CATEGORIES), radius_km=8))
    for i, (prov, city, lat, lon) in enumerate(OTHER):
        nodes.append(NodeSpec(f"CN-WH-{i + 1:02d}", f"{city}仓", "warehouse", prov, city,
                              jitter(lat), jitter(lon), run(rng.randrange(N_CATEGORIES), WAREHOUSE_CATEGORIES)))
        nodes.append(NodeSpec(f"CN-ST-{i + 1:02d}", f"{city}门店", "store", prov, city,
                              jitter(lat), jitter(lon), run(rng.randrange(N_CATEGORIES), STORE_CATEGORIES),
                              radius_km=8))
    assert len(nodes) == 50
    return nodes


def sku_code(i: int) -> str:
    return f"SKU-{i:05d}"


def category_skus(c: int) -> range:
    per = N_SKUS // N_CATEGORIES
    return range(c * per, (c + 1) * per)


def ean13(i: int) -> str:
    body = f"690{1234:04d}{i:05d}"  # 12 digits
    total = sum(int(d) * (3 if k % 2 else 1) for k, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def order_templates(rng: random.Random, n: int, nodes: list[NodeSpec]) -> list[dict[str, Any]]:
    """Order bodies with EID in place of the external_id. Mostly one category
    (one node ships it), SPLIT_SHARE across two categories no node holds
    together. Addresses: 45% Shanghai, 25% Hangzhou, the rest elsewhere;
    one in ten without coordinates (distance falls back to city/province)."""
    stocked = {c for nd in nodes for c in nd.categories}
    far_pairs = [(a, b) for a in range(N_CATEGORIES) for b in range(N_CATEGORIES)
                 if a < b and not any(a in nd.categories and b in nd.categories for nd in nodes)]
    assert far_pairs, "no category pair is split across nodes"
    sizes, weights = zip(*LINE_WEIGHTS.items(), strict=True)
    out = []
    for _ in range(n):
        k = rng.choices(sizes, weights)[0]
        if k >= 2 and rng.random() < SPLIT_SHARE / (1 - LINE_WEIGHTS[1] / sum(weights)):
            a, b = rng.choice(far_pairs)
            first = rng.randint(1, k - 1)
            picks = rng.sample(category_skus(a), first) + rng.sample(category_skus(b), k - first)
        else:
            c = rng.choice(sorted(stocked))
            picks = rng.sample(category_skus(c), k)
        r = rng.random()
        if r < 0.45:
            province, city = "上海市", "上海市"
            district, lat, lon = rng.choice(SHANGHAI)
        elif r < 0.70:
            province, city = "浙江省", "杭州市"
            district, lat, lon = rng.choice(HANGZHOU)
        else:
            province, city, lat, lon = rng.choice(OTHER)
            district = "市辖区"
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        phone = f"13{rng.randrange(10**9):09d}"
        ship_to = {"name": name, "phone": phone, "province": province, "city": city, "district": district,
                   "line1": f"{rng.choice(['人民路', '中山路', '解放路', '建设路', '世纪大道'])}{rng.randint(1, 999)}号",
                   "postal_code": f"{rng.randint(100000, 899999)}"}
        if rng.random() >= 0.1:
            ship_to["lat"] = round(lat + rng.uniform(-0.08, 0.08), 5)
            ship_to["lon"] = round(lon + rng.uniform(-0.08, 0.08), 5)
        out.append({
            "external_id": EID,
            "placed_at": "2026-11-24T10:02:00+08:00",
            "customer": {"name": name, "phone": phone},
            "ship_to": ship_to,
            "delivery": "express",
            "promised_by": "2026-11-26T18:00:00+08:00",
            "lines": [{"sku": sku_code(s), "quantity": rng.choice((1, 1, 1, 2, 2, 3))} for s in picks],
        })
    return out


# --- loading ---------------------------------------------------------------------------------------------------------

def prepare_database(url: str, nodes: list[NodeSpec]) -> tuple[str, dict[str, Any]]:
    """Schema, master data and a channel token. Returns (token, facts)."""
    from sqlalchemy import func, insert, select

    from app import masterdata, schema
    from app.access import create_token
    from app.db import Database
    from app.masterdata import walk_position
    from app.models import BinStock, Location, Node, Sku, Stock, utcnow

    started = time.monotonic()
    db = Database(url)
    schema.upgrade(db)
    with db.transaction() as s:
        for nd in nodes:
            body = masterdata.validate(masterdata.NodeBody, {
                "name": nd.name, "kind": nd.kind, "province": nd.province, "city": nd.city, "lat": nd.lat,
                "lon": nd.lon, "daily_capacity": 10_000_000, "same_city_radius_km": nd.radius_km, "active": True})
            masterdata.put_node(s, nd.code, body)
        token = create_token(s, "bench")
    now = utcnow()
    with db.transaction() as s:
        s.execute(insert(Sku), [{"code": sku_code(i), "name": f"商品 {i:05d}", "weight_g": 100 + i % 900,
                                 "presale": False, "updated_at": now} for i in range(N_SKUS)])
        from app.models import Barcode
        sku_ids = dict(s.execute(select(Sku.code, Sku.id)).all())
        s.execute(insert(Barcode), [{"code": ean13(i), "sku_id": sku_ids[sku_code(i)]} for i in range(N_SKUS)])
        node_ids = dict(s.execute(select(Node.code, Node.id)).all())
        loc_rows = []
        for nd in nodes:
            n_bins = math.ceil(len(nd.categories) * (N_SKUS // N_CATEGORIES) / SKUS_PER_BIN)
            for b in range(n_bins):
                code = f"A-{b // 40 + 1:02d}-{b % 40 // 4 + 1:02d}-{b % 4 + 1}"
                aisle, seq = walk_position(code)
                loc_rows.append({"node_id": node_ids[nd.code], "code": code, "aisle": aisle, "walk_seq": seq})
        s.execute(insert(Location), loc_rows)
        loc_ids = {(n, c): i for i, n, c in s.execute(select(Location.id, Location.node_id, Location.code))}
        bins, stock = [], []
        for nd in nodes:
            nid = node_ids[nd.code]
            units = WAREHOUSE_UNITS if nd.kind == "warehouse" else STORE_UNITS
            skus = [i for c in nd.categories for i in category_skus(c)]
            for k, i in enumerate(skus):
                b = k // SKUS_PER_BIN
                code = f"A-{b // 40 + 1:02d}-{b % 40 // 4 + 1:02d}-{b % 4 + 1}"
                sid = sku_ids[sku_code(i)]
                bins.append({"location_id": loc_ids[(nid, code)], "sku_id": sid, "on_hand": units})
                stock.append({"node_id": nid, "sku_id": sid, "on_hand": units, "reserved": 0})
        s.execute(insert(BinStock), bins)
        s.execute(insert(Stock), stock)
    with db.reading() as s:
        facts = {"nodes": s.scalar(select(func.count()).select_from(Node)),
                 "skus": s.scalar(select(func.count()).select_from(Sku)),
                 "stock_rows": s.scalar(select(func.count()).select_from(Stock)),
                 "load_seconds": round(time.monotonic() - started, 1)}
        stock_by_sku: dict[str, list[int]] = {}
        code_of = {v: k for k, v in sku_ids.items()}
        for sid, sku_id in s.execute(select(Stock.id, Stock.sku_id)):
            stock_by_sku.setdefault(code_of[sku_id], []).append(sid)
    if db.dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
    db.dispose()
    facts["stock_by_sku"] = stock_by_sku
    return token, facts


# --- the server --------------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`luyue serve` in its own process group; stopped by its pid."""

    def __init__(self, url: str, workers: int, threads: int, log: Path):
        self.port = free_port()
        self.workers, self.threads = workers, threads
        self.log_path = log
        # The app measured is the one next to this bench/ (first on the path,
        # ahead of wherever luyue is installed from).
        env = dict(os.environ, LUYUE_DATABASE_URL=url,
                   PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(workers), "--threads", str(threads)],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, token: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}); log:\n{self.tail()}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/api/v1/events?limit=1", headers={"Authorization": f"Bearer {token}"})
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    # Give the other workers a moment to boot; `luyue serve`
                    # may also run fewer than asked (one on SQLite).
                    until = time.monotonic() + 5
                    while len(self.worker_pids()) < self.workers and time.monotonic() < until:
                        time.sleep(0.2)
                    self.workers = len(self.worker_pids())
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout} s; log:\n{self.tail()}")

    def worker_pids(self) -> list[int]:
        try:
            return [int(p) for p in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()]
        except OSError:
            return []

    def cpu_seconds(self) -> float:
        return sum(proc_cpu(p) for p in [self.proc.pid, *self.worker_pids()])

    def tail(self, n: int = 40) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # gunicorn's arbiter stops its workers
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # our own session, started above
                self.proc.wait(10)
        self.log.close()


def proc_cpu(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all processes, all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def pg_waits(url: str, dbname: str, until: float, every: float = 0.1) -> dict[str, float]:
    """What the backends serving `dbname` are doing, sampled until `until`:
    average number of backends per state / wait event."""
    import psycopg
    seen: dict[str, int] = {}
    n = 0
    with psycopg.connect(url, autocommit=True) as c:
        while time.monotonic() < until:
            n += 1
            for state, wtype, wevent, query, k in c.execute(
                    "SELECT state, wait_event_type, wait_event, "
                    "CASE WHEN wait_event_type = 'Lock' THEN left(regexp_replace(query, '\\s+', ' ', 'g'), 24) END, "
                    "count(*) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid() GROUP BY 1, 2, 3, 4", (dbname,)):
                if state != "active":
                    key = state
                elif not wtype:
                    key = "active: running"
                else:
                    key = f"active: {wtype}/{wevent}" + (f" in '{query}…'" if query else "")
                seen[key] = seen.get(key, 0) + k
            time.sleep(every)
    return {k: v / max(n, 1) for k, v in sorted(seen.items(), key=lambda kv: -kv[1])}


def pg_backend_cpu(url: str, dbname: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving `dbname`."""
    import psycopg
    with psycopg.connect(url, autocommit=True) as c:
        pids = [r[0] for r in c.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                                        (dbname,))]
    return sum(proc_cpu(p) for p in pids)


# --- the clients ---------------------------------------------------------------------------------------------------------

def client_process(port: int, token: str, templates: list[tuple[bytes, bytes]], prefix: str, proc_no: int,
                   n_threads: int, warmup: float, seconds: float, ready: Any, start: Any, results: Any) -> None:
    """n_threads keep-alive connections, each posting orders back to back."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    path = "/api/v1/orders"
    out: list[list[tuple[float, float, int]]] = [[] for _ in range(n_threads)]
    t0_box: list[float] = []
    go = threading.Event()

    def run(t: int) -> None:
        rng = random.Random(proc_no * 1000 + t)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        go.wait()
        end = t0_box[0] + warmup + seconds
        rec = out[t].append
        clock = time.monotonic
        i = 0
        while True:
            now = clock()
            if now >= end:
                break
            head, tail = templates[rng.randrange(len(templates))]
            body = head + f"{prefix}-{proc_no}-{t}-{i}".encode() + tail
            i += 1
            try:
                conn.request("POST", path, body, headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
                if resp.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException):
                status = -1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            rec((now, clock(), status))
        conn.close()

    threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(n_threads)]
    for th in threads:
        th.start()
    cpu0 = time.process_time()
    ready.put(proc_no)
    t0_box.append(start.get())
    go.set()
    for th in threads:
        th.join()
    results.put((proc_no, [r for rows in out for r in rows], time.process_time() - cpu0))


@dataclass
class LoadResult:
    window: float
    ok_in_window: int
    created_total: int
    statuses: dict[int, int]
    latencies_ms: list[float]
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.ok_in_window / self.window

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s not in (201,))


def drive(port: int, token: str, templates: list[tuple[bytes, bytes]], prefix: str, clients: int, procs: int,
          warmup: float, seconds: float, on_window: Any = None) -> LoadResult:
    ctx = mp.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    starts = [ctx.Queue() for _ in range(procs)]
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    ps = [ctx.Process(target=client_process, args=(port, token, templates, prefix, i, per[i], warmup, seconds,
                                                    ready, starts[i], results), daemon=True)
          for i in range(procs) if per[i]]
    for p in ps:
        p.start()
    for _ in ps:
        ready.get(timeout=60)
    t0 = time.monotonic() + 0.2
    for q in starts[:len(ps)]:
        q.put(t0)
    w0, w1 = t0 + warmup, t0 + warmup + seconds
    if on_window is not None:
        on_window(w0, w1)
    rows: list[tuple[float, float, int]] = []
    cpu = 0.0
    for _ in ps:
        _, r, c = results.get(timeout=warmup + seconds + 120)
        rows += r
        cpu += c
    for p in ps:
        p.join(10)
    statuses: dict[int, int] = {}
    for _, _, s in rows:
        statuses[s] = statuses.get(s, 0) + 1
    window = [(a, b, s) for a, b, s in rows if w0 <= b <= w1]
    ok = [(b - a) * 1000 for a, b, s in window if s == 201]
    return LoadResult(seconds, len(ok), statuses.get(201, 0), statuses, ok, cpu)


# --- the floor ---------------------------------------------------------------------------------------------------------

def floor_process(kind: str, target: str, txns: list[list[tuple[int, int]]], proc_no: int, n_threads: int,
                  seconds: float, ready: Any, start: Any, results: Any) -> None:
    """n_threads connections, each committing one transaction of conditional
    updates per order, back to back."""
    counts = [0] * n_threads
    refused = [0] * n_threads
    go = threading.Event()
    t0_box: list[float] = []

    def run(t: int) -> None:
        rng = random.Random(proc_no * 1000 + t)
        if kind == "sqlite":
            import sqlite3
            conn = sqlite3.connect(target, timeout=30, isolation_level=None, check_same_thread=False)
            for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL", "busy_timeout=30000"):
                conn.execute(f"PRAGMA {pragma}")
            sql = "UPDATE stock SET reserved = reserved + ? WHERE id = ? AND on_hand - reserved >= ?"
            begin, cur = "BEGIN IMMEDIATE", conn.cursor()
        else:
            import psycopg
            conn = psycopg.connect(target)
            sql = "UPDATE stock SET reserved = reserved + %s WHERE id = %s AND on_hand - reserved >= %s"
            begin, cur = None, conn.cursor()
        go.wait()
        end = t0_box[0] + seconds
        n = bad = 0
        while time.monotonic() < end:
            lines = txns[rng.randrange(len(txns))]
            if begin:
                cur.execute(begin)
            for stock_id, q in lines:
                cur.execute(sql, (q, stock_id, q))
                if cur.rowcount != 1:
                    bad += 1
            if begin:
                cur.execute("COMMIT")
            else:
                conn.commit()
            n += 1
        counts[t], refused[t] = n, bad
        conn.close()

    threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(n_threads)]
    for th in threads:
        th.start()
    time.sleep(0.5)  # connections open
    ready.put(proc_no)
    t0_box.append(start.get())
    go.set()
    for th in threads:
        th.join()
    results.put((proc_no, sum(counts), sum(refused)))


def measure_floor(kind: str, target: str, txns: list[list[tuple[int, int]]], connections: int, procs: int,
                  seconds: float) -> tuple[float, int]:
    ctx = mp.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    per = [connections // procs + (1 if i < connections % procs else 0) for i in range(procs)]
    per = [p for p in per if p]
    starts = [ctx.Queue() for _ in per]
    ps = [ctx.Process(target=floor_process, args=(kind, target, txns, i, n, seconds, ready, starts[i], results),
                      daemon=True) for i, n in enumerate(per)]
    for p in ps:
        p.start()
    for _ in ps:
        ready.get(timeout=60)
    t0 = time.monotonic() + 0.2
    for q in starts:
        q.put(t0)
    total = refused = 0
    for _ in ps:
        _, n, bad = results.get(timeout=seconds + 120)
        total += n
        refused += bad
    for p in ps:
        p.join(10)
    return total / seconds, refused


# --- checks ---------------------------------------------------------------------------------------------------------

def verify(url: str, prefix: str, created_201: int) -> dict[str, Any]:
    """The invariants after a run; each value is what was found, `ok` says whether all hold."""
    from sqlalchemy import text

    from app.db import Database
    db = Database(url)
    q = {
        "oversold_rows": "SELECT count(*) FROM stock WHERE reserved > on_hand OR reserved < 0",
        "reserved_not_sum_of_open": """
            SELECT count(*) FROM stock s LEFT JOIN (
                SELECT stock_id, sum(quantity) AS q FROM reservations WHERE state = 'open' GROUP BY stock_id
            ) r ON r.stock_id = s.id WHERE s.reserved <> coalesce(r.q, 0)""",
        "on_hand_not_sum_of_bins": """
            SELECT count(*) FROM stock s LEFT JOIN (
                SELECT l.node_id, b.sku_id, sum(b.on_hand) AS q FROM bin_stock b
                JOIN locations l ON l.id = b.location_id GROUP BY l.node_id, b.sku_id
            ) t ON t.node_id = s.node_id AND t.sku_id = s.sku_id WHERE s.on_hand <> coalesce(t.q, 0)""",
        "orders_created": "SELECT count(*) FROM orders WHERE external_id LIKE :p",
        "orders_split": """
            SELECT count(*) FROM (SELECT o.id FROM orders o JOIN fulfilments f ON f.order_id = o.id
            WHERE o.external_id LIKE :p GROUP BY o.id HAVING count(*) > 1) x""",
        "fulfilments_awaiting_stock": "SELECT count(*) FROM fulfilments WHERE status = 'awaiting_stock'",
        "orders_not_in_fulfilment": "SELECT count(*) FROM orders WHERE external_id LIKE :p AND status <> 'in_fulfilment'",
        "event_seq_gaps": """SELECT (SELECT last_seq FROM event_counter WHERE id = 1) - count(*)
                             + (SELECT coalesce(max(seq), 0) FROM events) - count(*) FROM events""",
        "capacity_not_fulfilments": """
            SELECT (SELECT coalesce(sum(booked), 0) FROM node_days)
                 - (SELECT count(*) FROM fulfilments WHERE node_id IS NOT NULL)""",
    }
    found: dict[str, Any] = {}
    with db.reading() as s:
        for name, sql in q.items():
            found[name] = s.execute(text(sql), {"p": prefix + "-%"}).scalar_one()
    db.dispose()
    found["created_201"] = created_201
    zero = ["oversold_rows", "reserved_not_sum_of_open", "on_hand_not_sum_of_bins", "fulfilments_awaiting_stock",
            "orders_not_in_fulfilment", "event_seq_gaps", "capacity_not_fulfilments"]
    found["ok"] = all(found[k] == 0 for k in zero) and found["orders_created"] == created_201
    return found


# --- one backend ----------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    backend: str
    workers: int
    threads: int
    load: LoadResult
    server_cpu: float
    db_cpu: float | None
    machine_cpu: float
    waits: dict[str, float]
    checks: dict[str, Any]
    best: bool = False
    others: float = 0.0  # CPU seconds used in the window by processes that are not this benchmark


@dataclass
class BackendReport:
    backend: str
    outcomes: list[Outcome] = field(default_factory=list)
    floor: float = 0.0
    floor_refused: int = 0
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> Outcome:
        return max(self.outcomes, key=lambda o: o.load.rate)


def measure_server(backend: str, url: str, token: str, templates: list[tuple[bytes, bytes]], workers: int,
                   threads: int, args: argparse.Namespace, workdir: Path) -> Outcome:
    """One server configuration: start it, load it, sample it, stop it, check the data."""
    dbname = url.rsplit("/", 1)[1] if backend == "postgres" else ""
    admin_url = url.rsplit("/", 1)[0] + "/postgres" if backend == "postgres" else ""
    prefix = f"B{uuid.uuid4().hex[:8]}"
    marks: dict[str, float] = {}
    waits: dict[str, float] = {}
    profilers: list[subprocess.Popen] = []
    samplers: list[threading.Thread] = []
    server = Server(url, workers, threads, workdir / f"server-{backend}-w{workers}.log")

    def sample(w0: float, w1: float) -> None:
        # CPU at the window's edges; PostgreSQL's waits through it.
        time.sleep(max(0.0, w0 - time.monotonic()))
        marks["s0"], marks["m0"] = server.cpu_seconds(), machine_busy()
        if backend == "postgres":
            marks["d0"] = pg_backend_cpu(admin_url, dbname)
        if args.profile:
            for pid in server.worker_pids():
                out = Path(args.profile) / f"{backend}-w{workers}-{pid}"
                profilers.append(subprocess.Popen(
                    ["py-spy", "record", "--pid", str(pid), "--duration", str(int(args.seconds)),
                     "--rate", "200", "--format", "raw", "--output", f"{out}.txt",
                     *(["--gil"] if args.profile_gil else [])],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if backend == "postgres":
            waits.update(pg_waits(admin_url, dbname, w1 - 0.3))
        time.sleep(max(0.0, w1 - time.monotonic()))
        marks["s1"], marks["m1"] = server.cpu_seconds(), machine_busy()
        if backend == "postgres":
            marks["d1"] = pg_backend_cpu(admin_url, dbname)

    def on_window(w0: float, w1: float) -> None:
        samplers.append(threading.Thread(target=sample, args=(w0, w1), daemon=True))
        samplers[-1].start()

    try:
        server.wait_ready(token)
        print(f"   {backend} workers={workers} threads={threads} clients={args.clients}: "
              f"{args.warmup:g} s warm-up + {args.seconds:g} s", flush=True)
        load = drive(server.port, token, templates, prefix, args.clients, args.client_procs,
                     args.warmup, args.seconds, on_window)
        for th in samplers:
            th.join(10)
        for p in profilers:
            p.wait(30)
    finally:
        server.stop()
    checks = verify(url, prefix, load.created_total)
    out = Outcome(backend, server.workers, threads, load, marks.get("s1", 0) - marks.get("s0", 0),
                  (marks["d1"] - marks["d0"]) if "d1" in marks else None,
                  marks.get("m1", 0) - marks.get("m0", 0), waits, checks)
    n = max(load.ok_in_window, 1)
    print(f"   {load.rate:7.1f} orders/s  p50 {load.percentile(50):6.1f} ms  p99 {load.percentile(99):6.1f} ms  "
          f"errors {load.errors}  statuses {load.statuses}", flush=True)
    print(f"   server CPU {out.server_cpu / n * 1000:.2f} ms/order"
          + (f", PostgreSQL CPU {out.db_cpu / n * 1000:.2f} ms/order" if out.db_cpu is not None else "")
          + f", client CPU {load.client_cpu / max(load.created_total, 1) * 1000:.2f} ms/order", flush=True)
    client_window = load.client_cpu * args.seconds / (args.seconds + args.warmup)
    out.others = out.machine_cpu - out.server_cpu - (out.db_cpu or 0) - client_window
    print(f"   machine busy {out.machine_cpu / args.seconds:.2f} of {os.cpu_count()} cores: "
          f"server {out.server_cpu / args.seconds:.2f}, database {(out.db_cpu or 0) / args.seconds:.2f}, "
          f"clients {client_window / args.seconds:.2f}, everything else {out.others / args.seconds:.2f}", flush=True)
    if waits:
        print("   PostgreSQL backends (average count): "
              + ", ".join(f"{k} {v:.1f}" for k, v in waits.items()), flush=True)
    print(f"   checks: {'OK' if checks['ok'] else 'FAILED'} {checks}", flush=True)
    if load.errors:
        print(server.tail(), flush=True)
    return out



def run_backend(backend: str, url: str, args: argparse.Namespace, nodes: list[NodeSpec],
                raw_templates: list[dict[str, Any]], workdir: Path) -> BackendReport:
    print(f"\n== {backend}: loading 50 nodes, {N_SKUS} SKUs, stock", flush=True)
    token, facts = prepare_database(url, nodes)
    stock_by_sku = facts.pop("stock_by_sku")
    print(f"   {facts['stock_rows']} stock rows in {facts['load_seconds']} s", flush=True)
    report = BackendReport(backend, facts=facts)
    templates = []
    for t in raw_templates:
        head, tail = json.dumps(t, ensure_ascii=False, separators=(",", ":")).encode().split(EID.encode())
        templates.append((head, tail))

    configs = ([(w, args.sqlite_threads) for w in args.sqlite_workers] if backend == "sqlite"
               else [(w, args.pg_threads) for w in args.pg_workers])
    for workers, threads in configs:
        report.outcomes.append(measure_server(backend, url, token, templates, workers, threads, args, workdir))
    report.best.best = True

    # The floor: the same orders' lines, each SKU at one node that stocks it.
    rng = random.Random(7)
    txns = [sorted((rng.choice(stock_by_sku[line["sku"]]), line["quantity"]) for line in t["lines"])
            for t in raw_templates]
    target = url.replace("sqlite:///", "", 1) if backend == "sqlite" else url
    print(f"   floor: {args.clients} connections, {args.floor_seconds:g} s, "
          f"{statistics.mean(len(t) for t in txns):.2f} updates per transaction", flush=True)
    report.floor, report.floor_refused = measure_floor(backend, target, txns, args.clients, args.client_procs,
                                                       args.floor_seconds)
    print(f"   floor {report.floor:.0f} orders/s (refused updates: {report.floor_refused}); "
          f"ratio {report.best.load.rate / report.floor:.1%}", flush=True)
    return report


# --- reporting ------------------------------------------------------------------------------------------------------

def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GB"
    except (OSError, ValueError, IndexError):
        pass
    return {"nproc": str(os.cpu_count()), "cpu": model, "memory": mem, "python": platform.python_version(),
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def git_commit() -> str:
    """The commit measured, and whether the app's code differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "app"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
        return head + (" with uncommitted changes in app/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def pg_settings(url: str) -> str:
    import psycopg
    try:
        with psycopg.connect(url, autocommit=True) as c:
            version = c.execute("SHOW server_version").fetchone()[0]
            rows = c.execute("SELECT name, setting FROM pg_settings WHERE name IN "
                             "('fsync', 'synchronous_commit', 'shared_buffers', 'max_connections')").fetchall()
        return f"PostgreSQL {version} (" + ", ".join(f"{n}={v}" for n, v in rows) + ")"
    except Exception as e:  # noqa: BLE001 - informational only
        return f"PostgreSQL ({e})"


def render(reports: list[BackendReport], args: argparse.Namespace, m: dict[str, str], started: dt.datetime,
           command: str, pg_info: str) -> str:
    date = started.strftime("%Y-%m-%d %H:%M %z")
    lines = [f"### {date} (commit {git_commit()})", ""]
    lines.append(f"Machine: {m['nproc']} × {m['cpu']}, {m['memory']}, Python {m['python']}; "
                 f"load average at start {m['load']}." + (f" {args.note}" if args.note else ""))
    if pg_info:
        lines.append(f"Database: SQLite (WAL, synchronous=NORMAL) and {pg_info}.")
    lines += ["", "```", command, "```", ""]
    lines.append("| date | machine | backend | workers × threads | clients | orders/s | p50 ms | p99 ms | errors "
                 "| floor orders/s | ratio | server CPU ms/order | DB CPU ms/order | other load (cores) |")
    lines.append("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in reports:
        for o in r.outcomes:
            n = max(o.load.ok_in_window, 1)
            mark = " (best)" if o.best and len(r.outcomes) > 1 else ""
            lines.append(
                f"| {started:%Y-%m-%d} | {m['nproc']} × {m['cpu']} | {r.backend} | {o.workers} × {o.threads}{mark} "
                f"| {args.clients} | {o.load.rate:.0f} | {o.load.percentile(50):.1f} | {o.load.percentile(99):.1f} "
                f"| {o.load.errors} | {r.floor:.0f} | {o.load.rate / r.floor:.1%} "
                f"| {o.server_cpu / n * 1000:.2f} | {'' if o.db_cpu is None else f'{o.db_cpu / n * 1000:.2f}'} "
                f"| {o.others / args.seconds:.2f} |")
    lines.append("")
    for r in reports:
        b = r.best
        c = b.checks
        aim = []
        if r.backend == "sqlite":
            aim.append(f"≥ 500 orders/s: {'met' if b.load.rate >= 500 else 'not met'}")
        aim.append(f"≥ 25% of floor: {'met' if b.load.rate >= 0.25 * r.floor else 'not met'}")
        lines.append(f"- {r.backend}: {'; '.join(aim)}. Checks after each run "
                     f"{'passed' if all(o.checks['ok'] for o in r.outcomes) else 'FAILED'} "
                     f"(best run: {c['orders_created']} orders created = {c['created_201']} × 201, "
                     f"{c['orders_split']} split across nodes, oversold rows {c['oversold_rows']}, "
                     f"reserved ≠ open reservations {c['reserved_not_sum_of_open']}, "
                     f"awaiting stock {c['fulfilments_awaiting_stock']}, event seq gaps {c['event_seq_gaps']}). "
                     f"Floor: {r.floor_refused} refused updates.")
    lines.append("")
    return "\n".join(lines)


REPORT_HEAD = """# Benchmarks

Results of `python bench/intake.py`; newest last. See the top of
`bench/intake.py` for what a run does, and the notes below for how to read it.
"""


def write_report(path: Path, section: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.exists() else REPORT_HEAD
    marker = "<!-- runs: bench/intake.py appends below -->"
    if marker not in text:
        text = text.rstrip() + "\n\n## Runs\n\n" + marker + "\n"
    path.write_text(text.rstrip() + "\n\n" + section.rstrip() + "\n")


# --- main ---------------------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=20, help="measured seconds per server configuration")
    p.add_argument("--warmup", type=float, default=3, help="unmeasured seconds of load first")
    p.add_argument("--floor-seconds", type=float, default=None, help="seconds of the floor loop (default: --seconds)")
    p.add_argument("--clients", type=int, default=16, help="concurrent keep-alive HTTP clients (and floor connections)")
    p.add_argument("--client-procs", type=int, default=2, help="processes the clients are spread over")
    p.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    p.add_argument("--sqlite-threads", type=int, default=4, help="gunicorn threads of the SQLite worker")
    p.add_argument("--sqlite-workers", default="1",
                   help="gunicorn worker counts to try on SQLite (luyue serve runs one; more is an experiment)")
    p.add_argument("--pg-workers", default="2,3,4", help="gunicorn worker counts to try on PostgreSQL")
    p.add_argument("--pg-threads", type=int, default=4, help="gunicorn threads per PostgreSQL worker")
    p.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL database to create, use and drop")
    p.add_argument("--workdir", default=None, help="where the SQLite file and server logs go (default: a temp dir)")
    p.add_argument("--templates", type=int, default=5000, help="distinct order bodies (external_ids are always new)")
    p.add_argument("--profile", default=None, metavar="DIR",
                   help="record each server worker with py-spy (raw collapsed stacks) during the window; "
                        "profiled figures are slower and not for the report")
    p.add_argument("--profile-gil", action="store_true",
                   help="with --profile: sample only the thread holding the GIL (where CPU goes, not waits)")
    p.add_argument("--keep", action="store_true", help="keep the PostgreSQL database and the work dir")
    p.add_argument("--no-write", action="store_true", help="print only; do not append to docs/benchmarks.md")
    p.add_argument("--report", default=str(REPORT), help="the Markdown file results are appended to")
    p.add_argument("--note", default="", help="a sentence added to the report (e.g. 'machine shared with test runs')")
    p.add_argument("--seed", type=int, default=20261124)
    args = p.parse_args(argv)
    args.pg_workers = [int(w) for w in str(args.pg_workers).split(",") if w]
    args.sqlite_workers = [int(w) for w in str(args.sqlite_workers).split(",") if w]
    args.floor_seconds = args.floor_seconds or args.seconds
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in backends:
        if b not in ("sqlite", "postgres"):
            p.error(f"unknown backend {b!r}")
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)

    command = "python bench/intake.py" + "".join(f" {shlex.quote(a)}" for a in (argv if argv is not None else sys.argv[1:]))
    started = dt.datetime.now().astimezone()
    m = machine()
    rng = random.Random(args.seed)
    nodes = node_specs(rng)
    raw_templates = order_templates(rng, args.templates, nodes)
    mean_lines = statistics.mean(len(t["lines"]) for t in raw_templates)
    print(f"{m['nproc']} × {m['cpu']}, load {m['load']}; {len(raw_templates)} order bodies, "
          f"{mean_lines:.2f} lines on average", flush=True)

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="luyue-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    reports: list[BackendReport] = []
    pg_info = ""
    try:
        for backend in backends:
            if backend == "sqlite":
                db_file = workdir / "bench.db"
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db_file}{suffix}").unlink(missing_ok=True)
                reports.append(run_backend("sqlite", f"sqlite:///{db_file}", args, nodes, raw_templates, workdir))
            else:
                import psycopg
                dbname = args.pg_url.rsplit("/", 1)[1]
                admin = args.pg_url.rsplit("/", 1)[0] + "/postgres"
                pg_info = pg_settings(admin)
                with psycopg.connect(admin, autocommit=True) as c:
                    c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
                    c.execute(f'CREATE DATABASE "{dbname}"')
                try:
                    reports.append(run_backend("postgres", args.pg_url, args, nodes, raw_templates, workdir))
                finally:
                    if not args.keep:
                        with psycopg.connect(admin, autocommit=True) as c:
                            c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        elif args.keep:
            print(f"kept {workdir}", flush=True)

    section = render(reports, args, m, started, command, pg_info)
    print("\n" + section)
    if not args.no_write:
        write_report(Path(args.report), section)
        print(f"appended to {args.report}")
    return 0 if all(o.checks["ok"] for r in reports for o in r.outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
