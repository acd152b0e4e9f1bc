#!/usr/bin/env python
"""Summarise py-spy raw (collapsed) stacks: where the server's time goes.

    python bench/intake.py --backends sqlite --seconds 10 --profile /tmp/prof --no-write
    python bench/profile_summary.py /tmp/prof/sqlite-w1-*.txt

Prints the share of samples per function, inclusive (anywhere on the stack)
and self (the innermost frame), plus the share spent under a few named
areas of the code (see AREAS), so hotspots can be compared between runs.
"""
from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# Named areas, most specific first: each sample counts for the first area
# whose pattern matches anywhere on its stack, so the shares add up to 100%.
AREAS = [
    ("auth: token lookup (own read transaction)", r"api\.py:authenticate"),
    ("response: order document (own read transaction)", r"api\.py:_document|api\.py:order_document"),
    ("response: jsonify", r"flask/json/|api\.py:jsonify|flask/json"),
    ("intake: parse + validate (json, pydantic)", r"intake\.py:parse"),
    ("intake: payload digest", r"intake\.py:digest"),
    ("dispatch: load_candidates (nodes, capacity, stock)", r"dispatch\.py:load_candidates"),
    ("dispatch: make_plan", r"dispatch\.py:make_plan"),
    ("dispatch: _reason (candidate scores)", r"dispatch\.py:_reason"),
    ("dispatch: _hold (savepoint, capacity, stock updates)", r"dispatch\.py:_hold"),
    ("commit: outbox events + ORM flush of the new rows", r"events\.py:_allocate"),
    ("commit: database COMMIT", r"default\.py:DefaultDialect\.do_commit"),
    ("begin: BEGIN (IMMEDIATE), connection checkout", r"db\.py:_configure_sqlite\.<locals>\._on_begin|pool/"),
    ("intake: rest of take (lookups, Order/lines, flush)", r"intake\.py:(submit|take)"),
    ("intake: transaction wrapper", r"db\.py:Database\.run"),
    ("logging (access log, app log)", r"logging/__init__\.py|glogging\.py"),
    ("Flask request handling", r"flask/app\.py"),
    ("gunicorn (HTTP parsing, socket I/O, thread pool)", r"gunicorn/"),
]

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")


def parse(paths: list[Path]):
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = []
            for raw in stack.split(";"):
                m = FRAME.match(raw)
                if not m:
                    frames.append(raw)  # thread or process label
                    continue
                file = m["file"]
                for cut in ("site-packages/", "/work/main/", "lib/python3.11/"):
                    if cut in file:
                        file = file.split(cut, 1)[1]
                frames.append(f"{file}:{m['func']}")
            yield frames, int(count)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for frames, n in parse(args.files):
        total += n
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n
        joined = ";".join(frames)
        for name, pattern in AREAS:
            if re.search(pattern, joined):
                areas[name] += n
                break
        else:
            areas["other"] += n
    if not total:
        raise SystemExit("no samples")
    print(f"{total} samples\n\nareas (share of all samples, each sample in the first area that matches)")
    for name, n in areas.most_common():
        print(f"  {n / total:6.1%}  {name}")
    print("\ninclusive")
    for f, n in inclusive.most_common(args.top):
        print(f"  {n / total:6.1%}  {f}")
    print("\nself")
    for f, n in own.most_common(args.top):
        print(f"  {n / total:6.1%}  {f}")


if __name__ == "__main__":
    main()
