"""Chinese on the floor is written with full-width punctuation: the zh side
of the refusal catalogue and the zh Babel catalogue have no ASCII , : ; ( )
? ! beside a hanzi (format fields like {sku} and %(sku)s aside)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from app.fulfilment.errors import CATALOGUE

HANZI = r"[\u4e00-\u9fff]"
ASCII_BESIDE_HANZI = re.compile(rf"{HANZI}[,:;()?!]|[,:;()?!]{HANZI}|{HANZI} [,:;?!]")
FIELDS = re.compile(r"\{[^{}]*\}|%\([^)]*\)[a-z]")
PO = Path(__file__).parents[2] / "app/translations/zh_Hans_CN/LC_MESSAGES/messages.po"


def ascii_punctuation(text: str) -> list[str]:
    return ASCII_BESIDE_HANZI.findall(FIELDS.sub("字", text))


@pytest.mark.parametrize("key", sorted(CATALOGUE))
def test_every_chinese_refusal_uses_full_width_punctuation(key):
    assert ascii_punctuation(CATALOGUE[key][2]) == [], CATALOGUE[key][2]


def test_every_chinese_screen_text_uses_full_width_punctuation():
    with PO.open("rb") as f:
        catalog = read_po(f)
    bad = {m.id: m.string for m in catalog if m.id and isinstance(m.string, str) and ascii_punctuation(m.string)}
    assert bad == {}


def test_the_check_finds_ascii_punctuation_beside_hanzi():
    assert ascii_punctuation("工牌或密码不正确,请重新扫描工牌。") == ["确,"]
    assert ascii_punctuation("库位 {code}:请扫描") == ["字:"]
    assert ascii_punctuation("请输入 1 到 {most} 之间的整数。") == []
