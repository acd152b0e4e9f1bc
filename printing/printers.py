"""Sending labels to printers, quickly or not at all.

A printer is configured by a URL:

    zpl://10.0.0.21:9100          a ZPL thermal printer on raw TCP (port 9100 by default)
    zpl://10.0.0.21?dpi=300       … with a 300 dpi head
    cups://Zebra_ZD420            a CUPS queue; we hand it a PDF with `lp -d QUEUE -`
    cups://Office?size=76x130&timeout=5

Query options: `dpi` (203 or 300, default 203), `size` (label size, default
100x150), `timeout` (seconds, default 3), `name` (shown in messages).

A named set of printers can come from one string, e.g. the environment
variable LUYUE_PRINTERS="pack-1=zpl://10.0.0.21:9100;office=cups://HP_M404".

Nothing here waits longer than the printer's timeout: a printer that does not
answer, refuses the connection, or an `lp` that is missing or fails, raises
`PrinterUnavailable` with a message to show the packer.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from .data import LabelData
from .labels import batch_labels_pdf
from .layout import SIZES, check_dpi, label_size
from .zpl import batch_labels_zpl

DEFAULT_TIMEOUT = 3.0
DEFAULT_ZPL_PORT = 9100
PRINTERS_ENV = "LUYUE_PRINTERS"


class PrinterUnavailable(Exception):
    """The printer could not take the job. `reason` says why, for a person."""

    def __init__(self, printer_name: str, reason: str) -> None:
        super().__init__(printer_name, reason)
        self.printer_name = printer_name
        self.reason = reason

    def __str__(self) -> str:
        return f"printer {self.printer_name!r} is unavailable: {self.reason}"


@dataclass(frozen=True)
class Printer:
    name: str
    kind: str  # "zpl" or "cups"
    host: str = ""
    port: int = DEFAULT_ZPL_PORT
    queue: str = ""
    dpi: int = 203
    size: str = "100x150"
    timeout: float = DEFAULT_TIMEOUT

    @property
    def url(self) -> str:
        target = f"{self.host}:{self.port}" if self.kind == "zpl" else self.queue
        return f"{self.kind}://{target}?dpi={self.dpi}&size={self.size}&timeout={self.timeout:g}"


def parse_printer(url: str, name: str | None = None) -> Printer:
    """A Printer from `zpl://HOST[:PORT]` or `cups://QUEUE` (options as query)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"dpi", "size", "timeout", "name"}
    if unknown:
        raise ValueError(f"unknown printer option(s) {', '.join(sorted(unknown))} in {url!r}")
    try:
        dpi = check_dpi(int(query.get("dpi", 203)))
        timeout = float(query.get("timeout", DEFAULT_TIMEOUT))
    except ValueError as e:
        raise ValueError(f"bad printer option in {url!r}: {e}") from None
    if not 0 < timeout <= 60:
        raise ValueError(f"printer timeout must be between 0 and 60 s, got {timeout}")
    size = label_size(query.get("size", "100x150")).name
    name = name or query.get("name") or url
    if scheme == "zpl":
        if not parts.hostname:
            raise ValueError(f"a ZPL printer URL needs a host: zpl://HOST[:PORT], got {url!r}")
        try:
            port = parts.port or DEFAULT_ZPL_PORT
        except ValueError:
            raise ValueError(f"bad port in printer URL {url!r}") from None
        return Printer(name, "zpl", host=parts.hostname, port=port, dpi=dpi, size=size, timeout=timeout)
    if scheme == "cups":
        queue = (parts.netloc + parts.path).strip("/")
        if not queue or any(c.isspace() for c in queue):
            raise ValueError(f"a CUPS printer URL names its queue: cups://QUEUE, got {url!r}")
        return Printer(name, "cups", queue=queue, dpi=dpi, size=size, timeout=timeout)
    raise ValueError(f"printer URL must start with zpl:// or cups://, got {url!r}")


def printers_from_string(value: str) -> dict[str, Printer]:
    """Parse `NAME=URL;NAME=URL` (also newline- or comma-separated)."""
    printers: dict[str, Printer] = {}
    for entry in value.replace("\n", ";").replace(",", ";").split(";"):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, url = entry.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"printer entries look like NAME=URL, got {entry!r}")
        printers[name.strip()] = parse_printer(url.strip(), name=name.strip())
    return printers


def printers_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Printer]:
    return printers_from_string((environ if environ is not None else os.environ).get(PRINTERS_ENV, ""))


