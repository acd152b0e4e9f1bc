#!/usr/bin/env python
"""Live dashboards benchmark: from a commit to every open lead dashboard's update.

    python bench/live.py                              # 100 dashboards, 30 commits; 1 and 2 workers; the floor
    python bench/live.py --dashboards 20 --commits 10 # a quick look

What one run does:

1. Creates a PostgreSQL database (`--pg-url`, default luyue_bench_live on
   127.0.0.1; dropped at the end), upgrades it to the schema, and loads two
   nodes, a few SKUs with plenty of stock, a lead and a sales channel.
2. For each worker count in `--workers`: starts the production server
   (`luyue serve`, gunicorn gthread, `--threads` per worker) on a free
   127.0.0.1 port, logs the lead in, and opens `--dashboards` websockets on
   /lead/live (gunicorn spreads them over the workers), each read by its own
   thread that stamps every message's arrival.
3. Commits `--commits` orders (after `--warmup` unmeasured ones), one every `--interval` seconds, from this
   process through the pipeline (`intake.submit` in a transaction), so the
   server hears of them through PostgreSQL NOTIFY as it would of another
   server's commits. The clock starts when the commit returns; a
   dashboard's delay for a commit is the arrival of its first message whose
   seq (`#lead-seq`) reaches the commit's.
4. The floor: a bare flask-sock app on the same gunicorn settings (one
   worker) where an HTTP POST wakes every open socket through one
   threading.Condition and each sends a message of the dashboards' mean
   size: no database, no rendering. The clock starts when the POST is sent
   (the sockets may well send before its answer is back).
5. Prints p50, p90, p99 and the maximum over every (commit, dashboard) pair,
   and how many never arrived (within `--timeout`).

Everything stays on 127.0.0.1 and stops after a bounded number of commits.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
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

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/luyue_bench_live"
SEQ = re.compile(r'id="lead-seq" data-seq="(\d+)"')
SECRET = secrets.token_urlsafe(32)  # serve refuses a weak key


# --- the floor: bare flask-sock fan-out -------------------------------------------------------------------------

def echo_app():
    """One Condition, a counter and a payload: POST /publish?n=N wakes every
    socket on /watch, which sends `N payload`."""
    from flask import Flask, request
    from flask_sock import Sock

    app = Flask(__name__)
    sock = Sock(app)
    cond = threading.Condition()
    state = {"n": 0, "payload": ""}

    @app.post("/publish")
    def publish():
        with cond:
            state["n"] = int(request.args["n"])
            state["payload"] = "x" * int(request.args.get("size", "0"))
            cond.notify_all()
        return "", 204

    @app.get("/ready")
    def ready():
        return "ok"

    @sock.route("/watch")
    def watch(ws):
        seen = state["n"]
        ws.send(f"{seen} ")
        while ws.connected:
            with cond:
                cond.wait_for(lambda: state["n"] > seen, 2.0)
                n, payload = state["n"], state["payload"]
            if n > seen:
                ws.send(f"{n} {payload}")
                seen = n

    return app


def serve_echo(port: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    class Echo(BaseApplication):
        def load_config(self):
            for key, value in {"bind": f"127.0.0.1:{port}", "workers": 1, "threads": threads,
                               "worker_class": "gthread", "timeout": 60, "graceful_timeout": 2,
                               "accesslog": None}.items():
                self.cfg.set(key, value)

        def load(self):
            return echo_app()

    Echo().run()


# --- measuring --------------------------------------------------------------------------------------------------

@dataclass
class Dashboard:
    ws: object
    arrivals: list[tuple[float, int, int]] = field(default_factory=list)  # (time, seq, length)
    thread: threading.Thread | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, log: Path, seconds: float = 30) -> None:
    import requests
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"server did not start:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def open_dashboards(url: str, n: int, headers: dict[str, str], parse) -> list[Dashboard]:
    import simple_websocket

    class Client(simple_websocket.Client):
        # Its handshake reads the answer only; a message in the same read
        # would wait, unseen, for more data. Take it at once.
        def handshake(self):
            super().handshake()
            self.connected = self._handle_events()

    boards = []
    for _ in range(n):
        board = Dashboard(Client.connect(url, headers=headers))

        def read(board=board):
            while True:
                try:
                    message = board.ws.receive()
                except simple_websocket.ConnectionClosed:
                    return
                board.arrivals.append((time.perf_counter(), parse(message), len(message)))

        board.thread = threading.Thread(target=read, daemon=True)
        board.thread.start()
        boards.append(board)
    deadline = time.monotonic() + 30
    while any(not b.arrivals for b in boards):  # each has its first, full message
        if time.monotonic() > deadline:
            raise SystemExit("dashboards did not all get their first message")
        time.sleep(0.05)
    return boards


def delays(boards: list[Dashboard], commits: list[tuple[float, int]], timeout: float) -> tuple[list[float], int]:
    """Per (commit, dashboard): the first message at or past the commit's seq."""
    out, missing = [], 0
    for at, seq in commits:
        for board in boards:
            arrival = next((t for t, s, _ in board.arrivals if s >= seq and t >= at), None)
            if arrival is None or arrival - at > timeout:
                missing += 1
            else:
                out.append(arrival - at)
    return out, missing


