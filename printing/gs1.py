"""GS1 numbers for labels: the mod-10 check digit, SSCC building and checking,
and the phone masking every label in China prints.

An SSCC (Serial Shipping Container Code, AI 00) is 18 digits:
extension digit (1) + GS1 company prefix (4..12) + serial reference
(so that the total before the check digit is 17) + check digit (1).
"""

from __future__ import annotations

import re

SSCC_LENGTH = 18


def gs1_check_digit(digits: str) -> int:
    """The GS1 mod-10 check digit for `digits` (everything but the check digit).

    Weights 3, 1, 3, 1… are applied from the rightmost digit leftwards.
    """
    if not digits.isdigit() or not digits.isascii():
        raise ValueError(f"GS1 numbers are digits only, got {digits!r}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def make_sscc(company_prefix: str, serial: int, extension_digit: int = 0) -> str:
    """Build an 18-digit SSCC from a GS1 company prefix and a serial number.

    >>> make_sscc("6901234", 1234567)
    '069012340012345679'
    """
    if not (company_prefix.isascii() and company_prefix.isdigit()) or not 4 <= len(company_prefix) <= 12:
        raise ValueError(f"a GS1 company prefix is 4 to 12 digits, got {company_prefix!r}")
    if not 0 <= extension_digit <= 9:
        raise ValueError(f"the SSCC extension digit is 0..9, got {extension_digit!r}")
    serial_digits = 16 - len(company_prefix)
    if not 0 <= serial < 10**serial_digits:
        raise ValueError(
            f"serial {serial} does not fit the {serial_digits} digits left by "
            f"company prefix {company_prefix}"
        )
    body = f"{extension_digit}{company_prefix}{serial:0{serial_digits}d}"
    return body + str(gs1_check_digit(body))


def is_valid_sscc(sscc: str) -> bool:
    return (
        isinstance(sscc, str)
        and len(sscc) == SSCC_LENGTH
        and sscc.isascii()
        and sscc.isdigit()
        and gs1_check_digit(sscc[:-1]) == int(sscc[-1])
    )


def validate_sscc(sscc: str) -> str:
    """Return `sscc` if it is 18 digits with a right check digit, else raise ValueError."""
    if not (isinstance(sscc, str) and len(sscc) == SSCC_LENGTH and sscc.isascii() and sscc.isdigit()):
        raise ValueError(f"an SSCC is {SSCC_LENGTH} digits, got {sscc!r}")
    expected = gs1_check_digit(sscc[:-1])
    if expected != int(sscc[-1]):
        raise ValueError(f"SSCC {sscc} has check digit {sscc[-1]}, expected {expected}")
    return sscc


def sscc_hri(sscc: str) -> str:
    """The human-readable interpretation printed under a GS1-128 SSCC: '(00) 0 6901234 …'."""
    validate_sscc(sscc)
    return f"(00) {sscc[0]} {sscc[1:8]} {sscc[8:17]} {sscc[17]}"


_MOBILE = re.compile(r"^(?:\+?86)?(1\d{10})$")


def mask_phone(phone: str) -> str:
    """Hide the middle of a phone number the way Chinese couriers print it.

    >>> mask_phone("13800000000")
    '138****0000'
    >>> mask_phone("+86 138 0000 0000")
    '138****0000'
    >>> mask_phone("021-58001234")
    '021****1234'
    """
    compact = re.sub(r"[\s-]", "", phone or "")
    m = _MOBILE.match(compact)
    if m:
        number = m.group(1)
        return f"{number[:3]}****{number[-4:]}"
    if len(compact) >= 8:
        return f"{compact[:3]}****{compact[-4:]}"
    if len(compact) >= 3:
        return "****" + compact[-2:]
    return "****" if compact else ""
