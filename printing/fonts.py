"""The one place that decides which fonts labels and manifests use.

Chinese text needs a CJK font. We embed a TrueType one when the machine has
it (Debian: fonts-wqy-microhei, or a TrueType-flavoured Noto CJK), so the PDF
prints the same everywhere; otherwise we fall back to reportlab's built-in
CID font STSong-Light, which is not embedded and relies on the viewer or
printer having a Chinese font.

`LUYUE_CJK_FONT` may name another .ttf/.ttc file to try first.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFError, TTFont

# (path, subfont index inside a .ttc)
CJK_FONT_CANDIDATES: list[tuple[str, int]] = [
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc", 2),  # SC face
    ("/usr/share/fonts/truetype/noto/NotoSansSC-Regular.ttf", 0),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),  # CFF: reportlab refuses, we move on
]
CID_FALLBACK = "STSong-Light"
CJK_FONT_NAME = "LuyueCJK"

LATIN_FONT = "Helvetica"
LATIN_BOLD_FONT = "Helvetica-Bold"
MONO_BOLD_FONT = "Courier-Bold"


@dataclass(frozen=True)
class CJKFont:
    name: str  # the reportlab font name to use with setFont()
    path: str | None  # the TrueType file embedded, None for the CID fallback

    @property
    def embedded(self) -> bool:
        return self.path is not None


def _candidates() -> list[tuple[str, int]]:
    extra = os.environ.get("LUYUE_CJK_FONT")
    return ([(extra, 0)] if extra else []) + CJK_FONT_CANDIDATES


@lru_cache(maxsize=None)
def _register(candidates: tuple[tuple[str, int], ...]) -> CJKFont:
    for path, index in candidates:
        if not os.path.isfile(path):
            continue
        stem = re.sub(r"[^A-Za-z0-9]+", "", os.path.basename(path).rsplit(".", 1)[0])
        name = f"{CJK_FONT_NAME}-{stem}-{index}"
        try:
            pdfmetrics.registerFont(TTFont(name, path, subfontIndex=index))
        except (TTFError, OSError, ValueError):
            continue  # e.g. PostScript (CFF) outlines, which reportlab cannot embed
        return CJKFont(name, path)
    pdfmetrics.registerFont(UnicodeCIDFont(CID_FALLBACK))
    return CJKFont(CID_FALLBACK, None)


def cjk_font() -> CJKFont:
    """Register (once) and return the CJK font to use for Chinese text."""
    return _register(tuple(_candidates()))


def string_width(text: str, font_name: str, size: float) -> float:
    return pdfmetrics.stringWidth(text, font_name, size)
