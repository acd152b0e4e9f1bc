"""Sending labels: a fake raw-TCP ZPL printer, a fake `lp`, and printers that
do not answer. Nothing may hang past the printer's timeout."""

from __future__ import annotations

import socket
import stat
import time
from pathlib import Path

import pytest

from printing.data import sample_label
from printing.printers import (
    Printer,
    PrinterUnavailable,
    parse_printer,
    printers_from_env,
    printers_from_string,
    resolve_printer,
    send_label,
    send_labels,
)


# ---------------------------------------------------------------- configuration

def test_zpl_printer_urls():
    p = parse_printer("zpl://10.0.0.21:9101?dpi=300&size=76x130&timeout=1.5")
    assert (p.kind, p.host, p.port, p.dpi, p.size, p.timeout) == ("zpl", "10.0.0.21", 9101, 300, "76x130", 1.5)
    assert parse_printer("zpl://printer-3.lan").port == 9100
    assert parse_printer("zpl://10.0.0.21").dpi == 203
    assert parse_printer("zpl://10.0.0.21").timeout == 3.0
    assert parse_printer("zpl://[::1]:9100").host == "::1"


def test_cups_printer_urls():
    p = parse_printer("cups://Zebra_ZD420?dpi=300", name="pack-2")
    assert (p.kind, p.queue, p.dpi, p.name) == ("cups", "Zebra_ZD420", 300, "pack-2")


@pytest.mark.parametrize(
    "bad",
    ["http://10.0.0.1", "zpl://", "zpl://10.0.0.1:notaport", "cups://", "zpl://h?dpi=600", "zpl://h?timeout=0",
     "zpl://h?timeout=999", "zpl://h?colour=red", "cups://q?size=A4", "10.0.0.1:9100"],
)
def test_bad_printer_urls_say_what_is_wrong(bad):
    with pytest.raises(ValueError):
        parse_printer(bad)


def test_named_printers_from_one_string_and_the_environment():
    printers = printers_from_string("pack-1=zpl://10.0.0.21:9100; office = cups://HP_M404?size=76x130\n")
    assert printers["pack-1"].host == "10.0.0.21" and printers["pack-1"].name == "pack-1"
    assert printers["office"].queue == "HP_M404" and printers["office"].size == "76x130"
    assert printers_from_env({"LUYUE_PRINTERS": "a=zpl://h"})["a"].host == "h"
    assert printers_from_env({}) == {}
    with pytest.raises(ValueError, match="NAME=URL"):
        printers_from_string("zpl://10.0.0.21")


def test_resolve_a_url_a_configured_name_or_a_cups_queue():
    configured = printers_from_string("pack-1=zpl://10.0.0.21")
    assert resolve_printer("pack-1", configured).host == "10.0.0.21"
    assert resolve_printer("zpl://10.0.0.9:9100").host == "10.0.0.9"
    assert resolve_printer("Zebra_ZD420", configured) == Printer("Zebra_ZD420", "cups", queue="Zebra_ZD420")


# ---------------------------------------------------------------- raw TCP (ZPL)

def test_a_label_arrives_at_a_zpl_printer_as_zpl(zpl_printer):
    label = sample_label()
    printer = parse_printer(f"zpl://127.0.0.1:{zpl_printer.port}?timeout=2", name="pack-1")

    send_label(printer, label)
    data = zpl_printer.wait()

    assert data.startswith(b"^XA")
    assert data.rstrip().endswith(b"^XZ")
    assert label.tracking_number.encode() in data
    assert "王小明".encode() in data
    assert b"^PW799" in data  # 100x150 at 203 dpi


def test_the_printer_resolution_and_size_shape_the_zpl(zpl_printer):
    printer = parse_printer(f"zpl://127.0.0.1:{zpl_printer.port}?dpi=300&size=76x130")
    send_labels(printer, [sample_label(1, 2), sample_label(2, 2)])
    data = zpl_printer.wait()
    assert data.count(b"^XA") == 2
    assert b"^PW898" in data and b"^LL1535" in data


