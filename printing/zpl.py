"""The shipping label as native ZPL II, for Zebra-compatible thermal printers
reached on raw TCP port 9100.

It is written from the same dot layout as the PDF (`layout.py`), so the two
look alike and every Code 128 symbol is the very same sequence of symbol
characters: the code set choices of our encoder are passed to `^BC` in its
"no mode" (N) with ZPL invocation codes (`>:` start B, `>;` start C, `>5`
code C, `>6` code B, `>8` FNC1). The SSCC is GS1-128: `>;>800…` starts in
code set C with FNC1, so scanners read `]C1 00…`; `^BY` carries its module
(X ≥ 0.495 mm on a 100x150 label, see `layout.SSCC_MIN_X_MM`) and `^BC` its
bar height (≥ 31.75 mm).

Chinese text is UTF-8 (`^CI28`) in a scalable CJK font called by name with
`^A@`. Zebra's Simplified Chinese font is `ANMDS.TTF` (Andale Mono SC); it
must be on the printer (it ships on Asian models, otherwise download it with
Zebra Setup Utilities). Pass `cjk_font=` for another font, e.g. a SimSun
you stored as `E:SIMSUN.TTF`.
"""

from __future__ import annotations

from .data import LabelData
from .layout import SSCC_MIN_X_MM, Barcode, Box, LabelLayout, QRCode, Text, shipping_label_layout

DEFAULT_CJK_FONT = "E:ANMDS.TTF"


def _field_text(text: str) -> str:
    """Field data under ^FH\\: the three characters ZPL reserves, as hex."""
    return text.replace("\\", "\\5C").replace("^", "\\5E").replace("~", "\\7E")


def _comment(text: str) -> str:
    return text.replace("^", " ").replace("~", " ")


def _text(t: Text, cjk_font: str) -> list[str]:
    if t.font == "cjk":
        font = f"^A@N,{t.size},{t.size},{cjk_font}"
    else:
        font = f"^A0N,{t.size},{t.size}"  # the printer's scalable sans (CG Triumvirate Bold Condensed)
    block = ""
    if t.align in ("center", "right") and t.width:
        block = f"^FB{t.width},1,0,{'C' if t.align == 'center' else 'R'},0"
    reverse = "^FR" if t.inverse else ""
    data = _field_text(t.text)
    out = [f"^FO{t.x},{t.y}{font}{block}{reverse}^FH\\^FD{data}^FS"]
    if t.bold and t.font == "cjk" and not t.inverse:
        # one-weight font: a second pass one dot to the right reads as bold
        out.append(f"^FO{t.x + 1},{t.y}{font}{block}^FH\\^FD{data}^FS")
    return out


def layout_zpl(layout: LabelLayout, cjk_font: str = DEFAULT_CJK_FONT, title: str = "") -> str:
    lines = [
        "^XA",
        f"^FX luyue shipping label {_comment(title)} {layout.size.name} mm at {layout.dpi} dpi",
        f"^FX Chinese text uses {cjk_font}: the printer needs this CJK font installed",
        *([] if layout.sscc_meets_gs1 else [
            f"^FX SSCC X-dimension {layout.barcode('sscc').x_mm(layout.dpi):.3f} mm: below the GS1 "
            f"logistic-label minimum of {SSCC_MIN_X_MM} mm, the label is too narrow"]),
        "^CI28",
        f"^PW{layout.width}",
        f"^LL{layout.height}",
        "^LH0,0",
    ]
    for item in layout.items:
        if isinstance(item, Box):
            thickness = min(item.w, item.h) if item.filled else item.thickness
            lines.append(f"^FO{item.x},{item.y}^GB{item.w},{item.h},{thickness},B,0^FS")
        elif isinstance(item, Barcode):
            lines.append(
                f"^BY{item.module},3,{item.height}^FO{item.x},{item.y}"
                f"^BCN,{item.height},N,N,N,N^FD{item.symbol.zpl_field_data()}^FS"
            )
        elif isinstance(item, QRCode):
            # ^BQ model 2, magnification = module dots; "MA," = error correction M, automatic input
            lines.append(f"^FO{item.x},{item.y}^BQN,2,{item.module}^FD{item.error_correction}A,{item.data}^FS")
        elif isinstance(item, Text):
            lines.extend(_text(item, cjk_font))
    lines += ["^PQ1", "^XZ"]
    return "\n".join(lines) + "\n"


def shipping_label_zpl(label: LabelData, size: str = "100x150", dpi: int = 203,
                       cjk_font: str = DEFAULT_CJK_FONT) -> str:
    """One shipping label as a ZPL II format (^XA … ^XZ)."""
    return layout_zpl(shipping_label_layout(label, size, dpi), cjk_font, title=label.tracking_number)


def batch_labels_zpl(labels, size: str = "100x150", dpi: int = 203, cjk_font: str = DEFAULT_CJK_FONT) -> str:
    """Many labels, one ZPL format each, to send in one connection."""
    return "".join(shipping_label_zpl(label, size, dpi, cjk_font) for label in labels)
