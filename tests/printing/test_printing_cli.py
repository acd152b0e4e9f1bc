"""`luyue label test` (printing.cli.label_test): the sample label, no database."""

from __future__ import annotations

import io

import pypdf
import pytest
import zxingcpp
from click.testing import CliRunner
from reportlab.lib.units import mm

from printing.cli import label_test
from printing.data import sample_label


@pytest.mark.parametrize(("size", "dpi", "width_mm"), [("100x150", "203", 100), ("76x130", "300", 76)])
def test_label_test_writes_a_pdf_that_scans(tmp_path, render, size, dpi, width_mm):
    out = tmp_path / "label.pdf"

    result = CliRunner().invoke(label_test, ["--out", str(out), "--size", size, "--dpi", dpi])

    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    pdf = out.read_bytes()
    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    assert float(page.mediabox.width) == pytest.approx(width_mm * mm, abs=0.01)
    assert "王小明" in page.extract_text()
    texts = {b.text for b in zxingcpp.read_barcodes(render(pdf, int(dpi)))}
    assert sample_label().tracking_number in texts


def test_label_test_writes_zpl_when_asked_for_a_zpl_file(tmp_path):
    out = tmp_path / "label.zpl"
    result = CliRunner().invoke(label_test, ["--out", str(out), "--dpi", "300"])
    assert result.exit_code == 0, result.output
    zpl = out.read_text(encoding="utf-8")
    assert zpl.startswith("^XA") and "^PW1181" in zpl and "王小明" in zpl


def test_label_test_without_options_writes_label_test_pdf_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(label_test, [])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "label-test.pdf").read_bytes().startswith(b"%PDF")


def test_label_test_sends_to_a_printer_and_also_writes_the_file(tmp_path, zpl_printer):
    out = tmp_path / "label.pdf"
    result = CliRunner().invoke(
        label_test, ["--printer", f"zpl://127.0.0.1:{zpl_printer.port}", "--size", "76x130", "--out", str(out)])

    assert result.exit_code == 0, result.output
    data = zpl_printer.wait()
    assert data.startswith(b"^XA") and sample_label().tracking_number.encode() in data
    assert b"^PW607" in data
    assert out.read_bytes().startswith(b"%PDF")
    assert "sent to" in result.output


def test_label_test_finds_a_printer_by_name_in_luyue_printers(zpl_printer, monkeypatch):
    monkeypatch.setenv("LUYUE_PRINTERS", f"pack-1=zpl://127.0.0.1:{zpl_printer.port}?dpi=300")
    result = CliRunner().invoke(label_test, ["--printer", "pack-1"])
    assert result.exit_code == 0, result.output
    assert b"^PW1181" in zpl_printer.wait()  # the printer's own 300 dpi


def test_label_test_reports_an_unavailable_printer_clearly(closed_port, tmp_path):
    result = CliRunner().invoke(label_test, ["--printer", f"zpl://127.0.0.1:{closed_port}?timeout=1"])
    assert result.exit_code == 1
    assert "is unavailable" in result.output and "refused" in result.output
    assert "Traceback" not in result.output


def test_label_test_refuses_a_bad_printer_url():
    result = CliRunner().invoke(label_test, ["--printer", "zpl://"])
    assert result.exit_code == 2
    assert "--printer" in result.output


def test_label_test_offers_only_the_supported_sizes_and_resolutions(tmp_path):
    assert CliRunner().invoke(label_test, ["--size", "A4", "--out", str(tmp_path / "x.pdf")]).exit_code == 2
    assert CliRunner().invoke(label_test, ["--dpi", "600", "--out", str(tmp_path / "x.pdf")]).exit_code == 2
