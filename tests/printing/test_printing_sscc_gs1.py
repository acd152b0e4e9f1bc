"""The SSCC (GS1-128, AI 00) on the shipping label against the GS1 logistic-label
symbol specification: X-dimension 0.495–1.016 mm, bars at least 31.75 mm high,
quiet zones of 10X, measured in what is actually drawn: the PDF's rectangles,
the rasterised page, and the ZPL's ^BY/^BC; and nothing else on the label in
the symbol's way."""

from __future__ import annotations

import dataclasses
import io
import re

import pypdf
import pytest
from click.testing import CliRunner
from reportlab.lib.units import mm

from printing import code128
from printing.cli import label_test
from printing.data import Address, sample_label
from printing.labels import shipping_label_pdf
from printing.layout import (
    SIZES,
    Barcode,
    Box,
    LabelLayoutError,
    QRCode,
    Text,
    shipping_label_layout,
    sscc_barcode,
    text_width,
)
from printing.zpl import shipping_label_zpl

MIN_X_MM, MAX_X_MM, MIN_BAR_HEIGHT_MM, QUIET_X = 0.495, 1.016, 31.75, 10
SSCC_MODULES = 156  # start C, FNC1, ten digit pairs, check (11 each), stop (13)
DPIS = [203, 300]
CASES = [(size, dpi) for size in SIZES for dpi in DPIS]
CONFORMING = [(size, dpi) for size, dpi in CASES if SIZES[size].sscc_meets_gs1]
BELOW_SPEC = [(size, dpi) for size, dpi in CASES if not SIZES[size].sscc_meets_gs1]


def mm_of(dots: float, dpi: int) -> float:
    return dots * 25.4 / dpi


def long_label():
    return dataclasses.replace(
        sample_label(),
        carrier_name="中通快递股份有限公司华东大区上海转运中心",
        same_city=True,
        ship_to=Address(
            name="欧阳娜娜娜娜娜娜娜娜娜娜娜娜娜娜", phone="+86 139 1234 5678", province="新疆维吾尔自治区",
            city="伊犁哈萨克自治州", district="霍尔果斯市",
            line1="亚欧南路88号 霍尔果斯国际边境合作中心 中方配套区 跨境电商产业园 7号楼 东侧 3单元 1502室 请放快递柜",
            postal_code="835221",
        ),
        order_ref="PDD-240601-8888888888888888888",
    )


def test_the_supported_sizes_are_the_ones_checked_here():
    assert set(SIZES) == {"100x150", "76x130"}
    assert CONFORMING and all(size == "100x150" for size, _ in CONFORMING)


# ---------------------------------------------------------------- the layout


@pytest.mark.parametrize(("size", "dpi"), CASES)
def test_sscc_bars_are_at_least_31_75_mm_high_on_every_size(size, dpi):
    layout = shipping_label_layout(sample_label(), size, dpi)
    bc = layout.barcode("sscc")
    assert bc.symbol.modules == SSCC_MODULES
    assert mm_of(bc.height, dpi) >= MIN_BAR_HEIGHT_MM
    assert min(bc.quiet_left, bc.quiet_right) >= QUIET_X * bc.module


@pytest.mark.parametrize(("size", "dpi"), CONFORMING)
def test_sscc_x_dimension_is_within_the_gs1_range(size, dpi):
    layout = shipping_label_layout(sample_label(), size, dpi)
    bc = layout.barcode("sscc")
    assert MIN_X_MM <= mm_of(bc.module, dpi) <= MAX_X_MM
    assert mm_of(bc.module - 1, dpi) < MIN_X_MM  # the narrowest whole-dot X that conforms
    assert layout.sscc_meets_gs1


@pytest.mark.parametrize(("size", "dpi"), BELOW_SPEC)
def test_a_label_too_narrow_for_a_gs1_sscc_draws_the_widest_that_fits_and_says_so(size, dpi):
    layout = shipping_label_layout(sample_label(), size, dpi)
    bc = layout.barcode("sscc")
    inside = bc.quiet_left + bc.width + bc.quiet_right  # between the frame's inner edges
    span = SSCC_MODULES + 2 * QUIET_X
    # physically too small: even the label's full width cannot hold 176 modules of 0.495 mm
    assert SIZES[size].width_mm < span * MIN_X_MM
    assert mm_of(bc.module, dpi) < MIN_X_MM
    assert span * bc.module <= inside < span * (bc.module + 1)  # the widest whole-dot X that fits
    assert mm_of(bc.height, dpi) >= MIN_BAR_HEIGHT_MM  # the height is met all the same
    assert not layout.sscc_meets_gs1
    assert "below the GS1" in shipping_label_zpl(sample_label(), size, dpi)


