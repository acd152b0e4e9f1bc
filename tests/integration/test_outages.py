"""A database that is stopped or hung: every request answers 503 `unavailable`
with Retry-After within the configured seconds (API, screens, /healthz), the
log says so a few times rather than once per request, and the same process
works again once the database is back.

These tests run their own PostgreSQL cluster (initdb and pg_ctl of Debian's
packages, or from LUYUE_PG_BIN; as the `postgres` system user when run as
root) on a free port, so they can stop it and freeze it (SIGSTOP of the
postmaster and every backend: a host that hangs but still accepts TCP). With
LUYUE_TEST_POSTGRES_URL set they never skip.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import support
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from app import create_app
from app.access import create_token, create_user
from app.models import Base
from app.outage import is_outage


def _pg_bin() -> Path:
    """LUYUE_PG_BIN, else the newest of Debian's /usr/lib/postgresql/<major>/bin."""
    if os.environ.get("LUYUE_PG_BIN"):
        return Path(os.environ["LUYUE_PG_BIN"])
    majors = [p.parent.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    newest = max((m for m in majors if m.name.isdigit()), key=lambda m: int(m.name), default=None)
    return newest / "bin" if newest else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()

# Low limits, so the whole module takes seconds; libpq's connect timeout
# cannot go under 2 s.
LIMITS = {"db_connect_timeout_seconds": 2, "db_statement_timeout_seconds": 1, "db_pool_timeout_seconds": 1,
          "unavailable_retry_after_seconds": 3, "health_timeout_seconds": 1.5}
# The client's own limit on an answer: the statement timeout plus a second.
ANSWER = LIMITS["db_statement_timeout_seconds"] + 1
MARGIN = 1.5


class Cluster:
    """A throw-away PostgreSQL cluster on 127.0.0.1:`port`."""

    def __init__(self, root: Path):
        self.root = root
        self.data = root / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:  # initdb refuses root; CI runs as root
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{' '.join(command)}: {done.stdout}{done.stderr}"

    def create(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        self.start()

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options,
                  "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def children(self, parent: int) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    # The command may contain spaces: the fields after ")" are fixed.
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    if int(fields[1]) == parent:
                        found.append(int(entry.name))
        return found

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Every process of the cluster stopped (the postmaster first, so it
        forks no new backend), and always continued afterwards."""
        postmaster = self.postmaster()
        stopped = []
        try:
            os.kill(postmaster, signal.SIGSTOP)
            stopped.append(postmaster)
            for pid in self.children(postmaster):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
            yield
        finally:
            for pid in stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)


    def remove(self) -> None:
        """Continued (it may be frozen) and stopped, and its files gone."""
        with contextlib.suppress(Exception):
            postmaster = self.postmaster()
            for pid in [postmaster, *self.children(postmaster)]:
                os.kill(pid, signal.SIGCONT)
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def _remove_left_over_clusters() -> None:
    """Clusters of earlier runs that were killed before their clean-up (a
    frozen one would keep its port and memory for good)."""
    for root in Path(tempfile.gettempdir()).glob("luyue-outage-*"):
        with contextlib.suppress(OSError, ValueError):
            owner = int((root / "owner.pid").read_text())
            if Path(f"/proc/{owner}").exists():
                continue  # another run's, still going
        Cluster(root).remove()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if not (PG_BIN / "initdb").exists():
        if os.environ.get("LUYUE_TEST_POSTGRES_URL"):
            pytest.fail(f"no initdb under {PG_BIN}: install postgresql (or set LUYUE_PG_BIN)")
        pytest.skip(f"no initdb under {PG_BIN}")
    _remove_left_over_clusters()
    root = Path(tempfile.mkdtemp(prefix="luyue-outage-"))
    (root / "owner.pid").write_text(str(os.getpid()))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
    made = Cluster(root)
    try:
        made.create()
        engine = create_engine(made.url)
        Base.metadata.create_all(engine)
        engine.dispose()
        yield made
    finally:
        made.remove()


@pytest.fixture(scope="module")
def served(cluster):
    """An app on the cluster, with a channel token and two logged-in pickers
    (one reads Chinese, one English)."""
    app = create_app({"database_url": cluster.url, "secret_key": "t", **LIMITS})
    app.config.update(TESTING=True)
    db = app.extensions["luyue.db"]
    support.add_nodes(db, {"SH-PD": support.PLACES["SH-PD"]})
    with db.transaction() as s:
        token = create_token(s, "shop")
        create_user(s, "P1", "张伟", "picker", "1111", "SH-PD", "zh")
        create_user(s, "P2", "Tom Wilson", "picker", "2222", "SH-PD", "en")
    pickers = {}
    for badge, pin, language in (("P1", "1111", "zh"), ("P2", "2222", "en")):
        pickers[language] = app.test_client()
        assert pickers[language].post("/login/pin", data={"badge": badge, "pin": pin}).status_code == 302
    yield app, {"Authorization": f"Bearer {token}"}, pickers
    db.dispose()


def timed(call):
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def everything_works(app, headers, pickers) -> None:
    api = app.test_client()
    assert api.get("/api/v1/events", headers=headers).status_code == 200
    assert api.post("/api/v1/orders", json=support.order_body(f"TM-{time.monotonic_ns()}", [("SKU-X", 1)]),
                    headers=headers).status_code == 422  # read the catalogue: an unknown SKU
    assert pickers["zh"].get("/pick").status_code == 200
    assert api.get("/healthz").status_code == 200


def assert_unavailable_api(answer) -> None:
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == str(LIMITS["unavailable_retry_after_seconds"])
    error = answer.get_json()["error"]
    assert error["code"] == "unavailable"
    assert "cannot reach its database" in error["message"]
    assert error["details"] == {"retry_after_seconds": LIMITS["unavailable_retry_after_seconds"]}


def outage_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "the database is unreachable" in r.getMessage()]


def test_a_stopped_database_answers_503_everywhere_quickly_with_a_few_log_lines_and_the_process_recovers(
        cluster, served, caplog):
    app, headers, pickers = served
    everything_works(app, headers, pickers)  # the pool holds live connections now
    caplog.clear()
    cluster.stop()
    try:
        api = app.test_client()
        for _ in range(10):
            answer, took = timed(lambda: api.get("/api/v1/events", headers=headers))
            assert_unavailable_api(answer)
            assert took < 1.5, took
        answer, took = timed(lambda: api.post("/api/v1/orders", json=support.order_body("TM-DOWN-1", [("SKU-A", 1)]),
                                              headers=headers))
        assert_unavailable_api(answer)
        assert took < 1.5
        for language, words in (("zh", "正在重新连接"), ("en", "Reconnecting")):
            page, took = timed(lambda: pickers[language].get("/pick"))
            assert page.status_code == 503 and took < 1.5
            assert page.headers["Retry-After"] == "3"
            html = page.get_data(as_text=True)
            assert words in html and 'http-equiv="refresh" content="3"' in html
            # A scan sent by the handheld: the page says nothing was recorded.
            scan = pickers[language].post("/pick/scan", data={"scan": "A-01-01-1", "scan_id": "outage-scan-0001"},
                                          headers={"HX-Request": "true"})
            assert scan.status_code == 503 and scan.headers["Retry-After"] == "3"
        health, took = timed(lambda: api.get("/healthz"))
        assert health.status_code == 503 and took < 2
        assert health.get_json() == {"status": "unavailable", "database": "unreachable"}
        assert health.headers["Retry-After"] == "3"
    finally:
        cluster.start()
    lines = outage_lines(caplog)
    # 17 failed requests, each failure type said once (refused connections; a
    # connection the shutdown closed), none with a traceback.
    assert 1 <= len(lines) <= 4, [r.getMessage() for r in lines]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # Back without restarting the app.
    everything_works(app, headers, pickers)


def test_a_hung_database_answers_503_within_the_timeouts_and_healthz_within_two_seconds(cluster, served, caplog):
    app, headers, pickers = served
    everything_works(app, headers, pickers)
    api = app.test_client()
    with cluster.frozen():
        health, took = timed(lambda: api.get("/healthz"))
        assert health.status_code == 503 and took < 2, took
        # A pooled connection's ping gets no answer (ANSWER), then a new
        # connection gets none (the connect timeout).
        bound = ANSWER + LIMITS["db_connect_timeout_seconds"] + MARGIN
        answer, took = timed(lambda: api.get("/api/v1/events", headers=headers))
        assert_unavailable_api(answer)
        assert took < bound, took
        answer, took = timed(lambda: api.post("/api/v1/orders", json=support.order_body("TM-HUNG-1", [("SKU-A", 1)]),
                                              headers=headers))
        assert_unavailable_api(answer)
        assert took < bound, took
        page, took = timed(lambda: pickers["en"].get("/pick"))
        assert page.status_code == 503 and took < bound, took
        assert "Reconnecting" in page.get_data(as_text=True)
        health, took = timed(lambda: api.get("/healthz"))
        assert health.status_code == 503 and took < 2, took
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    everything_works(app, headers, pickers)


def test_health_checks_sent_together_to_a_frozen_database_all_answer_503_in_time_and_share_one_probe(
        cluster, served):
    app = served[0]
    assert app.test_client().get("/healthz").status_code == 200
    checks = 12
    start = threading.Barrier(checks)
    answers: list = [None] * checks

    def check(i: int) -> None:
        start.wait(timeout=10)
        answers[i] = timed(lambda: app.test_client().get("/healthz"))

    for _ in range(3):
        with cluster.frozen():
            threads = [threading.Thread(target=check, args=(i,)) for i in range(checks)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=10)
            probes = [t for t in threading.enumerate() if t.name == "luyue-health"]
            assert not any(t.is_alive() for t in threads), "a health check hung"
        assert [answer.status_code for answer, _ in answers] == [503] * checks
        assert max(took for _, took in answers) < 2, answers
        assert len(probes) == 1, probes  # one thread waits on the database, not one per check
        for probe in probes:
            probe.join(timeout=10)  # continued, it finishes its read
    assert app.test_client().get("/healthz").status_code == 200


def test_a_statement_sent_to_a_frozen_database_fails_after_the_answer_timeout_and_drops_the_connection(
        cluster, served):
    """The server's statement timeout cannot fire in a frozen server, and a
    frozen host still acknowledges TCP: the client's own limit ends the wait."""
    db = served[0].extensions["luyue.db"]
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
        with cluster.frozen():
            started = time.monotonic()
            with pytest.raises(DBAPIError) as failed:
                conn.execute(text("SELECT 2"))
            took = time.monotonic() - started
    assert ANSWER - 0.2 <= took < ANSWER + MARGIN, took
    assert failed.value.connection_invalidated and is_outage(failed.value)


def test_a_slow_statement_is_cancelled_by_the_server_and_a_wrong_one_is_a_bug_not_an_outage(cluster, served, tmp_path):
    db = served[0].extensions["luyue.db"]
    with db.engine.connect() as conn:
        started = time.monotonic()
        with pytest.raises(DBAPIError) as slow:
            conn.execute(text("SELECT pg_sleep(5)"))
        took = time.monotonic() - started
        conn.rollback()
        assert conn.execute(text("SELECT 1")).scalar_one() == 1  # the connection is still good
    assert slow.value.orig.sqlstate == "57014" and is_outage(slow.value)  # statement timeout: try later
    assert LIMITS["db_statement_timeout_seconds"] - 0.1 <= took < ANSWER, took
    with db.engine.connect() as conn, pytest.raises(DBAPIError) as wrong:
        conn.execute(text("SELECT * FROM no_such_table"))
    assert not is_outage(wrong.value)
    sqlite = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with sqlite.connect() as conn, pytest.raises(DBAPIError) as missing:
        conn.execute(text("SELECT * FROM no_such_table"))
    sqlite.dispose()
    assert not is_outage(missing.value)


def test_the_outage_log_says_each_type_of_failure_once_per_interval_with_how_many_were_left_out(monkeypatch, caplog):
    import psycopg

    from app import outage
    now = [1000.0]
    monkeypatch.setattr(outage.time, "monotonic", lambda: now[0])
    log = outage.OutageLog(every=10)
    logger = logging.getLogger("outage-test")
    refused = psycopg.OperationalError("connection refused")
    timed_out = psycopg.errors.ConnectionTimeout("connection timeout expired")
    with caplog.at_level(logging.WARNING, logger="outage-test"):
        written = [log.report(logger, "GET /x", refused) for _ in range(50)]
        written.append(log.report(logger, "GET /x", timed_out))  # another type: said at once
        now[0] += 10
        written.append(log.report(logger, "GET /y", refused))
    assert written == [True] + [False] * 49 + [True, True]
    assert [r.getMessage() for r in caplog.records] == [
        "GET /x: the database is unreachable (OperationalError): connection refused",
        "GET /x: the database is unreachable (ConnectionTimeout): connection timeout expired",
        "GET /y: the database is unreachable (OperationalError): connection refused [49 more since the last line]",
    ]
