"""The hostile corpus's runner: `attack` sends the corpus's values into
fields and checks every answer; `every_table` is what proves nothing was
written."""
from __future__ import annotations

import html
import re
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

from corpus import MAX_CPU_SECONDS, Field
from sqlalchemy import func, select

from app.fulfilment import events
from app.fulfilment.errors import Refusal
from app.models import Base, Fulfilment

# badge, name, role, PIN, language: both languages on the floor.
USERS = [("P1", "张伟", "picker", "1111", "zh"), ("K1", "Kim", "packer", "5555", "en"),
         ("D1", "赵敏", "dock", "6666", "zh"), ("R1", "Ray", "rider", "7777", "en"),
         ("L1", "李娜", "lead", "3333", "zh"), ("L2", "Lee", "lead", "8888", "en")]


@dataclass
class Site:
    app: Any
    db: Any
    headers: dict[str, str]
    admin_headers: dict[str, str]
    carrier_headers: dict[str, str]
    refs: list[str]
    handover: str
    language: dict[str, str]
    clients: dict[str, Any]

    def client(self, who: str):
        if who not in self.clients:
            client = self.app.test_client()
            if who != "nobody":
                badge, pin = next((u[0], u[3]) for u in USERS if u[0] == who)
                answer = client.post("/login/pin", data={"badge": badge, "pin": pin})
                assert answer.status_code == 302, answer.get_data(as_text=True)
            self.clients[who] = client
        return self.clients[who]


def every_table(db) -> dict[str, Any]:
    """Every table's row count and the last event seq. Wrong logins are
    counted on purpose (login_throttles: unknown badges lock like known ones)."""
    with db.reading() as s:
        state = {t.name: s.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables
                 if t.name != "login_throttles"}
        state["last_seq"] = events.last_seq(s)
        state["statuses"] = s.execute(select(Fulfilment.ref, Fulfilment.status).order_by(Fulfilment.id)).all()
    return state


def visible(answer) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", answer.get_data(as_text=True)))


def _expected_messages(f: Field, value: str, language: str) -> list[str]:
    from app.web.inputs import field_words
    from app.web.inputs import SCREEN_BODY_BYTES
    if len(value) > f.limit:
        # A form this large is refused whole, before its fields are read.
        return [Refusal("input_too_long", length=len(value), limit=f.limit, **field_words(f.name)).message(language),
                Refusal("too_large", limit=SCREEN_BODY_BYTES).message(language)]
    bad = next(c for c in value if unicodedata.category(c) == "Cc")
    return [Refusal("input_control_character", character=f"U+{ord(bad):04X}", **field_words(f.name))
            .message(language)]


def attack(site: Site, fields: list[Field], headers: dict[str, str] | None = None) -> int:
    """Send every case; returns how many. Collects every failure, then fails
    once with all of them."""
    failures = []
    n = 0
    for f in fields:
        before = every_table(site.db)
        for value in f.values():
            n += 1
            client = site.client(f.who)
            url, kwargs = f.request(value)
            started = time.thread_time()
            answer = client.open(url, method=f.method, headers=headers or {}, **kwargs)
            cpu = time.thread_time() - started
            what = f"{f.method} {url[:80]} {f.name}={value[:40]!r}"
            if answer.status_code >= 500:
                failures.append(f"{what}: {answer.status_code}")
            if cpu > MAX_CPU_SECONDS:
                failures.append(f"{what}: {cpu:.2f} s of CPU")
            if f.refuses(value):
                language = site.language.get(f.who, "zh")
                if not 400 <= answer.status_code < 500:
                    failures.append(f"{what}: {answer.status_code}, not refused")
                elif not url.startswith("/api/") and answer.status_code != 404:
                    shown = visible(answer)
                    if not any(m in shown for m in _expected_messages(f, value, language)):
                        failures.append(f"{what}: the refusal is not shown in {language}: {shown[:200]!r}")
        after = every_table(site.db)
        if after != before:
            changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
            failures.append(f"{f.method} {f.path} {f.name}: wrote {changed}")
    assert not failures, f"{len(failures)} of {n} cases failed:\n" + "\n".join(failures[:60])
    return n


