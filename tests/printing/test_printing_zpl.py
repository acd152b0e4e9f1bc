"""The label as ZPL II. No Zebra here, so the test reads the ZPL the way the
printer's manual says it will: ^BC field data through the Code 128
invocation-code table, into symbol characters, bars, and a scanner."""

from __future__ import annotations

import dataclasses
import re

import biip
import pytest
import zxingcpp
from PIL import Image, ImageDraw

from printing.code128 import PATTERNS, STOP_PATTERN
from printing.data import sample_label
from printing.layout import shipping_label_layout
from printing.zpl import batch_labels_zpl, shipping_label_zpl

# ZPL II Programming Guide, "Code 128 Invocation Characters" (values of Code 128 symbol characters)
INVOCATION = {"<": 62, "0": 30, "=": 94, "1": 95, "2": 96, "3": 97, "4": 98, "5": 99, "6": 100, "7": 101, "8": 102}
STARTS = {"9": ("A", 103), ":": ("B", 104), ";": ("C", 105)}


def zpl_code128_values(field: str) -> list[int]:
    """Symbol characters (start … data, no check) a printer makes of ^BC mode N field data."""
    values, i = [], 0
    codeset, start = "B", 104  # no start code: subset B
    if field[:1] == ">" and field[1:2] in STARTS:
        codeset, start = STARTS[field[1]]
        i = 2
    values.append(start)
    while i < len(field):
        if field[i] == ">":
            value = INVOCATION[field[i + 1]]
            values.append(value)
            if codeset != "C" and value == 99:
                codeset = "C"
            elif codeset == "C" and value == 100:
                codeset = "B"
            i += 2
        elif codeset == "C":
            values.append(int(field[i:i + 2]))
            i += 2
        else:
            values.append(ord(field[i]) - 32)
            i += 1
    return values


def draw_values(values: list[int], module: int = 3) -> Image.Image:
    check = (values[0] + sum(i * v for i, v in enumerate(values[1:], start=1))) % 103
    widths = [int(c) for v in [*values, check] for c in PATTERNS[v]] + [int(c) for c in STOP_PATTERN]
    image = Image.new("L", ((sum(widths) + 20) * module, 80), 255)
    pen, x = ImageDraw.Draw(image), 10 * module
    for n, w in enumerate(widths):
        if n % 2 == 0:
            pen.rectangle([x, 5, x + w * module - 1, 75], fill=0)
        x += w * module
    return image


def bc_fields(zpl: str) -> list[tuple[int, int, int, str]]:
    """(module, x, height, field data) of each ^BY…^FO…^BC…^FD…^FS."""
    pattern = r"\^BY(\d+),3,(\d+)\^FO(\d+),(\d+)\^BCN,(\d+),N,N,N,N\^FD(.*?)\^FS"
    return [(int(m), int(x), int(h), fd) for m, _, x, _, h, fd in re.findall(pattern, zpl)]


@pytest.mark.parametrize("size", ["100x150", "76x130"])
@pytest.mark.parametrize("dpi", [203, 300])
def test_zpl_is_one_label_format_sized_in_printer_dots(size, dpi):
    zpl = shipping_label_zpl(sample_label(), size, dpi)
    layout = shipping_label_layout(sample_label(), size, dpi)

    assert zpl.startswith("^XA")
    assert zpl.rstrip().endswith("^XZ")
    assert zpl.count("^XA") == zpl.count("^XZ") == 1
    assert "^CI28" in zpl
    assert f"^PW{layout.width}" in zpl and f"^LL{layout.height}" in zpl
    expected_width = {"100x150": {203: 799, 300: 1181}, "76x130": {203: 607, 300: 898}}[size][dpi]
    assert layout.width == expected_width
    for x, y in re.findall(r"\^FO(\d+),(\d+)", zpl):
        assert 0 <= int(x) < layout.width and 0 <= int(y) < layout.height


@pytest.mark.parametrize("size", ["100x150", "76x130"])
@pytest.mark.parametrize("dpi", [203, 300])
def test_zpl_barcodes_read_as_the_tracking_number_and_the_sscc(size, dpi):
    label = sample_label()
    zpl = shipping_label_zpl(label, size, dpi)
    layout = shipping_label_layout(label, size, dpi)

    (t_module, t_x, _, t_field), (s_module, s_x, _, s_field) = bc_fields(zpl)
    [tracking] = zxingcpp.read_barcodes(draw_values(zpl_code128_values(t_field)))
    [sscc] = zxingcpp.read_barcodes(draw_values(zpl_code128_values(s_field)), text_mode=zxingcpp.TextMode.Plain)

    assert tracking.text == label.tracking_number and tracking.symbology_identifier == "]C0"
    assert s_field.startswith(">;>8")  # start C, FNC1: GS1-128
    assert sscc.symbology_identifier == "]C1"
    assert biip.parse("]C1" + sscc.text).sscc.value == label.sscc
    # the printer is asked for the very symbol the PDF draws, at the same place and module
    for module, x, field, name in ((t_module, t_x, t_field, "tracking"), (s_module, s_x, s_field, "sscc")):
        bc = layout.barcode(name)
        assert zpl_code128_values(field) == list(bc.symbol.values[:-1])
        assert (module, x) == (bc.module, bc.x)
        assert x + bc.symbol.modules * module + 10 * module <= layout.width


def test_zpl_from_another_label_does_not_read_as_this_one():
    a = sample_label()
    b = dataclasses.replace(a, tracking_number="SF1402876543211")
    (_, _, _, field), _ = bc_fields(shipping_label_zpl(b))
    [read] = zxingcpp.read_barcodes(draw_values(zpl_code128_values(field)))
    assert read.text == b.tracking_number != a.tracking_number


def test_zpl_qr_code_carries_the_tracking_url():
    label = sample_label()
    zpl = shipping_label_zpl(label)
    layout = shipping_label_layout(label)
    assert f"^FO{layout.qr.x},{layout.qr.y}^BQN,2,{layout.qr.module}^FDMA,{label.tracking_url}^FS" in zpl


def test_zpl_chinese_text_is_utf8_in_a_named_cjk_font():
    zpl = shipping_label_zpl(sample_label())
    data = zpl.encode("utf-8")
    assert "王小明".encode() in data
    assert "浦东新区".encode() in data
    assert "^A@N," in zpl and "E:ANMDS.TTF" in zpl
    assert "138****0000" in zpl and "13800000000" not in zpl
    assert "E:SIMSUN.TTF" in shipping_label_zpl(sample_label(), cjk_font="E:SIMSUN.TTF")


def test_zpl_reserved_characters_in_text_are_escaped():
    label = sample_label()
    label = dataclasses.replace(label, ship_to=dataclasses.replace(label.ship_to, name="王^小~明\\"))
    zpl = shipping_label_zpl(label)
    assert "王\\5E小\\7E明\\5C" in zpl
    # every field still closes: one ^FS per ^FO
    assert zpl.count("^FO") == zpl.count("^FS")
    assert "^小" not in zpl and "~明" not in zpl


def test_batch_zpl_is_one_format_per_label():
    labels = [sample_label(1, 2), dataclasses.replace(sample_label(2, 2), tracking_number="SF1402876543211")]
    zpl = batch_labels_zpl(labels, "76x130", 300)
    assert zpl.count("^XA") == zpl.count("^XZ") == 2
    assert [zpl_code128_values(f)[:4] for _, _, _, f in bc_fields(zpl)][::2] == [
        zpl_code128_values(">:SF1>5402876543210")[:4]] * 2
    assert "1/2" in zpl and "2/2" in zpl
