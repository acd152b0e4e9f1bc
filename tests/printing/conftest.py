"""Helpers for the printing tests: render PDFs the way a printer driver would
(poppler's pdftoppm at the printer's resolution) and read barcodes back the
way a scanner would (zxing-cpp)."""

from __future__ import annotations

import tempfile
import subprocess
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image


def render_pdf(pdf: bytes, dpi: int, mode: str = "mono", page: int = 1) -> Image.Image:
    """Rasterise one page of `pdf` at `dpi` with pdftoppm: mode 'mono' (1-bit,
    like a thermal head), 'gray' or 'color'."""
    flag = {"mono": ["-mono"], "gray": ["-gray"], "color": []}[mode]
    with tempfile.TemporaryDirectory(prefix="luyue-print-") as tmp:
        source = Path(tmp, "in.pdf")
        source.write_bytes(pdf)
        subprocess.run(
            ["pdftoppm", "-r", str(dpi), *flag, "-png", "-f", str(page), "-l", str(page), "-singlefile",
             str(source), str(Path(tmp, "out"))],
            capture_output=True, check=True, timeout=30,
        )
        image = Image.open(Path(tmp, "out.png"))
        image.load()
    return image.convert("L")


def decode(image: Image.Image) -> list[zxingcpp.Barcode]:
    return list(zxingcpp.read_barcodes(image))


def decode_plain(image: Image.Image) -> list[zxingcpp.Barcode]:
    """Decode with raw text (GS1 element strings without parentheses, FNC1 as GS)."""
    return list(zxingcpp.read_barcodes(image, text_mode=zxingcpp.TextMode.Plain))


def dark(pixel: int) -> bool:
    return pixel < 128


def runs(row: list[int]) -> list[tuple[bool, int, int]]:
    """(is_dark, start, length) runs of a row of grey pixels."""
    out: list[tuple[bool, int, int]] = []
    start = 0
    for x in range(1, len(row) + 1):
        if x == len(row) or dark(row[x]) != dark(row[start]):
            out.append((dark(row[start]), start, x - start))
            start = x
    return out


@pytest.fixture
def render():
    """render(pdf, dpi, mode="mono", page=1) -> greyscale PIL image."""
    return render_pdf


@pytest.fixture
def scan():
    """scan(image) -> barcodes as zxing-cpp reads them (HRI text: '(00)…' for GS1)."""
    return decode


@pytest.fixture
def scan_plain():
    """scan_plain(image) -> barcodes with plain text ('00…' for GS1, GS for FNC1)."""
    return decode_plain


@pytest.fixture
def row_runs():
    """row_runs(pixels) -> [(is_dark, start, length), …]."""
    return runs
