"""GTIN, GS1 and SSCC: what a printed code means, and whether it is whole."""
from __future__ import annotations

import re

from biip import ParseError
from biip.gtin import Gtin

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


def gs1_check_digit(digits: str) -> int:
    """The GS1 mod-10 check digit for the digits before it."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def ean13(payload12: str) -> str:
    if not re.fullmatch(r"[0-9]{12}", payload12):
        raise ValueError("an EAN-13 payload is 12 digits")
    return payload12 + str(gs1_check_digit(payload12))
