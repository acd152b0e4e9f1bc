"""One place decides the CJK font: an embedded TrueType font when there is
one, reportlab's built-in STSong-Light otherwise."""

from __future__ import annotations

import io

import pypdf

from printing import fonts
from printing.data import sample_label
from printing.labels import shipping_label_pdf

WQY = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"


def test_the_debian_wqy_font_is_found_and_embedded(monkeypatch):
    monkeypatch.delenv("LUYUE_CJK_FONT", raising=False)
    font = fonts.cjk_font()
    assert font.embedded and font.path == WQY


def test_a_file_reportlab_cannot_use_is_skipped(tmp_path, monkeypatch):
    bogus = tmp_path / "NotReallyAFont.ttf"
    bogus.write_bytes(b"OTTO" + b"\0" * 200)  # claims PostScript outlines, like Noto CJK's OTFs
    monkeypatch.setattr(fonts, "CJK_FONT_CANDIDATES", [(str(bogus), 0), (WQY, 0)])
    monkeypatch.delenv("LUYUE_CJK_FONT", raising=False)
    assert fonts.cjk_font().path == WQY


def test_luyue_cjk_font_is_tried_first(monkeypatch):
    monkeypatch.setattr(fonts, "CJK_FONT_CANDIDATES", [])
    monkeypatch.setenv("LUYUE_CJK_FONT", WQY)
    assert fonts.cjk_font().path == WQY


def test_without_a_truetype_cjk_font_labels_fall_back_to_stsong(tmp_path, monkeypatch):
    monkeypatch.setattr(fonts, "CJK_FONT_CANDIDATES", [(str(tmp_path / "missing.ttc"), 0)])
    monkeypatch.delenv("LUYUE_CJK_FONT", raising=False)

    font = fonts.cjk_font()
    pdf = shipping_label_pdf(sample_label())

    assert font.name == "STSong-Light" and not font.embedded
    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    base_fonts = {str(f.get_object()["/BaseFont"]) for f in page["/Resources"]["/Font"].values()}
    assert any("STSong-Light" in name for name in base_fonts)
