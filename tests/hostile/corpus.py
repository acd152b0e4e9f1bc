"""The hostile-input corpus: what a scanner, a keyboard, a customer or an
attacker can put in a field, and the fields it goes into.

Each case is (field, value). What it must get: never a 5xx, never more than
MAX_CPU_SECONDS of server CPU, nothing written; and when the value is one the
input limits refuse (a control character, too long), a 4xx whose body shows
the catalogue's message in the worker's language.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from urllib.parse import quote

from app.web import inputs

MAX_CPU_SECONDS = 1.0

# Refused in every field: NUL, bell, escape, backspace, DEL, C1 controls.
CONTROLS = ["\x00", "A\x00B", "100\x00", "\x07", "\x1b[2J", "\x08", "\x7f", "\x85", "\x9b", "\x0b", "\x0c"]
# CR/LF in a query (a header injection attempt): refused there, whitespace in a form.
LINE_BREAKS = ["\r\nSet-Cookie: a=b", "x\ny"]
# The GS1 separator: a scan's, refused anywhere else.
GS_VALUES = ["\x1d", "]C1010690123400001\x1d10LOT\x1d21X"]
# Text that passes the limits and must be answered as what it is (not found, wrong, invalid).
TEXT = [
    "", " ", "１２３４", "Ａ-09-09-9", "'; DROP TABLE users; --", "' OR '1'='1", "<script>alert(1)</script>",
    "{{7*7}}", "%s%n%x", "😀" * 40, "𠀀𠀁𠀂", "-1", "0", "9" * 40, "1e309", "NaN", "0x10", "\u202eevil",
    "\ufeffA-09-09-9", "\u241d", "../../etc/passwd", "2147483648", "-9223372036854775809", "T" * 65,
    "(01)" + "1" * 200, "]d2" + "9" * 250, "ＳＫＵ－Ａ", "ﬁ", "\u3000", "1.5", "1,25 kg",
]


def too_long(limit: int) -> list[str]:
    # One over the limit, and the sizes that cost seconds before: 100k digits
    # (a GS1 parse), 600k (the login badge).
    return ["9" * (limit + 1), "9" * 100_000, "(01)" + "1" * 100_000, "7" * 600_000]


@dataclass
class Field:
    """One input: `where` is form, query or path; `path` has {v} for a path
    part; `data` are the other fields sent with it."""
    name: str
    who: str
    method: str
    path: str
    where: str = "form"
    data: dict[str, str] = field(default_factory=dict)
    # Only values the limits refuse: any other text is accepted by design here
    # (a hold's reason, a tote's label) and would write.
    refused_only: bool = False

    @property
    def limit(self) -> int:
        return inputs.FIELD_LENGTHS.get(self.name, inputs.DEFAULT_LENGTH)

    def values(self) -> list[str]:
        refused = CONTROLS + too_long(self.limit)
        if self.name not in inputs.SCAN_FIELDS:
            refused = refused + ["A\x1dB"]
        if self.where != "form":
            refused = refused + LINE_BREAKS
        if self.refused_only:
            return refused
        extra = GS_VALUES if self.name in inputs.SCAN_FIELDS else []
        if self.where == "form":
            extra = extra + LINE_BREAKS
        return refused + extra + TEXT

    def refuses(self, value: str) -> bool:
        """Whether the input limits must refuse this value here."""
        if len(value) > self.limit:
            return True
        allowed = (inputs.FORM_WHITESPACE if self.where == "form" else set()) | (
            {inputs.GS} if self.name in inputs.SCAN_FIELDS else set())
        return any(unicodedata.category(c) == "Cc" and c not in allowed for c in value)

    def request(self, value: str) -> tuple[str, dict]:
        """The URL and the test client's keyword arguments."""
        if self.where == "path":
            return self.path.format(v=quote(value, safe="")), {}
        if self.where == "query":
            return self.path, {"query_string": {**self.data, self.name: value}}
        return self.path, {"data": {**self.data, self.name: value}}


def cases(fields: list[Field]) -> list[tuple[Field, str]]:
    return [(f, v) for f in fields for v in f.values()]
