"""Shipping labels as PDF: rasterised like a printer driver would (pdftoppm at
203 and 300 dpi, 1-bit and greyscale) and read back like a scanner would."""

from __future__ import annotations

import dataclasses
import io

import biip
import pypdf
import pytest
import zxingcpp
from reportlab.lib.units import mm

from printing.data import Address, sample_label
from printing.gs1 import make_sscc
from printing.labels import batch_labels_pdf, shipping_label_pdf
from printing.layout import (
    Barcode,
    LabelLayoutError,
    QRCode,
    Text,
    shipping_label_layout,
    text_width,
)

SIZES = ["100x150", "76x130"]
DPIS = [203, 300]
# module (narrow bar) widths in dots, by design: ≈0.5 mm on 100x150 (SSCC: GS1 X ≥ 0.495 mm), ≈0.375 mm on
# 76x130 (SSCC: the widest that fits, below GS1; see test_printing_sscc_gs1.py)
TRACKING_MODULE = {("100x150", 203): 4, ("100x150", 300): 6, ("76x130", 203): 3, ("76x130", 300): 4}
SSCC_MODULE = {("100x150", 203): 4, ("100x150", 300): 6, ("76x130", 203): 3, ("76x130", 300): 4}


def other_label():
    return dataclasses.replace(
        sample_label(),
        tracking_number="SF1402876543211",
        tracking_url="https://www.sf-express.com/chn/sc/waybill/list?no=SF1402876543211",
        sscc=make_sscc("6901234", 1234568),
    )


def by_kind(barcodes):
    linear = [b for b in barcodes if b.format == zxingcpp.BarcodeFormat.Code128]
    qr = [b for b in barcodes if b.format == zxingcpp.BarcodeFormat.QRCode]
    gs1 = [b for b in linear if b.symbology_identifier == "]C1"]
    plain = [b for b in linear if b.symbology_identifier == "]C0"]
    return plain, gs1, qr


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("label_dpi", DPIS)
@pytest.mark.parametrize("render_dpi", DPIS)
def test_every_barcode_on_the_label_scans_to_what_was_meant(size, label_dpi, render_dpi, render, scan_plain):
    label = sample_label()
    pdf = shipping_label_pdf(label, size, dpi=label_dpi)
    # the printer's own resolution as a 1-bit raster; the other resolution in greys
    image = render(pdf, render_dpi, "mono" if render_dpi == label_dpi else "gray")

    plain, gs1, qr = by_kind(scan_plain(image))

    assert [b.text for b in plain] == [label.tracking_number]
    assert [b.text for b in qr] == [label.tracking_url]
    assert len(gs1) == 1
    parsed = biip.parse(gs1[0].symbology_identifier + gs1[0].text)
    assert parsed.symbology_identifier.gs1_symbology == biip.symbology.GS1Symbology.GS1_128
    assert parsed.sscc is not None, parsed.sscc_error
    assert parsed.sscc.value == label.sscc
    assert [e.ai.ai for e in parsed.gs1_message.element_strings] == ["00"]


def test_a_scan_is_compared_with_the_intended_label_not_any_label(render, scan):
    a, b = sample_label(), other_label()
    image = render(shipping_label_pdf(a), 203)

    plain, gs1, _ = by_kind(scan(image))

    assert plain[0].text == a.tracking_number
    assert plain[0].text != b.tracking_number  # one digit apart
    assert gs1[0].text == f"(00){a.sscc}"
    assert gs1[0].text != f"(00){b.sscc}"


def test_the_scanner_reports_gs1_in_human_readable_form_too(render, scan):
    label = sample_label()
    _, gs1, _ = by_kind(scan(render(shipping_label_pdf(label), 300, "gray")))
    assert gs1[0].text == f"(00){label.sscc}"
    assert gs1[0].content_type == zxingcpp.ContentType.GS1