def test_a_size_declared_conforming_refuses_a_symbol_that_cannot_conform():
    symbol = code128.sscc_symbol(sample_label().sscc)
    with pytest.raises(LabelLayoutError, match="needs"):
        sscc_barcode(symbol, 0, 600, 0, 300, 203, SIZES["100x150"])  # 75 mm wide
    with pytest.raises(LabelLayoutError, match="31.75"):
        sscc_barcode(symbol, 0, 780, 0, 250, 203, SIZES["100x150"])  # 31.3 mm high
    narrow = sscc_barcode(symbol, 0, 600, 0, 300, 203, SIZES["76x130"])
    assert narrow.module == 3


# ---------------------------------------------------------------- the PDF as drawn


def pdf_rects_mm(pdf: bytes, page_height_mm: float) -> list[tuple[float, float, float, float]]:
    """Every filled `re` rectangle of page 1 as (x, y from the top, w, h) in mm."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    ops = pypdf.generic.ContentStream(reader.pages[0].get_contents(), reader).operations
    k = 1 / mm
    return [
        (float(x) * k, page_height_mm - (float(y) + float(h)) * k, float(w) * k, float(h) * k)
        for operands, op in ops if op == b"re"
        for x, y, w, h in [operands]
    ]


@pytest.mark.parametrize(("size", "dpi"), CASES)
def test_the_pdf_draws_the_sscc_bars_at_gs1_height_and_width(size, dpi):
    label = sample_label()
    layout = shipping_label_layout(label, size, dpi)
    rects = pdf_rects_mm(shipping_label_pdf(label, size, dpi), layout.size.height_mm)
    _, top, _, height = (mm_of(v, dpi) for v in layout.regions["sscc"])
    # tall rectangles inside the bottom block, apart from the frame: the SSCC's bars
    bars = sorted(r for r in rects if r[1] >= top - 0.01 and r[1] + r[3] <= top + height + 0.01
                  and 20 < r[3] < 60)
    assert len(bars) == len(layout.barcode("sscc").symbol.bars())
    x_mm = min(w for _, _, w, _ in bars)  # the narrowest bar is one module
    assert min(h for *_, h in bars) >= MIN_BAR_HEIGHT_MM
    assert x_mm <= MAX_X_MM
    if SIZES[size].sscc_meets_gs1:
        assert x_mm >= MIN_X_MM - 1e-6
    # quiet zones: no ink within 10X of the first and last bar across the bars' height
    left, right = bars[0][0], bars[-1][0] + bars[-1][2]
    y0, y1 = bars[0][1], bars[0][1] + bars[0][3]
    for x, y, w, h in rects:
        if (x, y, w, h) in bars or y >= y1 or y + h <= y0:
            continue
        assert x + w <= left - QUIET_X * x_mm + 1e-6 or x >= right + QUIET_X * x_mm - 1e-6, (x, y, w, h)


@pytest.mark.parametrize(("size", "dpi"), CASES)
def test_the_printed_sscc_bars_measure_31_75_mm(size, dpi, render):
    """The page rasterised at the printer's resolution: a column through a bar
    is dark for at least 31.75 mm."""
    label = sample_label()
    layout = shipping_label_layout(label, size, dpi)
    bc = layout.barcode("sscc")
    image = render(shipping_label_pdf(label, size, dpi), dpi)
    offset, width = max(bc.symbol.bars(), key=lambda bar: bar[1])
    x = bc.x + (offset * 2 + width) * bc.module // 2
    column = [image.getpixel((x, y)) < 128 for y in range(image.height)]
    y = bc.y + bc.height // 2
    top, bottom = y, y
    while column[top - 1]:
        top -= 1
    while column[bottom + 1]:
        bottom += 1
    assert mm_of(bottom - top + 1, dpi) >= MIN_BAR_HEIGHT_MM
    # and the narrowest bar is as wide as the module the layout chose
    row = [image.getpixel((px, y)) < 128 for px in range(bc.x, bc.x + bc.width)]
    runs, n = [], 1
    for a, b in zip(row, row[1:]):
        if a == b:
            n += 1
        else:
            runs.append((a, n))
            n = 1
    runs.append((row[-1], n))
    assert min(n for dark, n in runs if dark) == bc.module


# ---------------------------------------------------------------- ZPL


def zpl_sscc(zpl: str) -> tuple[int, int, int, int, int, str]:
    """(^BY module, ^BY height, ^FO x, ^FO y, ^BC height, field data) of the GS1-128 field."""
    pattern = r"\^BY(\d+),3,(\d+)\^FO(\d+),(\d+)\^BCN,(\d+),N,N,N,N\^FD(>;>8[^\^]*)\^FS"
    [found] = re.findall(pattern, zpl)
    return (*map(int, found[:5]), found[5])


@pytest.mark.parametrize(("size", "dpi"), CASES)
def test_zpl_asks_the_printer_for_a_gs1_module_and_bar_height(size, dpi):
    label = sample_label()
    zpl = shipping_label_zpl(label, size, dpi)
    module, by_height, x, y, bc_height, field = zpl_sscc(zpl)

    assert field == ">;>800" + label.sscc
    assert by_height == bc_height
    assert mm_of(bc_height, dpi) >= MIN_BAR_HEIGHT_MM
    assert mm_of(module, dpi) <= MAX_X_MM
    if SIZES[size].sscc_meets_gs1:
        assert mm_of(module, dpi) >= MIN_X_MM
        assert "below the GS1" not in zpl
    # 10X quiet zones inside the frame (the first ^GB with a line thickness)
    fx, _, fw, _, t = map(int, re.search(r"\^FO(\d+),(\d+)\^GB(\d+),(\d+),(\d+),B,0\^FS", zpl).groups())
    assert t < fw
    symbol_dots = (11 * (2 + len(label.sscc + "00") // 2 + 1) + 13) * module
    assert x - QUIET_X * module >= fx + t
    assert x + symbol_dots + QUIET_X * module <= fx + fw - t
    # no other field starts inside the symbol's area
    for fo_x, fo_y in re.findall(r"\^FO(\d+),(\d+)", zpl):
        fo_x, fo_y = int(fo_x), int(fo_y)
        if (fo_x, fo_y) != (x, y):
            assert not (x - QUIET_X * module <= fo_x < x + symbol_dots + QUIET_X * module
                        and y <= fo_y < y + bc_height), (fo_x, fo_y)


# ---------------------------------------------------------------- nothing overlaps


def ink_boxes(layout) -> list[tuple[str, tuple[int, int, int, int], object]]:
    """(kind, (x, y, w, h), item) of everything drawn but the outer frame; a
    barcode or QR code with its quiet zones, a text by its drawn extent."""
    out = []
    for item in layout.items:
        if isinstance(item, Box):
            if item.filled:
                out.append(("box", (item.x, item.y, item.w, item.h), item))
        elif isinstance(item, Barcode):
            q = QUIET_X * item.module
            out.append(("barcode", (item.x - q, item.y, item.width + 2 * q, item.height), item))
        elif isinstance(item, QRCode):
            q = 4 * item.module
            out.append(("qr", (item.x - q, item.y - q, item.width + 2 * q, item.width + 2 * q), item))
        elif isinstance(item, Text):
            w = text_width(item.text, item.font, item.size)
            x = item.x + {"left": 0, "center": (item.width - w) / 2, "right": item.width - w}[item.align]
            out.append(("text", (x, item.y, w, item.size), item))
    return out


def overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def inside(inner, outer) -> bool:
    return (outer[0] <= inner[0] and inner[0] + inner[2] <= outer[0] + outer[2]
            and outer[1] <= inner[1] and inner[1] + inner[3] <= outer[1] + outer[3])


@pytest.mark.parametrize(("size", "dpi"), CASES)
@pytest.mark.parametrize("make", [sample_label, long_label], ids=["sample", "long"])
def test_nothing_on_the_label_overlaps_and_everything_stays_inside_the_frame(size, dpi, make):
    layout = shipping_label_layout(make(), size, dpi)
    frame = next(i for i in layout.items if isinstance(i, Box) and not i.filled)
    t = frame.thickness
    inner = (frame.x + t, frame.y + t, frame.w - 2 * t, frame.h - 2 * t)
    assert 0 <= frame.x and frame.x + frame.w <= layout.width and frame.y + frame.h <= layout.height
    boxes = ink_boxes(layout)
    for kind, box, item in boxes:
        assert inside(box, (inner[0] - 0.5, inner[1] - 0.5, inner[2] + 1, inner[3] + 1)), (kind, item)
    for i, (kind_a, a, item_a) in enumerate(boxes):
        for kind_b, b, item_b in boxes[i + 1:]:
            white_on_black = {kind_a, kind_b} == {"text", "box"} and any(
                isinstance(t_, Text) and t_.inverse and inside(tb, bb)
                for t_, tb, bb in ((item_a, a, b), (item_b, b, a)))
            if not white_on_black:
                assert not overlap(a, b), (item_a, item_b)


# ---------------------------------------------------------------- the label test command


def test_label_test_warns_that_a_76x130_sscc_is_below_gs1_spec(tmp_path):
    out = tmp_path / "label.pdf"
    small = CliRunner().invoke(label_test, ["--out", str(out), "--size", "76x130"])
    large = CliRunner().invoke(label_test, ["--out", str(out), "--size", "100x150"])
    assert small.exit_code == large.exit_code == 0
    assert "below the GS1 minimum of 0.495 mm" in small.output and "X = 0.375 mm" in small.output
    assert "GS1" not in large.output
