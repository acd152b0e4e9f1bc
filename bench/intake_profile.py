#!/usr/bin/env python
"""Where one order's intake time goes, without HTTP or concurrency.

    python bench/intake_profile.py                      # SQLite, 1000 orders
    python bench/intake_profile.py --backend postgres --orders 500

Loads the same data set as bench/intake.py into a fresh database, then posts
orders one after another through Flask's test client (the whole request:
auth, intake, split, dispatch, reserve, events, the order document) and
reports wall and CPU time per order, SQL statements per order (by kind), and
a cProfile summary. A single thread has no lock waits or GIL handoffs, so
its CPU per order is the least the server can spend on one.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import intake as bench  # noqa: E402  (bench/intake.py)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--orders", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--pg-url", default=bench.DEFAULT_PG_URL.replace("luyue_bench", "luyue_bench_profile"))
    p.add_argument("--top", type=int, default=35)
    p.add_argument("--sort", default="cumulative", choices=["cumulative", "tottime"])
    p.add_argument("--no-profile", action="store_true", help="time only (cProfile roughly doubles the time)")
    p.add_argument("--show-sql", action="store_true", help="print the SQL statements of the last order")
    args = p.parse_args()

    rng = random.Random(20261124)
    nodes = bench.node_specs(rng)
    templates = bench.order_templates(rng, args.orders + args.warmup, nodes)
    tmp = Path(tempfile.mkdtemp(prefix="luyue-profile-"))
    if args.backend == "sqlite":
        url = f"sqlite:///{tmp / 'profile.db'}"
    else:
        import psycopg
        url = args.pg_url
        dbname, admin = url.rsplit("/", 1)[1], url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{dbname}"')
    try:
        token, facts = bench.prepare_database(url, nodes)
        from sqlalchemy import event

        from app import create_app
        app = create_app({"database_url": url})
        import logging
        logging.getLogger().setLevel(logging.WARNING)
        app.logger.setLevel(logging.WARNING)
        db = app.extensions["luyue.db"]
        statements: Counter[str] = Counter()
        counting = [False]
        last: list[str] = []

        def count(conn, cursor, statement, parameters, context, executemany):
            if counting[0]:
                statements[statement.split(None, 1)[0].upper()] += 1
                if args.show_sql:
                    last.append(" ".join(statement.split())[:160] + (" [executemany]" if executemany else ""))

        for engine in {db.engine, db.read_engine}:
            event.listen(engine, "before_cursor_execute", count)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        def post(i: int, t: dict) -> None:
            last.clear()
            body = json.dumps({**t, "external_id": f"P-{i}"}, ensure_ascii=False).encode()
            r = client.post("/api/v1/orders", data=body, headers=headers)
            assert r.status_code == 201, (r.status_code, r.get_data(as_text=True)[:500])

        for i, t in enumerate(templates[:args.warmup]):
            post(i, t)
        counting[0] = True
        profiler = None if args.no_profile else cProfile.Profile()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        for i, t in enumerate(templates[args.warmup:], start=args.warmup):
            post(i, t)
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        n = args.orders
        print(f"{args.backend}: {n} orders, {wall / n * 1000:.2f} ms wall, {cpu / n * 1000:.2f} ms CPU per order"
              + (" (under cProfile)" if profiler else "")
              + f"; {sum(statements.values()) / n:.1f} SQL statements per order "
              + "(" + ", ".join(f"{k} {v / n:.1f}" for k, v in statements.most_common()) + ")")
        if args.show_sql:
            print(f"the last order's {len(last)} statements:")
            for line in last:
                print("  " + line)
        if profiler:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats(args.sort).print_stats(args.top)
            print(out.getvalue())
        db.dispose()
    finally:
        if args.backend == "postgres":
            import psycopg
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
