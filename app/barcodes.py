"""GTIN, GS1 and SSCC: what a printed code means, and whether it is whole."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import biip
from biip import ParseConfig, ParseError
from biip.gtin import Gtin

from printing.gs1 import gs1_check_digit

GTIN_LENGTHS = (8, 12, 13, 14)


def looks_like_gtin(code: str) -> bool:
    return code.isdigit() and len(code) in GTIN_LENGTHS


def gtin_problem(code: str) -> str | None:
    """Why a numeric product code is not a valid GTIN, or None if it is (or is
    an in-house code that does not claim to be a GTIN)."""
    if not looks_like_gtin(code):
        return None
    try:
        Gtin.parse(code)
    except ParseError as e:
        return str(e)
    return None


def code_problem(code: str) -> str | None:
    """Why a code cannot be stored as master data: a control or format
    character, GS included (a scanner's GS1 separator is not part of any
    code; `read_scan` reads it off scans). None if it can."""
    import unicodedata
    for ch in code:
        if unicodedata.category(ch) in ("Cc", "Cf"):
            return f"contains a control character (U+{ord(ch):04X})"
    return None


def ean13(payload12: str) -> str:
    if not re.fullmatch(r"[0-9]{12}", payload12):
        raise ValueError("an EAN-13 payload is 12 digits")
    return payload12 + str(gs1_check_digit(payload12))


# --- reading a scan ------------------------------------------------------------
# What a handheld scanner types into the Scan field: maybe an AIM symbology
# identifier first (]E0 EAN-13, ]C0/]C1 Code 128 / GS1-128, ]d2 GS1 DataMatrix,
# ]Q3 QR), GS1 element strings with GS (0x1D) between variable-length fields,
# or parenthesised text copied from a label.

# Some wedge scanners cannot type 0x1D and send the visible symbol for it.
GS_SEPARATORS = ("\x1d", "\u241d")
_AIM = re.compile(r"^\][A-Za-z][0-9A-Za-z]")


@dataclass(frozen=True)
class Scan:
    raw: str
    # The payload without the symbology identifier: what location, tote and
    # badge codes are compared with.
    text: str
    # GTIN-14 when the code carries one (a bare GTIN, GS1 AI 01, a Digital Link).
    gtin: str | None = None
    # GS1 element strings, AI -> value (batch 10, expiry 17, serial 21...).
    gs1: dict[str, str] = field(default_factory=dict)

    def product_codes(self) -> list[str]:
        """Barcode.code values this scan may stand for, most literal first:
        the text itself, then its GTIN in 14, 13, 12 and 8 digits."""
        codes = [self.text]
        if self.gtin:
            for n in (14, 13, 12, 8):
                if self.gtin[: 14 - n].strip("0") == "":
                    codes.append(self.gtin[14 - n:])
        return list(dict.fromkeys(c for c in codes if c))


def read_scan(raw: str) -> Scan:
    """Make sense of one scan; never raises (a garbled scan is just text)."""
    value = (raw or "").strip().strip("\r\n\t")
    for sep in GS_SEPARATORS[1:]:
        value = value.replace(sep, GS_SEPARATORS[0])
    aim = _AIM.match(value)
    text = value[aim.end():] if aim else value
    text = text.strip(GS_SEPARATORS[0] + " ")
    gtin: str | None = None
    gs1: dict[str, str] = {}
    try:
        if text.startswith("("):
            from biip.gs1_messages import GS1Message
            message = GS1Message.parse_hri(text)
            gs1 = {e.ai.ai: e.value for e in message.element_strings}
            gtin = gs1.get("01")
        else:
            result = biip.parse(value, config=ParseConfig(separator_chars=GS_SEPARATORS[:1]))
            if result.gtin is not None:
                gtin = result.gtin.as_gtin_14()
            if result.gs1_message is not None and text[:1].isdigit() and not looks_like_gtin(text):
                gs1 = {e.ai.ai: e.value for e in result.gs1_message.element_strings}
    except Exception:  # noqa: BLE001 - biip refuses many non-GS1 codes; they stay plain text
        pass
    if gs1 and not gtin:
        gtin = gs1.get("01")
    return Scan(raw=raw, text=text, gtin=gtin.zfill(14) if gtin else None, gs1=gs1)