def barcode_row(image, bc: Barcode):
    y = bc.y + bc.height // 2
    return [image.getpixel((x, y)) for x in range(image.width)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dpi", DPIS)
@pytest.mark.parametrize("name", ["tracking", "sscc"])
def test_bars_are_whole_printer_dots_with_quiet_zones(size, dpi, name, render, row_runs):
    label = sample_label()
    layout = shipping_label_layout(label, size, dpi)
    bc = layout.barcode(name)
    expected_module = (TRACKING_MODULE if name == "tracking" else SSCC_MODULE)[(size, dpi)]
    image = render(shipping_label_pdf(label, size, dpi), dpi, "gray")

    row = barcode_row(image, bc)
    all_runs = row_runs(row)
    inside = [r for r in all_runs if bc.x <= r[1] < bc.x + bc.width]
    widths_px = [length for _, _, length in inside]

    assert bc.module == expected_module >= 2
    # every bar and space is exactly its module count times the module, in pixels = dots
    assert widths_px == [w * bc.module for w in bc.symbol.widths]
    assert min(length for is_dark, _, length in inside if is_dark) == bc.module
    # no grey: edges fall on pixel boundaries
    assert all(p in (0, 255) for p in row[bc.x - 2: bc.x + bc.width + 2])
    # quiet zones: white for ≥ 10 modules on both sides, up to the frame's ink
    before = [r for r in all_runs if r[1] + r[2] == bc.x][0]
    after = [r for r in all_runs if r[1] == bc.x + bc.width][0]
    assert not before[0] and not after[0]
    assert before[2] >= 10 * bc.module and after[2] >= 10 * bc.module
    assert before[1] > 0 and after[1] + after[2] < image.width  # bounded by ink, i.e. measured, not the page edge


def filled_rects_in_dots(pdf: bytes, dpi: int, page_height_mm: float):
    """Every `re` rectangle of the page, as (x, y_from_top, w, h) in printer dots (unrounded)."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    ops = pypdf.generic.ContentStream(reader.pages[0].get_contents(), reader).operations
    k = dpi / 72
    page_h = page_height_mm * mm
    return [
        (float(x) * k, (page_h - float(y) - float(h)) * k, float(w) * k, float(h) * k)
        for operands, op in ops if op == b"re"
        for x, y, w, h in [operands]
    ]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dpi", DPIS)
def test_bars_in_the_pdf_start_and_end_on_whole_dots(size, dpi):
    """pdftoppm snaps rectangle edges to pixels, so the raster alone cannot show
    a bar that sits between dots; the PDF's own geometry can."""
    label = sample_label()
    layout = shipping_label_layout(label, size, dpi)
    rects = filled_rects_in_dots(shipping_label_pdf(label, size, dpi), dpi, layout.size.height_mm)
    for name in ("tracking", "sscc"):
        bc = layout.barcode(name)
        bars = [r for r in rects if abs(r[1] - bc.y) < 0.01 and abs(r[3] - bc.height) < 0.01]
        assert [(round(x, 3), round(w, 3)) for x, _, w, _ in bars] == [
            (bc.x + offset * bc.module, width * bc.module) for offset, width in bc.symbol.bars()
        ]


@pytest.mark.parametrize("dpi", DPIS)
def test_qr_modules_are_whole_dots_too(dpi):
    label = sample_label()
    layout = shipping_label_layout(label, "100x150", dpi)
    qr = layout.qr
    rects = filled_rects_in_dots(shipping_label_pdf(label, "100x150", dpi), dpi, 150)
    cells = [r for r in rects if qr.x - 0.01 <= r[0] < qr.x + qr.width and qr.y - 0.01 <= r[1] < qr.y + qr.width]

    def whole_modules(value):
        return abs(value / qr.module - round(value / qr.module)) < 1e-3

    assert qr.module >= 2
    assert sum(round(w) * round(h) for _, _, w, h in cells) == qr.module ** 2 * sum(map(sum, qr.matrix))
    for x, y, w, h in cells:
        assert whole_modules(x - qr.x) and whole_modules(y - qr.y) and whole_modules(w)
        assert h == pytest.approx(qr.module, abs=1e-3)


def test_pdf_page_is_the_label_size_in_millimetres():
    for size, (w, h) in {"100x150": (100, 150), "76x130": (76, 130)}.items():
        page = pypdf.PdfReader(io.BytesIO(shipping_label_pdf(sample_label(), size))).pages[0]
        assert float(page.mediabox.width) == pytest.approx(w * mm, abs=0.01)
        assert float(page.mediabox.height) == pytest.approx(h * mm, abs=0.01)


def pdf_text(pdf: bytes) -> str:
    return "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)


@pytest.mark.parametrize("size", SIZES)
def test_chinese_text_is_in_the_pdf_and_the_phone_is_masked(size):
    text = pdf_text(shipping_label_pdf(sample_label(), size))

    for expected in ("王小明", "浦东新区", "世纪大道100号", "上海浦东仓", "顺丰速运", "标准快递", "138****0000",
                     "SF1402876543210", "TB20240601123456", "FF20240601-0007-1", "1/2", "1.25 kg",
                     "(00) 0 6901234 001234567 9"):
        assert expected in text.replace("\n", ""), expected
    assert "13800000000" not in text


def test_the_cjk_font_is_embedded():
    reader = pypdf.PdfReader(io.BytesIO(shipping_label_pdf(sample_label())))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    embedded = []
    for ref in fonts.values():
        font = ref.get_object()
        descriptor = font.get("/FontDescriptor")
        if descriptor is not None and "/FontFile2" in descriptor.get_object():
            embedded.append(str(font["/BaseFont"]))
    assert any("wqy" in name.lower() or "cjk" in name.lower() or "microhei" in name.lower() for name in embedded), \
        embedded


def test_chinese_text_is_visible_not_blank_or_boxes(render):
    """Render two labels whose addresses differ in two Chinese characters: the
    address region must be inked, and inked differently (missing glyphs would
    draw the same empty boxes for both)."""
    a = sample_label()
    b = dataclasses.replace(a, ship_to=dataclasses.replace(a.ship_to, line1="南京西路100号 环球金融中心25楼2501室"))
    layout = shipping_label_layout(a, "100x150", 203)
    assert layout.regions["ship_to_address"] == shipping_label_layout(b, "100x150", 203).regions["ship_to_address"]
    x, y, w, h = layout.regions["ship_to_address"]

    img_a = render(shipping_label_pdf(a), 203).crop((x, y, x + w, y + h))
    img_b = render(shipping_label_pdf(b), 203).crop((x, y, x + w, y + h))
    no_address = dataclasses.replace(a, ship_to=dataclasses.replace(
        a.ship_to, province="", city="", district="", line1=""))
    blank = render(shipping_label_pdf(no_address), 203).crop((x, y, x + w, y + h))

    ink_a = sum(1 for p in img_a.tobytes() if p < 128)
    differing = sum(1 for pa, pb in zip(img_a.tobytes(), img_b.tobytes()) if (pa < 128) != (pb < 128))
    assert ink_a > 0.08 * w * h
    assert differing > 0.01 * w * h
    assert sum(1 for p in blank.tobytes() if p < 128) < 0.01 * ink_a


def test_batch_prints_one_label_per_page_each_with_its_own_barcode(render, scan):
    labels = [sample_label(1, 3), dataclasses.replace(other_label(), parcel_no=2, parcel_count=3),
              dataclasses.replace(sample_label(3, 3), tracking_number="SF1402876543212",
                                  sscc=make_sscc("6901234", 1234569))]
    pdf = batch_labels_pdf(labels, "76x130", 203)

    assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages) == 3
    page2, _, _ = by_kind(scan(render(pdf, 203, page=2)))
    page3, gs1, _ = by_kind(scan(render(pdf, 203, page=3)))
    assert page2[0].text == "SF1402876543211"
    assert page3[0].text == "SF1402876543212"
    assert gs1[0].text == "(00)" + labels[2].sscc


