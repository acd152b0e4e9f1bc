"""Code 128 and GS1-128 symbols as module widths, drawn by the callers.

We encode ourselves (rather than asking a widget to draw) so the callers can
put every bar edge on a whole printer dot: a symbol here is just a list of
element widths in modules (bar, space, bar, … starting and ending with a bar).

Code set choice is the usual one: code set C for runs of digits (two digits
per symbol character), code set B for everything else. GS1-128 is Code 128
whose first data character is FNC1, so scanners report `]C1`.
"""

from __future__ import annotations

from dataclasses import dataclass

# Element widths (bar, space, bar, space, bar, space) of symbol values 0..105.
PATTERNS = (
    "212222 222122 222221 121223 121322 131222 122213 122312 132212 221213 "
    "221312 231212 112232 122132 122231 113222 123122 123221 223211 221132 "
    "221231 213212 223112 312131 311222 321122 321221 312212 322112 322211 "
    "212123 212321 232121 111323 131123 131321 112313 132113 132311 211313 "
    "231113 231311 112133 112331 132131 113123 113321 133121 313121 211331 "
    "231131 213113 213311 213131 311123 311321 331121 312113 312311 332111 "
    "314111 221411 431111 111224 111422 121124 121421 141122 141221 112214 "
    "112412 122114 122411 142112 142211 241211 221114 413111 241112 134111 "
    "111242 121142 121241 114212 124112 124211 411212 421112 421211 212141 "
    "214121 412121 111143 111341 131141 114113 114311 411113 411311 113141 "
    "114131 311141 411131 211412 211214 211232"
).split()
STOP_PATTERN = "2331112"

FNC1 = "\xf1"  # marker character for FNC1 in data passed to encode()

CODE_C, CODE_B, FNC1_VALUE = 99, 100, 102
START_B, START_C, STOP = 104, 105, 106

QUIET_ZONE_MODULES = 10


@dataclass(frozen=True)
class Code128Symbol:
    """One encoded Code 128 symbol.

    `values` are the symbol characters from the start character to the check
    character (the stop is implied); `steps` records code set choices so the
    same symbol can be asked of a ZPL printer (see `zpl_field_data`).
    """

    data: str
    values: tuple[int, ...]
    steps: tuple[tuple[str, str], ...]  # ("start", "B"|"C") ("switch", "B"|"C") ("fnc1", "") ("chars", text)

    @property
    def widths(self) -> list[int]:
        """Element widths in modules, bar first, including the stop pattern."""
        out = [int(c) for v in self.values for c in PATTERNS[v]]
        out.extend(int(c) for c in STOP_PATTERN)
        return out

    @property
    def modules(self) -> int:
        """Width of the symbol in modules (without quiet zones)."""
        return 11 * len(self.values) + 13

    @property
    def is_gs1(self) -> bool:
        return len(self.values) > 1 and self.values[1] == FNC1_VALUE

    def bars(self) -> list[tuple[int, int]]:
        """(offset, width) of each dark bar, in modules from the symbol's left edge."""
        out, x = [], 0
        for i, w in enumerate(self.widths):
            if i % 2 == 0:
                out.append((x, w))
            x += w
        return out

    def zpl_field_data(self) -> str:
        """The ^FD data for ZPL `^BC` in mode N that prints exactly this symbol.

        Uses the ZPL II invocation codes: `>:` start B, `>;` start C,
        `>5` code C, `>6` code B (from C), `>8` FNC1, `>0` a literal '>' in B.
        """
        parts = []
        for kind, arg in self.steps:
            if kind == "start":
                parts.append(">:" if arg == "B" else ">;")
            elif kind == "switch":
                parts.append(">5" if arg == "C" else ">6")
            elif kind == "fnc1":
                parts.append(">8")
            else:
                for ch in arg:
                    if ch in "^~":
                        raise ValueError(f"{ch!r} cannot be sent in a ZPL barcode field")
                    parts.append(">0" if ch == ">" else ch)
        return "".join(parts)


def _digit_run(data: str, i: int) -> int:
    n = i
    while n < len(data) and data[n] in "0123456789":
        n += 1
    return n - i


def encode(data: str) -> Code128Symbol:
    """Encode `data` (printable ASCII, FNC1 as `FNC1`) into a Code 128 symbol."""
    if not data or data == FNC1:
        raise ValueError("nothing to encode")
    for ch in data:
        if ch != FNC1 and not 32 <= ord(ch) <= 126:
            raise ValueError(f"Code 128 here takes printable ASCII, got {ch!r} in {data!r}")

    values: list[int] = []
    steps: list[tuple[str, str]] = []

    def chars(text: str) -> None:
        if steps and steps[-1][0] == "chars":
            steps[-1] = ("chars", steps[-1][1] + text)
        else:
            steps.append(("chars", text))

    first = 0
    while first < len(data) and data[first] == FNC1:
        first += 1
    run = _digit_run(data, first)
    codeset = "C" if run >= 4 or (run >= 2 and first + run == len(data)) else "B"
    values.append(START_C if codeset == "C" else START_B)
    steps.append(("start", codeset))

    i = 0
    while i < len(data):
        ch = data[i]
        if ch == FNC1:
            values.append(FNC1_VALUE)
            steps.append(("fnc1", ""))
            i += 1
            continue
        run = _digit_run(data, i)
        if codeset == "C":
            if run >= 2:
                values.append(int(data[i : i + 2]))
                chars(data[i : i + 2])
                i += 2
            else:
                values.append(CODE_B)
                steps.append(("switch", "B"))
                codeset = "B"
            continue
        # code set B: go to C for a long digit run (≥4 at the end, ≥6 inside)
        if run >= 6 or (run >= 4 and i + run == len(data)):
            if run % 2:
                values.append(ord(ch) - 32)
                chars(ch)
                i += 1
            values.append(CODE_C)
            steps.append(("switch", "C"))
            codeset = "C"
            continue
        values.append(ord(ch) - 32)
        chars(ch)
        i += 1

    check = (values[0] + sum(pos * v for pos, v in enumerate(values[1:], start=1))) % 103
    values.append(check)
    return Code128Symbol(data=data, values=tuple(values), steps=tuple(steps))


def encode_gs1(element_string: str) -> Code128Symbol:
    """A GS1-128 symbol: FNC1 first, then the element string(s).

    Variable-length elements that are followed by another element must be
    separated by `FNC1` by the caller; an SSCC (`00` + 18 digits) needs none.
    """
    return encode(FNC1 + element_string)


def sscc_symbol(sscc: str) -> Code128Symbol:
    from .gs1 import validate_sscc

    return encode_gs1("00" + validate_sscc(sscc))
