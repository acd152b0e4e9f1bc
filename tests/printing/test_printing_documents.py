"""A4 documents: the handover manifest the courier signs, the packing slip."""

from __future__ import annotations

import io

import pypdf
import pytest
import zxingcpp
from reportlab.lib.units import mm

from printing.data import ManifestData, sample_manifest, sample_packing_slip
from printing.labels import manifest_pdf, packing_slip_pdf


def pdf_pages(pdf: bytes) -> list[str]:
    return [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def page_rects(pdf: bytes) -> list[tuple[float, float, float, float]]:
    """Rectangles of page 1 in page coordinates (points), following q/Q and
    the translations platypus uses to place flowables."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    ops = pypdf.generic.ContentStream(reader.pages[0].get_contents(), reader).operations
    stack, (tx, ty), rects = [], (0.0, 0.0), []
    for operands, op in ops:
        if op == b"q":
            stack.append((tx, ty))
        elif op == b"Q":
            tx, ty = stack.pop()
        elif op == b"cm":
            a, b, c, d, e, f = map(float, operands)
            assert (a, b, c, d) == (1, 0, 0, 1), "only translations expected"
            tx, ty = tx + e, ty + f
        elif op == b"re":
            x, y, w, h = map(float, operands)
            rects.append((tx + x, ty + y, w, h))
    return rects


@pytest.mark.parametrize("document", ["manifest", "packing slip"])
def test_a4_barcodes_put_bar_edges_on_the_300_dpi_grid(document):
    pdf = manifest_pdf(sample_manifest(3)) if document == "manifest" else packing_slip_pdf(sample_packing_slip())
    bars = [r for r in page_rects(pdf) if r[3] == pytest.approx(14 * mm)]
    dot = 72 / 300
    assert len(bars) > 20
    for x, _, w, _ in bars:
        assert x / dot == pytest.approx(round(x / dot), abs=1e-3)
        assert w / dot == pytest.approx(round(w / dot), abs=1e-3) and round(w / dot) % 4 == 0


def code128(barcodes):
    return [b for b in barcodes if b.format == zxingcpp.BarcodeFormat.Code128]


@pytest.mark.parametrize("render_dpi", [203, 300])
@pytest.mark.parametrize("mode", ["mono", "gray"])
def test_manifest_handover_barcode_scans_to_the_handover_ref(render_dpi, mode, render, scan):
    manifest = sample_manifest(8)
    image = render(manifest_pdf(manifest), render_dpi, mode)

    [read] = code128(scan(image))

    assert read.text == manifest.handover_ref
    assert read.text != sample_manifest(8).handover_ref.replace("003", "004")


def test_manifest_barcode_bars_are_whole_dots_at_300_dpi(render, row_runs):
    image = render(manifest_pdf(sample_manifest(3), dpi=300), 300, "gray")
    [read] = code128(zxingcpp.read_barcodes(image))
    top, bottom = read.position.top_left.y, read.position.bottom_left.y
    row = [image.getpixel((x, (top + bottom) // 2)) for x in range(image.width)]
    left, right = read.position.top_left.x, read.position.top_right.x
    bars = [length for is_dark, start, length in row_runs(row) if is_dark and left - 2 <= start <= right + 2]
    module = min(bars)
    assert module == 4  # ≈0.33 mm at 300 dpi
    assert all(length % module == 0 for length in bars)


def test_manifest_lists_every_parcel_across_pages_and_ends_with_signatures():
    manifest = sample_manifest(70)
    pages = pdf_pages(manifest_pdf(manifest))
    text = "\n".join(pages)

    assert len(pages) >= 2
    assert "交接单" in pages[0] and "顺丰速运" in pages[0] and "上海浦东仓" in pages[0]
    for parcel in manifest.parcels:
        assert parcel.tracking_number in text
        assert parcel.sscc in text
    assert f"共 {len(manifest.parcels)} 件" in text
    assert f"{manifest.total_weight_g / 1000:.2f}" in pages[-1]
    assert "承运人签收" in pages[-1] and "仓库交接人" in pages[-1]
    assert "2024-06-01 16:05" in pages[0] and "2024-06-01 17:42" in pages[0]
    assert pages[1].count("运单号") == 1  # the table header repeats on each page


def test_an_open_handover_with_no_parcels_still_prints():
    manifest = ManifestData("HO-EMPTY-1", "京东物流", "北京亦庄仓", sample_manifest(0).opened_at, None, ())
    text = "\n".join(pdf_pages(manifest_pdf(manifest)))
    assert "HO-EMPTY-1" in text and "共 0 件" in text and "封车 Closed: —" in text


def test_packing_slip_lists_lines_and_scans_to_the_fulfilment(render, scan):
    slip = sample_packing_slip()
    pdf = packing_slip_pdf(slip)
    text = pdf_pages(pdf)[0]

    [read] = code128(scan(render(pdf, 203, "gray")))

    assert read.text == slip.fulfilment_ref
    for line in slip.lines:
        assert line.sku in text
        assert line.name.split()[0] in text
    assert "王小明" in text and "138****0000" in text and "13800000000" not in text
    assert "浦东新区" in text
    assert f"合计 Total {slip.total_quantity}" in text.replace("\n", " ")