def test_a_closed_port_is_unavailable_at_once(closed_port):
    printer = parse_printer(f"zpl://127.0.0.1:{closed_port}?timeout=2", name="pack-1")
    started = time.monotonic()

    with pytest.raises(PrinterUnavailable) as raised:
        send_label(printer, sample_label())

    assert time.monotonic() - started < 1.0
    assert raised.value.printer_name == "pack-1"
    assert "refused" in raised.value.reason
    assert str(raised.value).startswith("printer 'pack-1' is unavailable")


def test_a_printer_that_never_answers_gives_up_at_its_timeout():
    # a listener whose accept queue is full: the kernel drops further connection attempts
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.1)
        printer = parse_printer(f"zpl://127.0.0.1:{port}?timeout=0.5")
        started = time.monotonic()

        with pytest.raises(PrinterUnavailable, match="did not answer within 0.5 s"):
            send_label(printer, sample_label())

        elapsed = time.monotonic() - started
        assert 0.4 < elapsed < 1.5
    finally:
        for s in fillers:
            s.close()
        server.close()


def test_an_unknown_host_is_unavailable_not_an_exception_of_another_kind():
    printer = parse_printer("zpl://no-such-printer.invalid?timeout=2")
    started = time.monotonic()
    with pytest.raises(PrinterUnavailable):
        send_label(printer, sample_label())
    assert time.monotonic() - started < 2.5


# ---------------------------------------------------------------- CUPS (lp)

def fake_lp(bin_dir: Path, body: str) -> Path:
    bin_dir.mkdir(exist_ok=True)
    lp = bin_dir / "lp"
    lp.write_text("#!/bin/sh\n" + body)
    lp.chmod(lp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return lp


@pytest.fixture
def only_fake_bin(tmp_path, monkeypatch) -> Path:
    """PATH holds only our fake bin directory (plus cat/sleep through absolute paths in the scripts)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_a_cups_printer_gets_the_pdf_through_lp(only_fake_bin, tmp_path):
    fake_lp(only_fake_bin, f'echo "$@" > {tmp_path}/args\n'
                           f'/bin/cat > {tmp_path}/job.pdf\n'
                           'echo "request id is Q-1 (1 file(s))"\n')
    label = sample_label()

    send_label(parse_printer("cups://Zebra_ZD420", name="pack-2"), label, "76x130")

    args = (tmp_path / "args").read_text().split()
    job = (tmp_path / "job.pdf").read_bytes()
    assert args[:2] == ["-d", "Zebra_ZD420"] and args[-1] == "-"
    assert job.startswith(b"%PDF") and b"%%EOF" in job[-64:]


def test_a_failing_lp_says_why(only_fake_bin):
    fake_lp(only_fake_bin, '/bin/cat > /dev/null\necho "lp: The printer or class does not exist." >&2\nexit 1\n')

    with pytest.raises(PrinterUnavailable, match="printer or class does not exist") as raised:
        send_label(parse_printer("cups://Nope", name="office"), sample_label())

    assert raised.value.printer_name == "office"


def test_a_missing_lp_is_unavailable(only_fake_bin):
    with pytest.raises(PrinterUnavailable, match="`lp` command is missing"):
        send_label(parse_printer("cups://Zebra"), sample_label())


def test_an_lp_that_hangs_is_stopped_at_the_timeout(only_fake_bin, tmp_path):
    # the child `sleep` keeps the pipes open even after its shell is killed: the whole group must go
    fake_lp(only_fake_bin, f"/bin/sleep 30 &\necho $! > {tmp_path}/child\nwait\n")
    started = time.monotonic()

    with pytest.raises(PrinterUnavailable, match="did not finish within 0.5 s"):
        send_label(parse_printer("cups://Slow?timeout=0.5"), sample_label())

    assert time.monotonic() - started < 2.5
    child = int((tmp_path / "child").read_text())
    assert not running(child)  # killed with its group, not left behind


def running(pid: int) -> bool:
    """Alive and not a zombie waiting for a reaper."""
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.05)
    return True
