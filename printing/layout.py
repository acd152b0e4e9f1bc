"""Where everything on a shipping label goes, in whole printer dots.

One layout feeds two renderers: `labels.py` draws it into a PDF, `zpl.py`
writes it as ZPL II. Working in dots of the target printer (203 or 300 dpi)
is what makes the barcodes scan: every bar and space of a Code 128 symbol is
a whole number of dots wide, and every bar starts on a dot boundary, so a
thermal head prints exactly the widths the symbology expects instead of
rounding some bars up and others down.

Coordinates are dots from the label's top-left corner (ZPL's convention);
y grows downwards.

The SSCC at the bottom is sized to the GS1 logistic-label specification
(X ≥ 0.495 mm, bars ≥ 31.75 mm, 10X quiet zones) and the blocks above it
share what is left. A 76x130 label is too narrow for that X: it gets the
widest whole-dot X that fits (0.375 mm at 203 dpi, 0.339 mm at 300 dpi) with
full-height bars, and `LabelLayout.sscc_meets_gs1` is False for it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import qrcode
import qrcode.constants

from . import code128
from .code128 import QUIET_ZONE_MODULES, Code128Symbol
from .data import LabelData
from .fonts import LATIN_BOLD_FONT, cjk_font, string_width
from .gs1 import mask_phone, sscc_hri

SUPPORTED_DPI = (203, 300)
MIN_MODULE_DOTS = 2  # one-dot bars vanish or bloom on a worn thermal head
QR_QUIET_MODULES = 4

# The SSCC on a logistic label, from the GS1 General Specifications' symbol
# specification table for logistic labels: GS1-128 with an X-dimension of
# 0.495 to 1.016 mm, bars at least 31.75 mm (1.25") high, quiet zones of 10X.
# An SSCC symbol is always 156 modules (start C, FNC1, 10 digit pairs, check,
# stop), so with its quiet zones it needs 176 × 0.495 = 87.1 mm of width.
SSCC_MIN_X_MM = 0.495
SSCC_MAX_X_MM = 1.016
SSCC_MIN_BAR_HEIGHT_MM = 31.75


class LabelLayoutError(ValueError):
    """The data does not fit the label (e.g. a tracking number too long for its barcode)."""


@dataclass(frozen=True)
class LabelSize:
    name: str
    width_mm: float
    height_mm: float
    # False: the label is too narrow for a GS1-conforming SSCC symbol (see
    # SSCC_MIN_X_MM); it gets the widest whole-dot X that fits with its quiet
    # zones instead, below the GS1 minimum. The bar height is met on every size.
    sscc_meets_gs1: bool = True


SIZES: dict[str, LabelSize] = {
    "100x150": LabelSize("100x150", 100, 150),
    # 76 mm wide: about 72 mm inside the frame, less than the 87.1 mm a
    # 0.495 mm-X SSCC needs. Its SSCC is X = 0.375 mm (203 dpi) or 0.339 mm
    # (300 dpi), 31.75 mm high: below GS1 spec for logistic labels. Kept,
    # since the pack and ship screens and printer settings offer it; use
    # 100x150 where trading partners check GS1 logistic labels.
    "76x130": LabelSize("76x130", 76, 130, sscc_meets_gs1=False),
}


def label_size(size: str) -> LabelSize:
    try:
        return SIZES[size]
    except KeyError:
        raise ValueError(f"unknown label size {size!r}; choose one of {', '.join(SIZES)}") from None


def check_dpi(dpi: int) -> int:
    if dpi not in SUPPORTED_DPI:
        raise ValueError(f"printer resolution must be one of {SUPPORTED_DPI} dpi, got {dpi!r}")
    return dpi


def dots(mm: float, dpi: int) -> int:
    return round(mm * dpi / 25.4)


def dots_at_least(mm: float, dpi: int) -> int:
    """The fewest whole dots that measure at least `mm`."""
    return math.ceil(mm * dpi / 25.4 - 1e-9)


def mm_of(n: int, dpi: int) -> float:
    return n * 25.4 / dpi


# ---------------------------------------------------------------- items


@dataclass(frozen=True)
class Text:
    x: int
    y: int  # top of the em box
    size: int  # em height in dots
    text: str
    font: str  # "cjk" or "latin-bold"
    bold: bool = False
    align: str = "left"  # within [x, x + width]
    width: int = 0
    inverse: bool = False  # white on a black box drawn before it


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int
    thickness: int = 0  # 0: filled black

    @property
    def filled(self) -> bool:
        return self.thickness == 0


@dataclass(frozen=True)
class Barcode:
    name: str
    x: int  # left edge of the first bar
    y: int
    module: int  # narrow bar width, dots
    height: int
    symbol: Code128Symbol
    quiet_left: int  # white dots before the first bar, up to the next ink
    quiet_right: int

    @property
    def width(self) -> int:
        return self.symbol.modules * self.module

    def x_mm(self, dpi: int) -> float:
        return mm_of(self.module, dpi)

    def height_mm(self, dpi: int) -> float:
        return mm_of(self.height, dpi)


@dataclass(frozen=True)
class QRCode:
    x: int  # top-left of the first module (quiet zone is outside)
    y: int
    module: int
    matrix: tuple[tuple[bool, ...], ...]
    data: str
    error_correction: str = "M"

    @property
    def width(self) -> int:
        return len(self.matrix) * self.module


Item = Text | Box | Barcode | QRCode


@dataclass(frozen=True)
class LabelLayout:
    size: LabelSize
    dpi: int
    width: int  # dots
    height: int
    items: tuple[Item, ...]
    regions: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)  # x, y, w, h

    def barcode(self, name: str) -> Barcode:
        for item in self.items:
            if isinstance(item, Barcode) and item.name == name:
                return item
        raise KeyError(name)

    @property
    def qr(self) -> QRCode:
        return next(item for item in self.items if isinstance(item, QRCode))

    def texts(self) -> list[Text]:
        return [item for item in self.items if isinstance(item, Text)]

    @property
    def sscc_meets_gs1(self) -> bool:
        """Whether the SSCC symbol has the X-dimension, bar height and quiet
        zones the GS1 logistic-label specification asks for."""
        bc = self.barcode("sscc")
        return (SSCC_MIN_X_MM <= bc.x_mm(self.dpi) <= SSCC_MAX_X_MM
                and bc.height_mm(self.dpi) >= SSCC_MIN_BAR_HEIGHT_MM
                and min(bc.quiet_left, bc.quiet_right) >= QUIET_ZONE_MODULES * bc.module)


# ---------------------------------------------------------------- text fitting

_TOKEN = re.compile(r"[A-Za-z0-9.,:;!?@#%&()\[\]/+\-_*'\"]+| +|.", re.S)


def font_name(font: str) -> str:
    return cjk_font().name if font == "cjk" else LATIN_BOLD_FONT


def text_width(text: str, font: str, size: int) -> float:
    return string_width(text, font_name(font), size)


def wrap(text: str, font: str, size: int, width: int) -> list[str]:
    """Break `text` into lines no wider than `width` dots: between any two
    Chinese characters, at spaces, and inside Latin words only if they alone
    are too long."""
    lines: list[str] = []
    line = ""
    for token in _TOKEN.findall(text):
        candidate = line + token
        if text_width(candidate, font, size) <= width:
            line = candidate
            continue
        if token.isspace():
            lines.append(line)
            line = ""
            continue
        if line:
            lines.append(line.rstrip())
            line = ""
        for ch in token:  # a token longer than the line: break it anywhere
            if text_width(line + ch, font, size) > width and line:
                lines.append(line)
                line = ""
            line += ch
    if line.strip():
        lines.append(line.rstrip())
    return lines or [""]


LEADING = 1.22  # line pitch as a multiple of the font size


def lines_that_fit(size: int, max_height: int, leading: float = LEADING) -> int:
    """How many lines of `size` dots fit in `max_height` (the last needs no leading)."""
    return max(1, int((max_height - size) // (size * leading)) + 1)


def fit(text: str, font: str, size: int, width: int, max_height: int, min_size: int,
        leading: float = LEADING) -> tuple[int, list[str]]:
    """The largest size ≤ `size` at which `text` wraps into `max_height` dots;
    at `min_size` whatever still does not fit is cut with an ellipsis."""
    s = size
    while True:
        lines = wrap(text, font, s, width)
        max_lines = lines_that_fit(s, max_height, leading)
        if len(lines) <= max_lines:
            return s, lines
        if s <= min_size:
            kept = lines[:max_lines]
            last = kept[-1]
            while last and text_width(last + "…", font, s) > width:
                last = last[:-1]
            kept[-1] = last + "…"
            return s, kept
        s = max(min_size, int(s * 0.93))


def fit_one_line(text: str, font: str, size: int, width: int, min_size: int) -> tuple[int, str]:
    s, lines = fit(text, font, size, width, size, min_size)
    return s, lines[0]


# ---------------------------------------------------------------- barcodes


def choose_module(symbol: Code128Symbol, dpi: int, target_mm: float, available: int) -> int:
    """Whole dots per module: as close to `target_mm` as possible (not above
    it), shrunk until symbol + 10-module quiet zones fit `available` dots."""
    module = max(MIN_MODULE_DOTS, math.floor(target_mm * dpi / 25.4 + 0.25))
    while module > MIN_MODULE_DOTS and (symbol.modules + 2 * QUIET_ZONE_MODULES) * module > available:
        module -= 1
    if (symbol.modules + 2 * QUIET_ZONE_MODULES) * module > available:
        raise LabelLayoutError(
            f"{symbol.data!r} needs {symbol.modules} modules; at {module} dots per module "
            f"with quiet zones it does not fit {available} dots ({available / dpi * 25.4:.1f} mm)"
        )
    return module


def centred_barcode(name: str, symbol: Code128Symbol, left: int, right: int, y: int, height: int,
                    dpi: int, target_mm: float) -> Barcode:
    """A barcode centred between two inked edges at `left` and `right` (exclusive)."""
    module = choose_module(symbol, dpi, target_mm, right - left)
    width = symbol.modules * module
    x = left + (right - left - width) // 2
    return Barcode(name, x, y, module, height, symbol, quiet_left=x - left, quiet_right=right - (x + width))


def sscc_barcode(symbol: Code128Symbol, left: int, right: int, y: int, height: int, dpi: int,
                 size: LabelSize) -> Barcode:
    """The GS1-128 SSCC centred between inked edges at `left` and `right`: the
    narrowest whole-dot X of at least SSCC_MIN_X_MM (a wider one only eats the
    quiet zones), or, on a size known to be too narrow for that, the widest
    whole-dot X that fits with its quiet zones."""
    span = symbol.modules + 2 * QUIET_ZONE_MODULES
    module = dots_at_least(SSCC_MIN_X_MM, dpi)
    if span * module > right - left:
        if size.sscc_meets_gs1:
            raise LabelLayoutError(
                f"a GS1 SSCC symbol (X ≥ {SSCC_MIN_X_MM} mm, {span} modules with quiet zones) needs "
                f"{mm_of(span * module, dpi):.1f} mm; the {size.name} label has {mm_of(right - left, dpi):.1f} mm"
            )
        module = (right - left) // span
        if module < MIN_MODULE_DOTS:
            raise LabelLayoutError(f"the SSCC does not fit a {size.name} label at {dpi} dpi")
    if height < dots_at_least(SSCC_MIN_BAR_HEIGHT_MM, dpi):
        raise LabelLayoutError(
            f"the {size.name} layout leaves {mm_of(height, dpi):.2f} mm for the SSCC bars; "
            f"GS1 logistic labels need {SSCC_MIN_BAR_HEIGHT_MM} mm"
        )
    width = symbol.modules * module
    x = left + (right - left - width) // 2
    return Barcode("sscc", x, y, module, height, symbol, quiet_left=x - left, quiet_right=right - (x + width))


def qr_matrix(data: str) -> tuple[tuple[bool, ...], ...]:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    qr.add_data(data)
    qr.make(fit=True)
    return tuple(tuple(bool(v) for v in row) for row in qr.get_matrix())


# ---------------------------------------------------------------- the shipping label


@dataclass(frozen=True)
class _Spec:
    margin: float
    header: float
    tracking: float
    ship_to: float
    ship_from: float
    info: float
    carrier_font: float
    service_font: float
    tracking_hri_font: float
    name_font: float
    address_font: float
    small_font: float
    info_font: float
    badge: float
    tracking_module_mm: float
    sscc_hri_font: float


# Block heights in mm, top to bottom; the SSCC block at the bottom takes the
# rest, which must hold bars of SSCC_MIN_BAR_HEIGHT_MM and the HRI line.
_SPECS = {
    "100x150": _Spec(margin=2, header=13, tracking=25, ship_to=28.5, ship_from=14, info=24,
                     carrier_font=7.5, service_font=4.6, tracking_hri_font=4.6, name_font=5.8,
                     address_font=4.8, small_font=3.0, info_font=3.3, badge=9,
                     tracking_module_mm=0.5, sscc_hri_font=3.4),
    "76x130": _Spec(margin=1.5, header=10, tracking=20, ship_to=24.5, ship_from=12.5, info=19,
                    carrier_font=6.2, service_font=3.8, tracking_hri_font=3.8, name_font=4.8,
                    address_font=4.0, small_font=2.6, info_font=2.8, badge=7.5,
                    tracking_module_mm=0.375, sscc_hri_font=2.9),
}


def shipping_label_layout(label: LabelData, size: str = "100x150", dpi: int = 203) -> LabelLayout:
    """Lay out `label` for a `size` label printed at `dpi`."""
    sz = label_size(size)
    check_dpi(dpi)
    spec = _SPECS[sz.name]

    def d(mm: float) -> int:
        return dots(mm, dpi)

    W, H = d(sz.width_mm), d(sz.height_mm)
    line = max(2, d(0.3))  # rule between blocks
    frame = max(3, d(0.4))
    m = d(spec.margin)
    left, right = m, W - m  # outer edges of the frame
    top, bottom = m, H - m
    inner_l, inner_r = left + frame, right - frame
    pad = d(1.5)
    items: list[Item] = []
    regions: dict[str, tuple[int, int, int, int]] = {}

    items.append(Box(left, top, right - left, bottom - top, frame))

    def rule(y: int) -> None:
        items.append(Box(inner_l, y, inner_r - inner_l, line))

    # -- header: carrier | [同城] [service]
    y = top + frame
    h = d(spec.header)
    regions["header"] = (inner_l, y, inner_r - inner_l, h)
    svc_size = d(spec.service_font)
    tags = ([("同城配送", True)] if label.same_city else []) + [(label.service, True)]
    x_tag = inner_r - pad
    for text, _ in reversed(tags):
        tw = math.ceil(text_width(text, "cjk", svc_size)) + 2 * d(1.5)
        th = svc_size + 2 * d(1.2)
        x_tag -= tw
        ty = y + (h - th) // 2
        items.append(Box(x_tag, ty, tw, th))
        items.append(Text(x_tag, ty + d(1.2), svc_size, text, "cjk", bold=True, align="center", width=tw,
                          inverse=True))
        x_tag -= d(1.5)
    carrier_w = x_tag - (inner_l + pad)
    c_size, c_text = fit_one_line(label.carrier_name, "cjk", d(spec.carrier_font), carrier_w, d(3))
    items.append(Text(inner_l + pad, y + (h - c_size) // 2, c_size, c_text, "cjk", bold=True))
    y += h
    rule(y)
    y += line

    # -- tracking number barcode
    h = d(spec.tracking)
    regions["tracking"] = (inner_l, y, inner_r - inner_l, h)
    hri = d(spec.tracking_hri_font)
    bar_h = h - hri - 3 * pad
    sym = code128.encode(label.tracking_number)
    items.append(centred_barcode("tracking", sym, inner_l, inner_r, y + pad, bar_h, dpi,
                                 spec.tracking_module_mm))
    items.append(Text(inner_l, y + pad + bar_h + pad, hri, label.tracking_number, "latin-bold",
                      align="center", width=inner_r - inner_l))
    y += h
    rule(y)
    y += line

    # -- ship to: [收] name phone / address
    h = d(spec.ship_to)
    regions["ship_to"] = (inner_l, y, inner_r - inner_l, h)
    badge = d(spec.badge)
    items.append(Box(inner_l + pad, y + pad, badge, badge))
    items.append(Text(inner_l + pad, y + pad + (badge - int(badge * 0.7)) // 2, int(badge * 0.7), "收", "cjk",
                      bold=True, align="center", width=badge, inverse=True))
    tx = inner_l + pad + badge + d(2)
    tw = inner_r - pad - tx
    to = label.ship_to
    name_size = d(spec.name_font)
    phone = mask_phone(to.phone)
    phone_w = math.ceil(text_width(phone, "cjk", name_size))
    n_size, n_text = fit_one_line(to.name, "cjk", name_size, tw - phone_w - d(3), d(3))
    items.append(Text(tx, y + pad, n_size, n_text, "cjk", bold=True))
    items.append(Text(inner_r - pad - phone_w, y + pad, name_size, phone, "cjk", bold=True))
    addr_top = y + pad + name_size + d(1.8)
    a_size = d(spec.address_font)
    small = d(spec.small_font)
    addr_room = y + h - pad - small - d(1) - addr_top
    a_size, a_lines = fit(to.full_text(), "cjk", a_size, tw, addr_room, d(2.4))
    regions["ship_to_address"] = (tx, addr_top, tw, a_size + round((len(a_lines) - 1) * a_size * LEADING))
    for i, text in enumerate(a_lines):
        items.append(Text(tx, addr_top + round(i * a_size * LEADING), a_size, text, "cjk", bold=True))
    if to.postal_code:
        items.append(Text(tx, y + h - pad - small, small, f"邮编 {to.postal_code}", "cjk"))
    y += h
    rule(y)
    y += line

    # -- ship from: [寄] node phone / address
    h = d(spec.ship_from)
    regions["ship_from"] = (inner_l, y, inner_r - inner_l, h)
    sbadge = int(badge * 0.72)
    items.append(Box(inner_l + pad, y + pad, sbadge, sbadge))
    items.append(Text(inner_l + pad, y + pad + (sbadge - int(sbadge * 0.7)) // 2, int(sbadge * 0.7), "寄", "cjk",
                      bold=True, align="center", width=sbadge, inverse=True))
    tx = inner_l + pad + sbadge + d(2)
    tw = inner_r - pad - tx
    fr = label.ship_from
    node_size = int(small * 1.25)
    ph_w = math.ceil(text_width(fr.phone, "cjk", small)) if fr.phone else 0
    s_size, s_text = fit_one_line(fr.node_name, "cjk", node_size, tw - ph_w - d(3), small)
    items.append(Text(tx, y + pad, s_size, s_text, "cjk"))
    if fr.phone:
        items.append(Text(inner_r - pad - ph_w, y + pad + (node_size - small), small, fr.phone, "cjk"))
    from_top = y + pad + node_size + d(1.2)
    f_room = y + h - pad // 2 - from_top
    f_size, f_lines = fit(fr.address, "cjk", small, tw, f_room, d(2.2))
    for i, text in enumerate(f_lines):
        items.append(Text(tx, from_top + round(i * f_size * LEADING), f_size, text, "cjk"))
    y += h
    rule(y)
    y += line

    # -- info: refs, parcel n/m, weight | QR of the tracking URL
    h = d(spec.info)
    regions["info"] = (inner_l, y, inner_r - inner_l, h)
    matrix = qr_matrix(label.tracking_url)
    n = len(matrix)
    qr_room = h - 2 * d(0.5)
    qr_module = max(MIN_MODULE_DOTS, min(d(0.5), qr_room // (n + 2 * QR_QUIET_MODULES)))
    if (n + 2 * QR_QUIET_MODULES) * qr_module > qr_room:
        raise LabelLayoutError(f"the tracking URL is too long for a QR code on a {sz.name} label")
    qr_side = (n + 2 * QR_QUIET_MODULES) * qr_module
    qr_x = inner_r - qr_side
    qr_y = y + (h - qr_side) // 2
    items.append(QRCode(qr_x + QR_QUIET_MODULES * qr_module, qr_y + QR_QUIET_MODULES * qr_module, qr_module,
                        matrix, label.tracking_url))
    regions["qr"] = (qr_x, qr_y, qr_side, qr_side)
    items.append(Box(qr_x - line, y, line, h))  # vertical rule left of the QR
    tx = inner_l + pad
    tw = qr_x - line - pad - tx
    i_size = d(spec.info_font)
    row = y + pad
    for caption, value in (("订单号", label.order_ref), ("履约单", label.fulfilment_ref)):
        items.append(Text(tx, row, i_size, caption, "cjk"))
        cap_w = math.ceil(text_width(caption + " ", "cjk", i_size))
        v_size, v_text = fit_one_line(value, "latin-bold", i_size, tw - cap_w, d(2))
        items.append(Text(tx + cap_w, row + (i_size - v_size), v_size, v_text, "latin-bold"))
        row += round(i_size * 1.45)
    big = int(i_size * 1.7)
    row = y + h - pad - big
    parcel = f"{label.parcel_no}/{label.parcel_count}"
    items.append(Text(tx, row + (big - i_size), i_size, "件数", "cjk"))
    cap_w = math.ceil(text_width("件数 ", "cjk", i_size))
    items.append(Text(tx + cap_w, row, big, parcel, "latin-bold"))
    wx = tx + cap_w + math.ceil(text_width(parcel, "latin-bold", big)) + d(4)
    weight = f"{label.weight_g / 1000:.2f} kg"
    items.append(Text(wx, row + (big - i_size), i_size, "重量", "cjk"))
    wcap = math.ceil(text_width("重量 ", "cjk", i_size))
    items.append(Text(wx + wcap, row, big, weight, "latin-bold"))
    regions["parcel"] = (tx, row, tw, big)
    y += h
    rule(y)
    y += line

    # -- SSCC: GS1-128 (00), bars ≥ 31.75 mm, then one line: data title | HRI
    h = bottom - frame - y
    regions["sscc"] = (inner_l, y, inner_r - inner_l, h)
    hri_size = d(spec.sscc_hri_font)
    bar_top = y + d(1)
    hri_y = bottom - frame - pad * 2 // 3 - hri_size
    bar_h = hri_y - d(1.2) - bar_top
    sscc = sscc_barcode(code128.sscc_symbol(label.sscc), inner_l, inner_r, bar_top, bar_h, dpi, sz)
    items.append(sscc)
    # the data title left, on the baseline of the HRI; the HRI centred under
    # the bars, or as near the centre as the title leaves room for
    cap = small
    cap_text = "SSCC 物流单元码"
    cap_y = hri_y + round((hri_size - cap) * 0.84)
    items.append(Text(inner_l + pad, cap_y, cap, cap_text, "cjk"))
    hri = sscc_hri(label.sscc)
    hri_w = math.ceil(text_width(hri, "latin-bold", hri_size))
    hri_x = max(sscc.x + (sscc.width - hri_w) // 2,
                inner_l + pad + math.ceil(text_width(cap_text, "cjk", cap)) + d(2))
    if hri_x + hri_w > inner_r - pad:
        raise LabelLayoutError(f"the SSCC line does not fit a {sz.name} label")
    items.append(Text(hri_x, hri_y, hri_size, hri, "latin-bold", align="center", width=hri_w))
    regions["sscc_hri"] = (hri_x, hri_y, hri_w, hri_size)

    return LabelLayout(sz, dpi, W, H, tuple(items), regions)
