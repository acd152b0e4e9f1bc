"""Our Code 128 encoder: the symbol characters, code sets, and the ZPL
field data that asks a Zebra printer for the same symbol."""

from __future__ import annotations

import pytest
import zxingcpp
from PIL import Image, ImageDraw
from reportlab.graphics.barcode import code128 as rl_code128

from printing.code128 import FNC1, PATTERNS, STOP_PATTERN, encode, encode_gs1, sscc_symbol


def draw(symbol, module=3, quiet=10):
    """A plain raster of the symbol, no printer or PDF involved."""
    width = (symbol.modules + 2 * quiet) * module
    image = Image.new("L", (width, 90), 255)
    pen = ImageDraw.Draw(image)
    for offset, bar in symbol.bars():
        x = (quiet + offset) * module
        pen.rectangle([x, 10, x + bar * module - 1, 80], fill=0)
    return image


def test_patterns_agree_with_reportlabs_table():
    def widths(letters):
        return "".join(str(ord(c.lower()) - ord("a") + 1) for c in letters)

    assert [widths(rl_code128._patterns[v]) for v in range(106)] == PATTERNS
    assert widths(rl_code128._patterns[106]) == STOP_PATTERN
    for pattern in PATTERNS:
        assert sum(map(int, pattern)) == 11


@pytest.mark.parametrize(
    "data",
    ["SF1402876543210", "1234567890123", "123456789012", "JDVA00012345678-1-2-", "ABC", "a>b", "HO20240601-SH01-003",
     "7", "YT9876543210987", "x1234y567890z"],
)
def test_encoded_symbols_scan_back_to_the_data(data):
    symbol = encode(data)

    [read] = zxingcpp.read_barcodes(draw(symbol), formats=zxingcpp.BarcodeFormat.Code128)

    assert read.text == data
    assert read.symbology_identifier == "]C0"
    assert symbol.modules == sum(symbol.widths) == 11 * len(symbol.values) + 13


def test_digits_use_code_set_c_two_per_character():
    symbol = encode("123456789012")
    assert symbol.values[0] == 105  # start C
    assert len(symbol.values) == 1 + 6 + 1  # start, six pairs, check


def test_long_digit_runs_switch_to_code_set_c():
    # SF + 13 digits: start B, S, F, one digit in B, code C, six pairs, check
    symbol = encode("SF1402876543210")
    assert symbol.values[:5] == (104, ord("S") - 32, ord("F") - 32, ord("1") - 32, 99)
    assert len(symbol.values) == 5 + 6 + 1


def test_gs1_128_starts_with_fnc1_and_reads_as_c1():
    symbol = sscc_symbol("069012340012345679")
    assert symbol.values[:2] == (105, 102)  # start C, FNC1
    assert symbol.is_gs1

    [read] = zxingcpp.read_barcodes(draw(symbol), text_mode=zxingcpp.TextMode.Plain)

    assert read.symbology_identifier == "]C1"
    assert read.text == "00069012340012345679"


def test_fnc1_separates_variable_length_gs1_elements():
    symbol = encode_gs1("10ABC" + FNC1 + "3103001250")

    [read] = zxingcpp.read_barcodes(draw(symbol), text_mode=zxingcpp.TextMode.Plain)

    assert read.text == "10ABC\x1d3103001250"


def test_check_character_follows_the_weighted_sum():
    symbol = encode("ABC")
    # start B (104) + 33*1 + 34*2 + 35*3 = 310; 310 % 103 = 1
    assert symbol.values == (104, 33, 34, 35, 1)


@pytest.mark.parametrize("bad", ["", "价格", "tab\there", "\xf1"])
def test_refuses_what_code_128_cannot_carry(bad):
    with pytest.raises(ValueError):
        encode(bad)


@pytest.mark.parametrize(
    ("data", "field"),
    [("SF1402876543210", ">:SF1>5402876543210"), ("123456789012", ">;123456789012"),
     ("1234567890123", ">;123456789012>63"), ("a>b", ">:a>0b"), ("ABC", ">:ABC")],
)
def test_zpl_field_data_spells_out_our_code_set_choices(data, field):
    assert encode(data).zpl_field_data() == field


def test_zpl_field_data_of_an_sscc_starts_in_c_with_fnc1():
    assert sscc_symbol("069012340012345679").zpl_field_data() == ">;>800069012340012345679"


def test_zpl_field_data_refuses_zpl_command_characters():
    with pytest.raises(ValueError):
        encode("A^B").zpl_field_data()
