"""PDF output: shipping labels (one per page), packing slips, handover manifests.

Labels are drawn from `layout.shipping_label_layout`, in whole dots of the
target printer, so their barcodes keep whole-dot bars when a thermal printer
(or `pdftoppm -r <dpi>`) rasterises the page at that resolution.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.lib.styles import ParagraphStyle

from . import code128
from .code128 import QUIET_ZONE_MODULES, Code128Symbol
from .data import LabelData, ManifestData, PackingSlipData
from .fonts import LATIN_BOLD_FONT, cjk_font
from .gs1 import mask_phone
from .layout import (
    Barcode,
    Box,
    LabelLayout,
    QRCode,
    Text,
    check_dpi,
    font_name,
    label_size,
    shipping_label_layout,
    text_width,
)

PDF_AUTHOR = "luyue"


# ---------------------------------------------------------------- label pages


class _DotCanvas:
    """Draws a LabelLayout on a reportlab canvas: dots (top-left origin) to points."""

    def __init__(self, canvas: Canvas, layout: LabelLayout) -> None:
        self.c = canvas
        self.k = 72.0 / layout.dpi
        self.page_h = layout.size.height_mm * mm

    def rect(self, x: int, y: int, w: int, h: int) -> None:
        k = self.k
        self.c.rect(x * k, self.page_h - (y + h) * k, w * k, h * k, stroke=0, fill=1)

    def draw(self, layout: LabelLayout) -> None:
        c = self.c
        c.setFillColor(colors.black)
        for item in layout.items:
            if isinstance(item, Box):
                self.box(item)
            elif isinstance(item, Barcode):
                self.barcode(item)
            elif isinstance(item, QRCode):
                self.qr(item)
            elif isinstance(item, Text):
                self.text(item)

    def box(self, b: Box) -> None:
        if b.filled:
            self.rect(b.x, b.y, b.w, b.h)
            return
        t = b.thickness  # a frame as four filled rectangles: crisp, whole dots
        self.rect(b.x, b.y, b.w, t)
        self.rect(b.x, b.y + b.h - t, b.w, t)
        self.rect(b.x, b.y, t, b.h)
        self.rect(b.x + b.w - t, b.y, t, b.h)

    def barcode(self, bc: Barcode) -> None:
        for offset, width in bc.symbol.bars():
            self.rect(bc.x + offset * bc.module, bc.y, width * bc.module, bc.height)

    def qr(self, q: QRCode) -> None:
        for r, row in enumerate(q.matrix):
            c0 = None
            for col, dark in enumerate((*row, False)):
                if dark and c0 is None:
                    c0 = col
                elif not dark and c0 is not None:
                    self.rect(q.x + c0 * q.module, q.y + r * q.module, (col - c0) * q.module, q.module)
                    c0 = None

    def text(self, t: Text) -> None:
        c, k = self.c, self.k
        name = font_name(t.font)
        size_pt = t.size * k
        w = text_width(t.text, t.font, t.size)
        x = t.x
        if t.align == "center":
            x = t.x + (t.width - w) / 2
        elif t.align == "right":
            x = t.x + t.width - w
        baseline = self.page_h - (t.y + t.size * 0.84) * k
        # Text render mode and line width are graphics state that outlives the
        # text object: keep each text in its own q … Q.
        c.saveState()
        obj = c.beginText(x * k, baseline)
        obj.setFont(name, size_pt)
        if t.bold and t.font == "cjk":
            c.setLineWidth(size_pt * 0.028)
            obj.setTextRenderMode(2)  # fill + stroke: a bold weight for a one-weight CJK font
        color = colors.white if t.inverse else colors.black
        obj.setFillColor(color)
        obj.setStrokeColor(color)
        obj.textOut(t.text)
        c.drawText(obj)
        c.restoreState()


def _label_canvas(buf: io.BytesIO, size: str, title: str) -> Canvas:
    sz = label_size(size)
    c = Canvas(buf, pagesize=(sz.width_mm * mm, sz.height_mm * mm), pageCompression=1)
    c.setTitle(title)
    c.setAuthor(PDF_AUTHOR)
    c.setCreator("luyue printing")
    return c


def shipping_label_pdf(label: LabelData, size: str = "100x150", dpi: int = 203) -> bytes:
    """One shipping label as a one-page PDF of exactly `size` millimetres."""
    return batch_labels_pdf([label], size, dpi)


def batch_labels_pdf(labels: Iterable[LabelData], size: str = "100x150", dpi: int = 203) -> bytes:
    """Many labels, one per page, for printing a wave of parcels in one job."""
    check_dpi(dpi)
    labels = list(labels)
    if not labels:
        raise ValueError("no labels to print")
    buf = io.BytesIO()
    title = labels[0].tracking_number if len(labels) == 1 else f"{len(labels)} labels"
    c = _label_canvas(buf, size, f"Shipping label {title}")
    for label in labels:
        layout = shipping_label_layout(label, size, dpi)
        _DotCanvas(c, layout).draw(layout)
        c.showPage()
    c.save()
    return buf.getvalue()


# ---------------------------------------------------------------- A4 documents


class BarcodeFlowable(Flowable):
    """A Code 128 symbol in a flowing A4 document, bars on whole dots at `dpi`.

    Platypus positions flowables at arbitrary points, so the bars are snapped
    to the `dpi` grid of the page when drawn.
    """

    def __init__(self, symbol: Code128Symbol, dpi: int = 300, module_dots: int | None = None,
                 height_mm: float = 14, caption: str | None = None) -> None:
        super().__init__()
        self.symbol = symbol
        self.dpi = dpi
        self.module = module_dots or max(2, round(0.33 * dpi / 25.4))  # ≈ 0.33 mm
        self.bar_h = height_mm * mm
        self.caption = caption
        self.dot = 72.0 / dpi
        self.quiet = QUIET_ZONE_MODULES * self.module
        self.width = (symbol.modules * self.module + 2 * self.quiet) * self.dot
        self.height = self.bar_h + (4.5 * mm if caption else 0)

    def wrap(self, availWidth, availHeight):  # noqa: N802, N803 - reportlab's names
        return self.width, self.height

    def draw(self) -> None:
        c = self.canv
        # where our origin lands on the page, to snap bars to the device dot grid
        ox, _ = c.absolutePosition(0, 0)
        dot = self.dot
        start = round((ox + self.quiet * dot) / dot) * dot - ox
        c.saveState()
        c.setFillColor(colors.black)
        base = 4.5 * mm if self.caption else 0
        for offset, width in self.symbol.bars():
            c.rect(start + offset * self.module * dot, base, width * self.module * dot, self.bar_h, stroke=0, fill=1)
        if self.caption:
            c.setFont(LATIN_BOLD_FONT, 9)
            c.drawCentredString(self.width / 2, 1 * mm, self.caption)
        c.restoreState()


def _styles() -> dict[str, ParagraphStyle]:
    cjk = cjk_font().name
    return {
        "title": ParagraphStyle("title", fontName=cjk, fontSize=17, leading=22),
        "body": ParagraphStyle("body", fontName=cjk, fontSize=10, leading=14),
        "small": ParagraphStyle("small", fontName=cjk, fontSize=8.5, leading=11, textColor=colors.HexColor("#333333")),
        "name": ParagraphStyle("name", fontName=cjk, fontSize=13, leading=18),
        "cell": ParagraphStyle("cell", fontName=cjk, fontSize=9.5, leading=12),
    }


def _fmt_time(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M") if t else "—"


def _kg(weight_g: int) -> str:
    return f"{weight_g / 1000:.2f}"


def _a4_doc(buf: io.BytesIO, title: str) -> SimpleDocTemplate:
    return SimpleDocTemplate(buf, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=14 * mm,
                             bottomMargin=16 * mm, title=title, author=PDF_AUTHOR, creator="luyue printing")


def _page_footer(text: str):
    def draw(c: Canvas, doc) -> None:
        c.saveState()
        c.setFont(cjk_font().name, 8)
        c.setFillColor(colors.HexColor("#555555"))
        c.drawString(15 * mm, 9 * mm, text)
        c.drawRightString(A4[0] - 15 * mm, 9 * mm, f"第 {doc.page} 页")
        c.restoreState()

    return draw


_CONTENT_WIDTH = A4[0] - 30 * mm
_HEAD_STYLE = TableStyle([
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LEFTPADDING", (0, 0), (-1, -1), 0),
    ("RIGHTPADDING", (0, 0), (-1, -1), 0),
])

_GRID = [
    ("FONTNAME", (0, 0), (-1, -1), None),  # filled in per document
    ("FONTSIZE", (0, 0), (-1, -1), 9.5),
    ("LINEBELOW", (0, 0), (-1, 0), 1.2, colors.black),
    ("LINEBELOW", (0, 1), (-1, -1), 0.3, colors.HexColor("#999999")),
    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ("TOPPADDING", (0, 0), (-1, -1), 4),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
]


def _grid_style(extra: list) -> TableStyle:
    """Header row ruled thick, body rows ruled thin, CJK font throughout."""
    cjk = cjk_font().name
    base = [(k, a, b, cjk) if k == "FONTNAME" else (k, a, b, *rest) for k, a, b, *rest in _GRID]
    return TableStyle(base + extra)


def _plain_style(extra: list) -> TableStyle:
    """No rules, CJK font: for totals and signature blocks."""
    return TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), cjk_font().name),
        ("FONTSIZE", (0, 0), (-1, -1), 9.5),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 4),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
    ] + extra)


def manifest_pdf(manifest: ManifestData, dpi: int = 300) -> bytes:
    """The A4 handover manifest (交接单) the courier signs when taking the parcels.

    `dpi` is the office printer's resolution the handover barcode is drawn for
    (300 also stays whole at 600).
    """
    check_dpi(dpi)
    st = _styles()
    buf = io.BytesIO()
    doc = _a4_doc(buf, f"Handover manifest {manifest.handover_ref}")
    barcode = BarcodeFlowable(code128.encode(manifest.handover_ref), dpi=dpi, caption=manifest.handover_ref)
    head = Table(
        [[
            [Paragraph("交接单 Handover manifest", st["title"]), Spacer(1, 2 * mm),
             Paragraph(f"承运商 Carrier: {_esc(manifest.carrier_name)}", st["body"]),
             Paragraph(f"发货节点 Node: {_esc(manifest.node_name)}", st["body"]),
             Paragraph(f"开始 Opened: {_fmt_time(manifest.opened_at)}", st["body"]),
             Paragraph(f"封车 Closed: {_fmt_time(manifest.closed_at)}", st["body"]),
             Paragraph(f"件数 Parcels: {len(manifest.parcels)}　　"
                       f"总重 Total weight: {_kg(manifest.total_weight_g)} kg", st["body"])],
            barcode,
        ]],
        colWidths=[_CONTENT_WIDTH - barcode.width, barcode.width],
        style=_HEAD_STYLE,
    )
    widths = [10 * mm, 42 * mm, 50 * mm, 57 * mm, 21 * mm]
    rows = [["#", "运单号 Tracking", "SSCC", "履约单 Fulfilment", "重量 kg"]]
    for i, p in enumerate(manifest.parcels, start=1):
        rows.append([str(i), p.tracking_number, f"(00) {p.sscc}", p.fulfilment_ref, _kg(p.weight_g)])
    if not manifest.parcels:
        rows.append(["", "（无包裹 no parcels）", "", "", ""])
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(_grid_style([
        ("ALIGN", (0, 0), (0, -1), "RIGHT"),
        ("ALIGN", (-1, 0), (-1, -1), "RIGHT"),
    ]))
    total = Table(
        [["", f"共 {len(manifest.parcels)} 件 parcels", "", "", f"{_kg(manifest.total_weight_g)}"]],
        colWidths=widths,
        style=_plain_style([
            ("LINEABOVE", (0, 0), (-1, 0), 1.2, colors.black),
            ("ALIGN", (-1, 0), (-1, -1), "RIGHT"),
            ("FONTNAME", (-1, 0), (-1, 0), LATIN_BOLD_FONT),
        ]),
    )
    sign = Table(
        [["仓库交接人 Handed over by", "", "承运人签收 Courier signature", ""],
         ["日期时间 Date & time", "", "日期时间 Date & time", ""]],
        colWidths=[42 * mm, 45 * mm, 50 * mm, 43 * mm],
        rowHeights=[16 * mm, 12 * mm],
        style=_plain_style([
            ("LINEBELOW", (1, 0), (1, -1), 0.8, colors.black),
            ("LINEBELOW", (3, 0), (3, -1), 0.8, colors.black),
            ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
            ("FONTSIZE", (0, 0), (-1, -1), 9),
        ]),
    )
    note = Paragraph("承运人签字即确认已按上表件数收取包裹。The courier's signature confirms receipt of the "
                     "parcels listed above.", st["small"])
    doc.build(
        [head, Spacer(1, 6 * mm), table,
         KeepTogether([total, Spacer(1, 10 * mm), note, Spacer(1, 2 * mm), sign])],
        onFirstPage=_page_footer(f"luyue · {manifest.handover_ref}"),
        onLaterPages=_page_footer(f"luyue · {manifest.handover_ref}"),
    )
    return buf.getvalue()


def packing_slip_pdf(slip: PackingSlipData, dpi: int = 300) -> bytes:
    """An A4 packing slip (装箱单) to put in the parcel; the fulfilment ref is a
    Code 128 barcode the pack station can scan."""
    check_dpi(dpi)
    st = _styles()
    buf = io.BytesIO()
    doc = _a4_doc(buf, f"Packing slip {slip.fulfilment_ref}")
    to = slip.ship_to
    barcode = BarcodeFlowable(code128.encode(slip.fulfilment_ref), dpi=dpi, caption=slip.fulfilment_ref)
    head = Table(
        [[
            [Paragraph("装箱单 Packing slip", st["title"]), Spacer(1, 2 * mm),
             Paragraph(f"订单号 Order: {_esc(slip.order_ref)}", st["body"]),
             Paragraph(f"履约单 Fulfilment: {_esc(slip.fulfilment_ref)}", st["body"]),
             *([Paragraph(f"发货节点 From: {_esc(slip.node_name)}", st["body"])] if slip.node_name else [])],
            barcode,
        ]],
        colWidths=[_CONTENT_WIDTH - barcode.width, barcode.width],
        style=_HEAD_STYLE,
    )
    ship_to = [
        Paragraph("收货人 Ship to", st["small"]),
        Paragraph(f"{_esc(to.name)}　{_esc(mask_phone(to.phone))}", st["name"]),
        Paragraph(_esc(to.full_text()) + (f"　{_esc(to.postal_code)}" if to.postal_code else ""), st["body"]),
    ]
    rows = [["#", "SKU", "商品 Item", "数量 Qty"]]
    for i, line in enumerate(slip.lines, start=1):
        rows.append([str(i), line.sku, Paragraph(_esc(line.name), st["cell"]), str(line.quantity)])
    rows.append(["", "", "合计 Total", str(slip.total_quantity)])
    table = Table(rows, colWidths=[10 * mm, 38 * mm, 108 * mm, 24 * mm], repeatRows=1)
    table.setStyle(_grid_style([
        ("ALIGN", (0, 0), (0, -1), "RIGHT"),
        ("ALIGN", (-1, 0), (-1, -1), "RIGHT"),
        ("LINEABOVE", (0, -1), (-1, -1), 1.2, colors.black),
    ]))
    doc.build(
        [head, Spacer(1, 6 * mm), *ship_to, Spacer(1, 6 * mm), table, Spacer(1, 8 * mm),
         Paragraph("感谢您的购买。如有商品问题，请联系客服并提供订单号。", st["small"])],
        onFirstPage=_page_footer(f"luyue · {slip.fulfilment_ref}"),
        onLaterPages=_page_footer(f"luyue · {slip.fulfilment_ref}"),
    )
    return buf.getvalue()


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