def test_an_empty_batch_is_refused():
    with pytest.raises(ValueError):
        batch_labels_pdf([], "100x150")


def test_same_city_parcels_are_marked():
    same_city = dataclasses.replace(sample_label(), same_city=True)
    assert "同城配送" in pdf_text(shipping_label_pdf(same_city))
    assert "同城配送" not in pdf_text(shipping_label_pdf(sample_label()))


def long_label():
    return dataclasses.replace(
        sample_label(),
        carrier_name="中通快递股份有限公司华东大区上海转运中心",
        ship_to=Address(
            name="欧阳娜娜娜娜娜娜娜娜娜娜娜娜娜娜",
            phone="+86 139 1234 5678",
            province="新疆维吾尔自治区",
            city="伊犁哈萨克自治州",
            district="霍尔果斯市",
            line1="亚欧南路88号 霍尔果斯国际边境合作中心 中方配套区 跨境电商产业园 7号楼 东侧 3单元 1502室 请放快递柜",
            postal_code="835221",
        ),
        order_ref="PDD-240601-8888888888888888888",
    )


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dpi", DPIS)
def test_long_chinese_text_shrinks_or_wraps_inside_its_block(size, dpi):
    layout = shipping_label_layout(long_label(), size, dpi)
    frame = [i for i in layout.items if not isinstance(i, (Text, Barcode, QRCode))][0]
    right = frame.x + frame.w - frame.thickness
    for t in layout.texts():
        width = t.width if t.align != "left" else text_width(t.text, t.font, t.size)
        assert t.x >= frame.x + frame.thickness, t
        assert t.x + width <= right + 1, t
    x, y, w, h = layout.regions["ship_to"]
    for t in layout.texts():
        if y <= t.y < y + h:
            assert t.y + t.size <= y + h, t  # nothing runs into the next block


def test_a_long_label_still_scans(render, scan):
    label = long_label()
    plain, gs1, qr = by_kind(scan(render(shipping_label_pdf(label, "76x130", 203), 203)))
    assert [b.text for b in plain] == [label.tracking_number]
    assert gs1[0].text == f"(00){label.sscc}"
    text = pdf_text(shipping_label_pdf(label, "76x130")).replace("\n", "")
    assert "伊犁哈萨克自治州" in text
    assert "1502室" in text and "请放快递柜" in text  # a long address shrinks and wraps; it is never cut


def test_a_tracking_number_too_long_for_the_label_is_refused():
    label = dataclasses.replace(sample_label(), tracking_number="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop")
    with pytest.raises(LabelLayoutError, match="does not fit"):
        shipping_label_pdf(label, "76x130", 203)


@pytest.mark.parametrize(("size", "dpi"), [("A6", 203), ("100x150", 600)])
def test_unknown_sizes_and_resolutions_are_refused(size, dpi):
    with pytest.raises(ValueError):
        shipping_label_pdf(sample_label(), size, dpi)


def test_label_data_refuses_impossible_parcels():
    with pytest.raises(ValueError, match="parcel 3 of 2"):
        dataclasses.replace(sample_label(), parcel_no=3)
    with pytest.raises(ValueError, match="weight"):
        dataclasses.replace(sample_label(), weight_g=-1)
    with pytest.raises(ValueError, match="tracking number"):
        dataclasses.replace(sample_label(), tracking_number="SF 123")