def resolve_printer(name_or_url: str, configured: Mapping[str, Printer] | None = None) -> Printer:
    """A printer URL, a configured printer's name, or else a CUPS queue name."""
    if "://" in name_or_url:
        return parse_printer(name_or_url)
    if configured and name_or_url in configured:
        return configured[name_or_url]
    if not name_or_url or any(c.isspace() for c in name_or_url):
        raise ValueError(f"not a printer name or URL: {name_or_url!r}")
    return Printer(name_or_url, "cups", queue=name_or_url)


# ---------------------------------------------------------------- sending


def _resolve(host: str, port: int, timeout: float) -> tuple:
    """getaddrinfo ignores socket timeouts; do it in a thread we stop waiting for."""
    try:
        ipaddress.ip_address(host)
        return (socket.AF_INET6 if ":" in host else socket.AF_INET, (host, port))
    except ValueError:
        pass
    result: dict[str, object] = {}

    def lookup() -> None:
        try:
            result["info"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            result["error"] = e

    t = threading.Thread(target=lookup, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"looking up {host} took longer than {timeout:g} s")
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    family, _, _, _, address = result["info"][0]  # type: ignore[index]
    return family, address


def send_raw(printer: Printer, data: bytes) -> None:
    """Write `data` to a raw TCP (port 9100) printer within its timeout."""
    if printer.kind != "zpl":
        raise ValueError(f"{printer.name} is not a raw TCP printer")
    deadline = time.monotonic() + printer.timeout
    where = f"{printer.host}:{printer.port}"
    try:
        family, address = _resolve(printer.host, printer.port, printer.timeout)
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            sock.connect(address)
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
    except ConnectionRefusedError:
        raise PrinterUnavailable(printer.name, f"{where} refused the connection (is the printer on?)") from None
    except (TimeoutError, socket.timeout):
        raise PrinterUnavailable(printer.name, f"{where} did not answer within {printer.timeout:g} s") from None
    except socket.gaierror as e:
        raise PrinterUnavailable(printer.name, f"cannot find host {printer.host}: {e.strerror or e}") from None
    except OSError as e:
        raise PrinterUnavailable(printer.name, f"{where}: {e.strerror or e}") from None


def send_pdf(printer: Printer, pdf: bytes, title: str = "luyue label") -> None:
    """Queue `pdf` on a CUPS printer with `lp -d QUEUE -`."""
    if printer.kind != "cups":
        raise ValueError(f"{printer.name} is not a CUPS printer")
    lp = shutil.which("lp")
    if lp is None:
        raise PrinterUnavailable(printer.name, "the `lp` command is missing (install cups-client)")
    try:
        # its own process group, so a stuck `lp` and anything it started can be killed
        proc = subprocess.Popen(
            [lp, "-d", printer.queue, "-t", title, "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as e:
        raise PrinterUnavailable(printer.name, f"cannot run `lp`: {e.strerror or e}") from None
    try:
        stdout, stderr = proc.communicate(pdf, timeout=printer.timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise PrinterUnavailable(printer.name, f"`lp` did not finish within {printer.timeout:g} s") from None
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).decode("utf-8", "replace").strip().splitlines()
        raise PrinterUnavailable(
            printer.name, f"`lp -d {printer.queue}` failed ({done.returncode}): {said[-1] if said else 'no message'}"
        )


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.communicate(timeout=1)
    except subprocess.TimeoutExpired:  # a child escaped the group and holds the pipes
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream:
                stream.close()
        proc.wait(timeout=1)


def send_labels(printer: Printer, labels: Iterable[LabelData], size: str | None = None) -> None:
    """Print labels: ZPL for a raw TCP printer, a PDF job for a CUPS queue."""
    labels = list(labels)
    size = size or printer.size
    if size not in SIZES:
        label_size(size)  # raises the helpful ValueError
    if printer.kind == "zpl":
        send_raw(printer, batch_labels_zpl(labels, size, printer.dpi).encode("utf-8"))
    else:
        title = labels[0].tracking_number if len(labels) == 1 else f"{len(labels)} labels"
        send_pdf(printer, batch_labels_pdf(labels, size, printer.dpi), title=f"luyue {title}")


def send_label(printer: Printer, label: LabelData, size: str | None = None) -> None:
    """Print one label; raise PrinterUnavailable when the printer cannot take it."""
    send_labels(printer, [label], size)
