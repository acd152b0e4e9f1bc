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

# Named areas: the first frame (outermost first) matching the pattern names the sample.
AREAS = [
    ("auth (token lookup)", r"access\.py:token_owner|api\.py:authenticate"),
    ("order document (response)", r"api\.py:_document|api\.py:order_document"),
    ("parse + validate", r"intake\.py:parse"),
    ("load_candidates", r"dispatch\.py:load_candidates"),
    ("dispatch reason", r"dispatch\.py:_reason"),
    ("hold (capacity + stock)", r"dispatch\.py:_hold"),
    ("events outbox", r"events\.py:_allocate"),
    ("commit", r"session\.py:commit|base\.py:commit"),
    ("begin / connection checkout", r"pool/base\.py:|session\.py:_connection_for_bind"),
    ("logging", r"logging/__init__\.py:|glogging\.py:"),
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
    if not total:
        raise SystemExit("no samples")
    print(f"{total} samples\n\nareas (share of all samples; nested areas overlap)")
    for name, _ in AREAS:
        print(f"  {areas[name] / total:6.1%}  {name}")
    print("\ninclusive")
    for f, n in inclusive.most_common(args.top):
        print(f"  {n / total:6.1%}  {f}")
    print("\nself")
    for f, n in own.most_common(args.top):
        print(f"  {n / total:6.1%}  {f}")


if __name__ == "__main__":
    main()