def summary(name: str, values: list[float], missing: int, size: float | None = None) -> dict:
    values = sorted(values)

    def pct(p: float) -> float:
        return values[min(len(values) - 1, int(p * len(values)))] * 1000 if values else float("nan")

    row = {"name": name, "n": len(values), "missing": missing, "p50": pct(0.50), "p90": pct(0.90),
           "p99": pct(0.99), "max": values[-1] * 1000 if values else float("nan"),
           "mean": statistics.fmean(values) * 1000 if values else float("nan")}
    if size is not None:
        row["bytes"] = size
    print(f"  {name}: n={row['n']} missing={missing} p50 {row['p50']:.1f} ms  p90 {row['p90']:.1f} ms  "
          f"p99 {row['p99']:.1f} ms  max {row['max']:.1f} ms" + (f"  message {size:.0f} B" if size else ""))
    return row


# --- the app ------------------------------------------------------------------------------------------------------

def prepare_database(pg_url: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from app.db import Database, normalise_url
    from app.schema import upgrade

    url = make_url(normalise_url(pg_url))
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    full = url.render_as_string(hide_password=False)
    db = Database(full)
    upgrade(db)
    db.dispose()
    return full


def drop_database(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    u = make_url(url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
    admin.dispose()


def load(app) -> None:
    from sqlalchemy import select
    from werkzeug.security import generate_password_hash

    from app import masterdata
    from app.access import channel_named
    from app.models import Node, User

    db = app.extensions["luyue.db"]
    with db.transaction() as s:
        for code, lat, lon in (("SH-PD", 31.22, 121.54), ("SH-JD", 31.38, 121.25)):
            masterdata.put_node(s, code, masterdata.NodeBody(
                name=code, kind="warehouse", province="上海市", city="上海市", lat=lat, lon=lon,
                daily_capacity=100_000, same_city_radius_km=0, active=True))
        for i in range(5):
            masterdata.put_sku(s, f"SKU-{i}", masterdata.SkuBody(name=f"商品 {i}"))
        pd = s.scalar(select(Node).where(Node.code == "SH-PD"))
        masterdata.count_stock(s, pd, masterdata.StockBody(items=[
            masterdata.StockItem(location=f"A-01-{i + 1:02d}-1", sku=f"SKU-{i}", on_hand=100_000) for i in range(5)]))
        s.add(User(code="L1", name="Lead", role="lead", node_id=pd.id, language="en",
                   pin_hash=generate_password_hash("3333", "pbkdf2:sha256:1000")))
        channel_named(s, "bench")


def commit_orders(app, n: int, interval: float) -> list[tuple[float, int]]:
    """n orders through the pipeline, one every `interval` s: (commit time, last seq)."""
    from sqlalchemy import select

    from app.fulfilment import events, intake
    from app.models import Channel

    db = app.extensions["luyue.db"]
    out = []
    for i in range(n):
        body = {"external_id": f"LIVE-{uuid.uuid4().hex[:12]}", "placed_at": "2026-11-25T10:00:00+08:00",
                "customer": {"name": "王小明", "phone": "13800000000"},
                "ship_to": {"name": "王小明", "phone": "13800000000", "province": "上海市", "city": "上海市",
                            "district": "浦东新区", "line1": "世纪大道100号", "lat": 31.2335, "lon": 121.5055},
                "delivery": "express", "promised_by": "2026-11-26T18:00:00+08:00",
                "lines": [{"sku": f"SKU-{i % 5}", "quantity": 1}]}
        with db.transaction() as s:
            intake.submit(s, s.scalar(select(Channel).where(Channel.name == "bench")), json.dumps(body).encode())
        at = time.perf_counter()
        with db.reading() as s:
            seq = events.last_seq(s)
        out.append((at, seq))
        time.sleep(interval)
    return out


def run_app(args, url: str, workers: int, workdir: Path) -> dict:
    import requests

    from app import create_app

    port = free_port()
    log = workdir / f"serve-{workers}.log"
    env = {**os.environ, "LUYUE_DATABASE_URL": url, "LUYUE_SECRET_KEY": SECRET, "LUYUE_WEBHOOK_POLL_SECONDS": "60"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers",
                                 str(workers), "--threads", str(args.threads)], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        wait_up(f"http://127.0.0.1:{port}/login", proc, log)
        http = requests.Session()
        assert http.post(f"http://127.0.0.1:{port}/login/pin", data={"badge": "L1", "pin": "3333"},
                         allow_redirects=False).status_code == 302
        cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
        boards = open_dashboards(f"ws://127.0.0.1:{port}/lead/live", args.dashboards, {"Cookie": cookie},
                                 lambda m: int(SEQ.search(m).group(1)))
        app = create_app({"database_url": url, "secret_key": SECRET})
        time.sleep(0.5)
        commit_orders(app, args.warmup, args.interval)
        commits = commit_orders(app, args.commits, args.interval)
        time.sleep(min(args.timeout, 2.0))
        for b in boards:
            b.ws.close()
        app.extensions["luyue.db"].dispose()
        values, missing = delays(boards, commits, args.timeout)
        sizes = [length for b in boards for _, _, length in b.arrivals[1:]]
        return summary(f"luyue serve, {workers} worker{'s' if workers > 1 else ''} x {args.threads} threads",
                       values, missing, statistics.fmean(sizes) if sizes else 0)
    finally:
        stop(proc)


def run_floor(args, size: int, workdir: Path) -> dict:
    import requests

    port = free_port()
    log = workdir / "echo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, __file__, "--serve-echo", str(port), "--threads", str(args.threads)],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_up(f"http://127.0.0.1:{port}/ready", proc, log)
        try:
            boards = open_dashboards(f"ws://127.0.0.1:{port}/watch", args.dashboards, {},
                                     lambda m: int(m.split(" ", 1)[0]))
        except SystemExit as e:
            raise SystemExit(f"{e}\n{log.read_text()[-3000:]}") from None
        http = requests.Session()
        commits = []
        for n in range(1, args.warmup + args.commits + 1):
            # Stamped before the POST: sockets may send before its answer is back.
            at = time.perf_counter()
            http.post(f"http://127.0.0.1:{port}/publish", params={"n": n, "size": size})
            if n > args.warmup:
                commits.append((at, n))
            time.sleep(args.interval)
        time.sleep(min(args.timeout, 2.0))
        for b in boards:
            b.ws.close()
        values, missing = delays(boards, commits, args.timeout)
        return summary(f"floor: bare flask-sock fan-out, 1 worker x {args.threads} threads", values, missing, size)
    finally:
        stop(proc)


def markdown(rows: list[dict], args, commit: str) -> str:
    lines = [f"`python bench/live.py --dashboards {args.dashboards} --commits {args.commits} --warmup {args.warmup} "
             f"--interval {args.interval} --threads {args.threads} --workers {args.workers}` at {commit}, "
             f"{os.cpu_count()} cores, load {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end",
             "", "| server | updates | missing | p50 ms | p90 ms | p99 ms | max ms | message B |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['n']} | {r['missing']} | {r['p50']:.1f} | {r['p90']:.1f} | "
                     f"{r['p99']:.1f} | {r['max']:.1f} | {r.get('bytes', 0):.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dashboards", type=int, default=100)
    p.add_argument("--commits", type=int, default=30)
    p.add_argument("--interval", type=float, default=0.3, help="seconds between commits")
    p.add_argument("--warmup", type=int, default=3, help="commits first, not measured")
    p.add_argument("--threads", type=int, default=128, help="gunicorn threads per worker (one per open socket)")
    p.add_argument("--workers", default="1,2", help="worker counts of luyue serve to try")
    p.add_argument("--timeout", type=float, default=10.0, help="a later update counts as missing")
    p.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL database to create, use and drop")
    p.add_argument("--serve-echo", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_echo is not None:
        serve_echo(args.serve_echo, args.threads)
        return 0

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "?"
    url = prepare_database(args.pg_url)
    rows = []
    try:
        from app import create_app
        app = create_app({"database_url": url, "secret_key": SECRET})
        load(app)
        app.extensions["luyue.db"].dispose()
        with tempfile.TemporaryDirectory() as tmp:
            for workers in (int(w) for w in args.workers.split(",")):
                rows.append(run_app(args, url, workers, Path(tmp)))
            rows.append(run_floor(args, int(rows[0].get("bytes") or 0), Path(tmp)))
    finally:
        drop_database(url)
    print()
    print(markdown(rows, args, commit))
    return 0 if all(r["missing"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
